"""Which kind of queue every durable queue the services consume is, in one place.

Why quorum queues (deploy/rabbitmq/README.md): on a RabbitMQ cluster a classic queue lives on one
node; when that node stops, the queue and every message in it are unavailable (and a consumer
that tries to consume gets ``NOT_FOUND``) until the node is back. A quorum queue is replicated
with Raft to every node of a three-node cluster and keeps serving while a majority is up. So the
event handlers' queues, their retry queues, the dead-letter queue and the ``rpc-<service>``
request queues are quorum queues by default. RPC *reply* queues and a storage instance's private
upload queue stay transient classic queues: they belong to one process and die with it.

The arguments, deliberately (the definitions in deploy/rabbitmq/definitions.json carry exactly
these, or the broker refuses a service's declaration with ``PRECONDITION_FAILED``):

* ``x-delivery-limit: 20`` on handler and RPC queues. Our handlers never hand a message back to
  the queue when they fail (``wbs_plumbing.reliable`` acknowledges it after parking a copy in a
  retry queue), so a message is redelivered only when its consumer died or lost its connection
  while holding it, or when parking the copy failed. Twenty such returns mean a message that kills
  whoever touches it; it goes to the dead-letter queue instead of crashing replicas forever.
  RabbitMQ 4 applies 20 to every quorum queue by default (3.10, here, has no default: unlimited);
  the same number keeps behaviour identical across an upgrade. A node loss returns each
  in-flight message once, far below 20.
* ``x-dead-letter-exchange: ""`` + ``x-dead-letter-routing-key: wbs.dead-letters`` with
  ``x-dead-letter-strategy: at-least-once`` (needs ``x-overflow: reject-publish``): a message over
  the limit is moved to the dead-letter queue and removed from its queue only after the
  dead-letter queue confirmed it.
* Retry parking queues carry no TTL and no dead-lettering: the service consumes them itself and
  moves a message back when it is due (``wbs_plumbing.reliable.RetryMover``). With TTL expiry and
  at-least-once dead-lettering, RabbitMQ 3.10 left 16 expired events in a retry queue for good
  after a whole-cluster restart (its dead-letter worker supervisor gives up after two failures
  in five seconds, fixed in 3.12); the events never reached their handler.
* The dead-letter queue's length and age are bounded by a broker policy, not by arguments
  (``wbs-dead-letters`` in the definitions): operators can change a policy on a running cluster,
  they cannot change a queue's arguments.

``WBS_QUEUE_TYPE=classic`` (or ``QUEUE_TYPE: classic`` in a service's config) declares plain
classic durable queues as before, for a single small node. An existing classic queue cannot be
redeclared as quorum (the broker answers ``PRECONDITION_FAILED``): upgrading a broker that already
holds classic queues means draining them first (deploy/rabbitmq/README.md, "From classic queues").
"""
from __future__ import annotations

import os

from kombu import Queue
from nameko import rpc as nameko_rpc
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc, RpcConsumer, get_rpc_exchange

DEAD_LETTER_QUEUE = "wbs.dead-letters"
DELIVERY_LIMIT = 20
QUEUE_TYPES = ("quorum", "classic")


def queue_type(config: dict | None = None) -> str:
    """``quorum`` unless the config (``QUEUE_TYPE``) or ``WBS_QUEUE_TYPE`` says ``classic``."""
    value = (config or {}).get("QUEUE_TYPE") or os.environ.get("WBS_QUEUE_TYPE") or "quorum"
    value = str(value).strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"WBS_QUEUE_TYPE must be one of {QUEUE_TYPES}, not {value!r}")
    return value


AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def _arguments(config, common: dict, quorum_only: dict) -> dict:
    if queue_type(config) == "classic":
        return dict(common)
    return {"x-queue-type": "quorum", **common, **quorum_only}


def consumed_arguments(config: dict | None = None) -> dict:
    """A handler's or a service's RPC queue: limited redeliveries, then the dead-letter queue."""
    return _arguments(config, {}, {"x-delivery-limit": DELIVERY_LIMIT, "x-dead-letter-exchange": "",
                                   "x-dead-letter-routing-key": DEAD_LETTER_QUEUE, **AT_LEAST_ONCE})


def plain_arguments(config: dict | None = None) -> dict:
    """A retry parking queue or the dead-letter queue: no limit, no dead-lettering of its own."""
    return _arguments(config, {}, {})


class QuorumRpcConsumer(RpcConsumer):
    """nameko's RpcConsumer, declaring ``rpc-<service>`` with :func:`consumed_arguments`."""

    def setup(self):
        if self.queue is None:
            name = self.container.service_name
            self.queue = Queue(RPC_QUEUE_TEMPLATE.format(name), exchange=get_rpc_exchange(self.container.config),
                               routing_key=f"{name}.*", durable=True,
                               queue_arguments=consumed_arguments(self.container.config))
            self.queue_consumer.register_provider(self)
            self._registered = True


class QuorumRpc(Rpc):
    rpc_consumer = QuorumRpcConsumer()


rpc = QuorumRpc.decorator
"""Use instead of ``nameko.rpc.rpc``; every ``@rpc`` of one service must use the same one."""


class TransientReplyListener(nameko_rpc.ReplyListener):
    """nameko's reply listener with a transient (non-durable) reply queue.

    nameko declares ``rpc.reply-<service>-<uuid>`` durable (kombu's default). On a cluster, a
    durable classic queue whose node is down cannot be declared again anywhere ("home node ... is
    down or inaccessible"), so a service whose broker node died could never reconnect its reply
    queue, and every RPC it makes would fail until that node came back. A transient queue is
    dropped with its node and declared afresh on the node the service reconnects to; a reply in
    flight at that moment is lost, and the caller's deadline turns it into a 503.
    """

    def setup(self):
        super().setup()
        queue = self.queue
        self.queue = Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key, durable=False,
                           queue_arguments=queue.queue_arguments)


class RpcProxy(nameko_rpc.RpcProxy):
    """Use instead of ``nameko.rpc.RpcProxy``: its replies come back on a transient queue."""

    rpc_reply_listener = TransientReplyListener()

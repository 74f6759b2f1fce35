"""Sticky RPC: calls that must reach the very service instance that began a conversation.

An evidence upload is a conversation: `begin_evidence`, many `append_evidence` chunks (<= 1 MiB
each, so no process ever holds a whole file), `finish_evidence`. The encryptor, the running
SHA-256 and the object-store writer live in the memory of the storage instance that began it.
nameko's RPC queue is shared by all instances of a service, so the chunks could land anywhere.

`instance_rpc` methods are served on a queue of this instance alone (exclusive, deleted with the
instance), bound to the routing prefix `instance_route(container)`; the ordinary `@rpc` method
that begins the conversation returns that route, and the caller sends the rest there through
`RoutedRpcProxy(...).route(route)`. If the instance dies mid-upload, its queue disappears, the
next chunk is unroutable, and the caller gets an error at once instead of a hang.

Importing this module also makes every ``@rpc`` entrypoint of the process survive a broker
outage while it replies (``_contained_reply``); ``wbs_plumbing.reliable`` imports it, so every
service has it.
"""
import logging
import uuid

import amqp.exceptions
import kombu.exceptions
from kombu import Queue
from nameko.exceptions import MethodNotFound
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcConsumer, ServiceProxy, get_rpc_exchange

from wbs_plumbing.queues import RpcProxy  # transient reply queue (survives a broker node's loss)

log = logging.getLogger(__name__)

# What a lost or refused broker connection raises from a publish or an ack.
CONNECTION_ERRORS = (kombu.exceptions.OperationalError, amqp.exceptions.ConnectionError,
                     amqp.exceptions.RecoverableConnectionError, ConnectionError, OSError)


def _contained_reply(handle_result):
    """nameko sends an RPC's reply, and acknowledges the request, inside the worker's own green
    thread; when the broker connection is gone, kombu's OperationalError escapes from there and
    nameko kills the whole container (a security review lost storage for good that way: the
    broker was away 22 s). The reply cannot be delivered anyway: the caller's own connection
    died with it and the caller gives up at its deadline, and the unacknowledged request goes
    back to its queue. So log it and let the worker end normally; the consumer reconnects."""

    def contained(self, message, result, exc_info):
        try:
            return handle_result(self, message, result, exc_info)
        except CONNECTION_ERRORS as exc:
            log.warning("%s: reply or acknowledgement not sent, the broker connection is gone "
                        "(%s); the service goes on and reconnects",
                        getattr(self.container, "service_name", "?"), type(exc).__name__)
            return result, exc_info

    contained.wbs_contained = True
    return contained


if not getattr(RpcConsumer.handle_result, "wbs_contained", False):
    RpcConsumer.handle_result = _contained_reply(RpcConsumer.handle_result)

_ROUTE_ATTRIBUTE = "_wbs_instance_route"


def instance_route(container) -> str:
    """This container's private RPC route, e.g. `storage-3f9c2a1b7d4e`."""
    route = getattr(container, _ROUTE_ATTRIBUTE, None)
    if route is None:
        route = f"{container.service_name}-{uuid.uuid4().hex[:12]}"
        setattr(container, _ROUTE_ATTRIBUTE, route)
    return route


class InstanceRpcConsumer(RpcConsumer):
    def setup(self):
        if self.queue is None:
            route = instance_route(self.container)
            self.queue = Queue(f"rpc-{route}", exchange=get_rpc_exchange(self.container.config),
                               routing_key=f"{route}.*", durable=False, auto_delete=True,
                               exclusive=True)
            self.queue_consumer.register_provider(self)
            self._registered = True

    def get_provider_for_method(self, routing_key):
        route = instance_route(self.container)
        for provider in self._providers:
            if f"{route}.{provider.method_name}" == routing_key:
                return provider
        raise MethodNotFound(routing_key.split(".")[-1])


class InstanceRpc(Rpc):
    rpc_consumer = InstanceRpcConsumer()


instance_rpc = InstanceRpc.decorator


class InstanceRoute(DependencyProvider):
    """Gives a worker its container's private route, to hand back to a caller."""

    def get_dependency(self, worker_ctx):
        return instance_route(self.container)


class RoutedServiceProxy(ServiceProxy):
    def route(self, route: str) -> ServiceProxy:
        if not route.startswith(self.service_name + "-"):
            raise ValueError("route does not belong to this service")
        return ServiceProxy(self.worker_ctx, route, self.reply_listener, **self.options)


class RoutedRpcProxy(RpcProxy):
    """An RpcProxy whose dependency also reaches one instance: `proxy.route(route).method(...)`."""

    def get_dependency(self, worker_ctx):
        return RoutedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener,
                                  **self.options)

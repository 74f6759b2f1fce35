"""Event handlers that never drop a message silently and never loop on a poison one.

nameko's own `EventHandler` acknowledges a message even when the handler raised: the event is
gone. With `requeue_on_error` it goes straight back to the head of the queue instead, and a
message that always fails spins forever and blocks nothing but the CPU. This handler does
neither:

* the body is validated against its contract schema first; a body that is not JSON, or breaks
  the schema, or makes the handler raise `PermanentError`, is dead-lettered at once;
* any other failure is retried later, through per-delay retry queues, `len(RETRY_DELAYS_MS)`
  times, then dead-lettered. The service itself consumes its retry queues and moves each message
  back to the handler's queue when it is due (``RetryMover``); the broker's message TTL and
  dead-lettering are not used for this, because RabbitMQ 3.10's quorum queues can leave expired
  messages waiting for an at-least-once dead-letter worker that never comes back after the whole
  cluster restarted (seen here: 16 parked events never returned);
* except a failure because something the handler needs is away (``is_transient``: a peer that
  does not answer, the broker, the database): an outage can last longer than those quick
  retries, and a report that was in fact stored must not end in the dead-letter queue for it.
  Such a message keeps coming back at the longest delay until ``TRANSIENT_RETRY_SECONDS``
  (default a day) after its first failure, and only then is dead-lettered;
* dead letters go to the durable queue `wbs.dead-letters` with the reason, the original queue and
  the attempt count in headers, where `wbs dlq list` / `wbs dlq replay` find them.

The original message is acknowledged only after its retry or dead-letter copy was confirmed by
the broker; if that publish fails, the message is requeued instead. Nothing is lost either way.

Who published it (docs/architecture.md §10): with one broker identity per service (``BROKER_IDENTITIES:
per-service``), RabbitMQ refuses a ``user_id`` property that is not the publishing connection's
user, so ``user_id`` proves the producer. An event is accepted only if its ``user_id`` is its
source service's identity (``wbs-<service>``), or if it is a retry copy this consumer made itself
or a dead letter the admin replayed (their ``user_id`` is this consumer's or ``wbs-admin``, and
the ``wbs-producer`` header they carry was copied from the original). Anything else, such as an
event another service pushed into this queue through the default exchange, is dead-lettered
with the reason. With one shared development identity the check is off: ``user_id`` proves
nothing there. ``BROKER_USER_PREFIX`` (``WBS_BROKER_USER_PREFIX``, default ``wbs-``) names the
users, so that two systems (or a test run) can share one broker.
"""
import logging
import os
import time
from urllib.parse import unquote, urlsplit
from datetime import datetime, timezone
from functools import partial

import sqlalchemy.exc
from kombu import Queue
from nameko.amqp.publish import Publisher, get_connection
from nameko.events import EventHandler
from nameko.messaging import QueueConsumer

from wbs_contracts.errors import PermanentError, TransientError
from wbs_contracts.events import InvalidEvent, validate_event
from wbs_plumbing import metrics
from wbs_plumbing.deadline import Unavailable
from wbs_plumbing.failover import first_node
from wbs_plumbing.history import ensure_history
from wbs_plumbing.queues import DEAD_LETTER_QUEUE, consumed_arguments, plain_arguments
from wbs_plumbing.rpc import CONNECTION_ERRORS  # also contains a lost connection in RPC replies

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS_MS = (500, 2000, 10000)
DEFAULT_TRANSIENT_RETRY_SECONDS = 86400
ATTEMPTS_HEADER = "x-wbs-attempts"
FIRST_FAILURE_HEADER = "x-wbs-first-failure"  # epoch seconds of the first failed attempt
DUE_HEADER = "x-wbs-due-ms"  # when a parked message goes back: epoch ms, an integer any client can write
PRODUCER_HEADER = "wbs-producer"  # not x-wbs-: `wbs dlq replay` keeps it
DEFAULT_USER_PREFIX = "wbs-"


def broker_user(amqp_uri: str) -> str:
    """The user a connection to ``amqp_uri`` authenticates as (RabbitMQ's ``user_id``)."""
    return unquote(urlsplit(first_node(amqp_uri)).username or "guest")


def per_service_identities(config: dict) -> bool:
    value = config.get("BROKER_IDENTITIES") or os.environ.get("WBS_BROKER_IDENTITIES") or "shared"
    return str(value).strip().lower() in ("per-service", "per_service")


def user_prefix(config: dict) -> str:
    return str(config.get("BROKER_USER_PREFIX") or os.environ.get("WBS_BROKER_USER_PREFIX")
               or DEFAULT_USER_PREFIX)


def producer_of(message, own_user: str, admin_user: str = DEFAULT_USER_PREFIX + "admin") -> str | None:
    """The identity that published ``message`` first, as far as the broker's ``user_id`` proves."""
    user_id = (message.properties or {}).get("user_id")
    if user_id in (own_user, admin_user):
        return (message.headers or {}).get(PRODUCER_HEADER)
    return user_id


def dead_letter_queue(config: dict | None = None) -> Queue:
    return Queue(DEAD_LETTER_QUEUE, durable=True, queue_arguments=plain_arguments(config))


def retry_queue(queue_name: str, delay_ms: int, config: dict | None = None) -> Queue:
    """A parking queue: messages wait there `delay_ms`, then ``RetryMover`` moves them back."""
    return Queue(f"{queue_name}.retry.{delay_ms}ms", durable=True,
                 queue_arguments=plain_arguments(config))


def declare_queues(amqp_uri: str, queues) -> None:
    with get_connection(amqp_uri) as connection:
        channel = connection.default_channel
        for queue in queues:
            queue(channel).declare()


def is_transient(exc: BaseException) -> bool:
    """Did the handler fail because something it needs is away for now, not because of this
    message? A peer's ``Unavailable``, a ``TransientError``, a lost broker or database connection."""
    return isinstance(exc, (TransientError, Unavailable, sqlalchemy.exc.OperationalError) + CONNECTION_ERRORS)


def describe(exc: BaseException) -> str:
    """A short reason for operators. Our exceptions never carry report content; cap it anyway."""
    return f"{type(exc).__name__}: {exc}"[:500]


class ReliableQueueConsumer(QueueConsumer):
    """nameko's QueueConsumer, plus a handler for bodies kombu cannot decode.

    Without it, an undecodable message raises inside the consumer loop and takes the whole
    container down, again at every restart.
    """

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = partial(self._on_decode_error, provider)
        return consumers

    def _on_decode_error(self, provider, message, exc):
        provider.dead_letter(message, f"undecodable body: {describe(exc)}", attempts=0)
        message.ack()

    def unregister_provider(self, provider):
        """Stopped while still starting (a replica told to stop during its start): nameko then
        fires its "last provider gone" event once for every provider, and the second firing
        raises in the stopping container. Stopping waits for that event once."""
        if not self._consumers_ready.ready():
            if not self._last_provider_unregistered.ready():
                self._last_provider_unregistered.send()
            return
        super().unregister_provider(provider)


class RetryMover:
    """Consumes one retry queue of a handler and moves each message back to the handler's queue
    when its ``x-wbs-due-ms`` time has come.

    It is a provider of the handler's ``QueueConsumer`` (it has the ``queue`` and
    ``handle_message`` the consumer needs), so it shares the service's broker connection and
    prefetch, and every message waits in its own thread. The message is acknowledged only after
    its copy in the handler's queue was confirmed; a replica that dies meanwhile leaves it
    unacknowledged, and the broker gives it to another replica's mover.
    """

    def __init__(self, handler: "ReliableEventHandler", delay_ms: int):
        self.handler = handler
        self.delay_seconds = delay_ms / 1000
        self.queue = retry_queue(handler.queue.name, delay_ms, handler.container.config)

    def handle_message(self, body, message):
        due = int((message.headers or {}).get(DUE_HEADER) or 0) / 1000
        # never longer than the queue's delay, whatever another replica's clock said
        time.sleep(max(0.0, min(due - time.time(), self.delay_seconds)))
        self.handler._settle(message, partial(self._move, message))

    def _move(self, message):
        try:
            self.handler._republish(message, routing_key=self.handler.queue.name, declare=[], headers={})
        except Exception:
            time.sleep(1)  # it goes back to the retry queue; do not spin while the broker refuses
            raise

    def dead_letter(self, message, reason, attempts):
        self.handler.dead_letter(message, reason, attempts)


class ReliableEventHandler(EventHandler):
    queue_consumer = ReliableQueueConsumer()

    def setup(self):
        super().setup()
        config = self.container.config
        # a quorum queue by default (wbs_plumbing.queues); nameko's own declares a classic one
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                           durable=True, queue_arguments=consumed_arguments(config))
        self.retry_delays = [int(d) for d in (config.get("RETRY_DELAYS_MS") or DEFAULT_RETRY_DELAYS_MS)]
        self.transient_retry_seconds = float(config.get("TRANSIENT_RETRY_SECONDS") or DEFAULT_TRANSIENT_RETRY_SECONDS)
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True, mandatory=False)
        self.own_user = broker_user(config["AMQP_URI"])
        self.check_producer = per_service_identities(config)
        self.user_prefix = user_prefix(config)
        # registered at setup like the handler itself: the queue consumer subscribes at its start
        self.movers = [RetryMover(self, d) for d in self.retry_delays]
        for mover in self.movers:
            self.queue_consumer.register_provider(mover)

    def start(self):
        # Topology before traffic: the retry queues and the dead-letter queue exist before the
        # first message can need them.
        config = self.container.config
        declare_queues(config["AMQP_URI"], [dead_letter_queue(config)] + [
            retry_queue(self.queue.name, d, config) for d in self.retry_delays])
        ensure_history(self.container.config["AMQP_URI"], [f"{self.container.service_name}.events"],
                       self.container.config)  # the service's events also go to the history stream
        super().start()

    def stop(self):
        for mover in self.movers:
            self.queue_consumer.unregister_provider(mover)
        super().stop()

    def handle_message(self, body, message):
        expected = f"{self.user_prefix}{self.source_service}"
        if self.check_producer and producer_of(message, self.own_user, f"{self.user_prefix}admin") != expected:
            user_id = (message.properties or {}).get("user_id")
            reason = f"refused: {self.source_service}.{self.event_type} not published by {expected} (user_id {user_id!r})"
            self._settle(message, lambda: self.dead_letter(message, reason, attempts=0))
            return
        try:
            if not isinstance(body, dict):
                raise InvalidEvent(f"{self.event_type}: body is not a JSON object")
            validate_event(self.event_type, body, consumed=True)  # unknown fields ignored
        except InvalidEvent as exc:
            self._settle(message, lambda: self.dead_letter(message, describe(exc), attempts=0))
            return
        super().handle_message(body, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self._settle(message, lambda: None)
            return
        exc = exc_info[1]
        headers = message.headers or {}
        attempts = int(headers.get(ATTEMPTS_HEADER, 0)) + 1
        first_failure = float(headers.get(FIRST_FAILURE_HEADER) or time.time())
        waited_out = time.time() - first_failure > self.transient_retry_seconds
        if isinstance(exc, PermanentError) or (
                attempts > len(self.retry_delays) and (waited_out or not is_transient(exc))):
            action = partial(self.dead_letter, message, describe(exc), attempts)
        else:
            log.warning("%s failed (attempt %d), will retry: %s", self.method_name, attempts,
                        type(exc).__name__)
            action = partial(self._retry_later, message, attempts, first_failure)
        self._settle(message, action)

    def _settle(self, message, action):
        try:
            try:
                action()
            except Exception:
                log.exception("could not park message for retry or dead-letter; requeueing it")
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        except CONNECTION_ERRORS as exc:
            # the broker connection is gone: the unacknowledged message goes back to the queue by
            # itself; the container must not die of it (it reconnects)
            log.warning("%s: could not settle a message, the broker connection is gone (%s)",
                        self.queue.name, type(exc).__name__)

    def _retry_later(self, message, attempts, first_failure):
        delay = self.retry_delays[min(attempts, len(self.retry_delays)) - 1]
        parking = retry_queue(self.queue.name, delay, self.container.config)
        self._republish(message, routing_key=parking.name, declare=[parking],
                        headers={ATTEMPTS_HEADER: attempts, FIRST_FAILURE_HEADER: first_failure,
                                 DUE_HEADER: int(time.time() * 1000) + delay})
        metrics.count_retry(self.container.service_name, self.queue.name)

    def dead_letter(self, message, reason, attempts):
        metrics.count_dead_letter(self.container.service_name, self.queue.name)
        log.error("dead-lettering a message from %s after %d attempt(s): %s",
                  self.queue.name, attempts, reason)
        self._republish(message, routing_key=DEAD_LETTER_QUEUE, declare=[dead_letter_queue(self.container.config)], headers={
            ATTEMPTS_HEADER: attempts,
            "x-wbs-reason": reason,
            "x-wbs-original-queue": self.queue.name,
            "x-wbs-original-exchange": message.delivery_info.get("exchange", ""),
            "x-wbs-original-routing-key": message.delivery_info.get("routing_key", ""),
            "x-wbs-dead-lettered-at": datetime.now(timezone.utc).isoformat(),
        })

    def _republish(self, message, routing_key, declare, headers):
        merged = dict(message.headers or {})
        merged.update(headers)
        properties = message.properties or {}
        merged[PRODUCER_HEADER] = producer_of(message, self.own_user, f"{self.user_prefix}admin") or ""
        extra = {name: properties[name] for name in ("type", "timestamp", "app_id")
                 if properties.get(name) is not None}
        self.publisher.publish(
            message.body, exchange="", routing_key=routing_key, declare=declare,
            headers=merged, content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            message_id=properties.get("message_id"), user_id=self.own_user, **extra,
        )


event_handler = ReliableEventHandler.decorator

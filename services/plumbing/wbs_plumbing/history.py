"""The replayable history of every event: the RabbitMQ stream `wbs.events.history`.

Why a stream: a queue forgets a message once it is acknowledged, so a system that joins later, or
lost its own queue, could never catch up. A stream keeps every message for its retention
(`x-max-age`, `WBS_EVENT_HISTORY_DAYS`, default 400 days: a year plus the time to notice a gap)
and lets any number of readers start where they choose (`x-stream-offset`: `first`, an offset,
or a timestamp) without taking anything from each other. It is bound with `#` to every
`<service>.events` exchange, so it receives exactly what the exchanges route, in order.

Declared twice on purpose, like all topology (docs/architecture.md §4.4): in the deploy definitions, and by
each service at start for its own exchange (`ensure_history`), so a broker without definitions
still records from the first event. A broker that refuses the declaration (a service identity
without configure permission on the stream, or a retention that differs from the declared one)
is logged and left alone: the definitions own the stream there, and a publisher must not fail
because history is not its job.
"""
from __future__ import annotations

import logging
import os

from kombu import Exchange, Queue

log = logging.getLogger(__name__)

HISTORY_STREAM = "wbs.events.history"
DEFAULT_HISTORY_DAYS = 400


def history_days(config: dict | None = None) -> int:
    raw = (config or {}).get("WBS_EVENT_HISTORY_DAYS") or os.environ.get("WBS_EVENT_HISTORY_DAYS")
    days = int(raw) if raw else DEFAULT_HISTORY_DAYS
    if days < 1:
        raise ValueError("WBS_EVENT_HISTORY_DAYS must be at least 1")
    return days


def stream_arguments(days: int) -> dict:
    """The stream's arguments; definitions and services must declare exactly these."""
    return {"x-queue-type": "stream", "x-max-age": f"{days}D"}


def history_queue(days: int) -> Queue:
    return Queue(HISTORY_STREAM, durable=True, auto_delete=False, queue_arguments=stream_arguments(days))


def declare_history(channel, exchanges, days: int) -> None:
    """Declare the stream and bind it to `exchanges` (kombu channel; raises on refusal)."""
    queue = history_queue(days)(channel)
    queue.declare()
    for name in exchanges:
        Exchange(name, type="topic", durable=True)(channel).declare()
        queue.bind_to(exchange=name, routing_key="#")


_ensured: set = set()


def ensure_history(amqp_uri: str, exchanges, config: dict | None = None) -> bool:
    """Best effort at service start; returns whether the stream is in place for `exchanges`.

    Called by every reliable handler's start; a process declares once per broker and exchange.
    """
    from nameko.amqp.publish import get_connection

    key = (amqp_uri, tuple(sorted(exchanges)))
    if key in _ensured:
        return True
    try:
        with get_connection(amqp_uri) as connection:
            declare_history(connection.channel(), list(exchanges), history_days(config))
        _ensured.add(key)
        return True
    except Exception as exc:  # refused or differently configured: the definitions own it
        log.warning("event history stream %s not declared here (%s: %s); the broker's "
                    "definitions must declare and bind it", HISTORY_STREAM, type(exc).__name__, exc)
        return False

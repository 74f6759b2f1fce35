"""An RPC with a deadline.

nameko's RPC proxy waits for a reply for ever. A reporter's page, an inspector's page or a
notification attempt must instead fail soon and clearly when the other service is away, so
every cross-service call goes through :func:`call_with_deadline`: it raises
:class:`Unavailable` when the peer does not answer within ``timeout`` seconds, has no queue
yet (still starting), or lacks the method (an older version during a rolling upgrade). A
failure the peer reports (``RemoteError``, e.g. a refused grant) is not hidden: the caller
maps it, because only the caller knows whether it means "forbidden" or "try again".
"""
from __future__ import annotations

import eventlet
import eventlet.hubs
from nameko.exceptions import MethodNotFound, UnknownService

from wbs_plumbing.rpc import CONNECTION_ERRORS


class Unavailable(Exception):
    """The peer did not answer in time or is not there; ``reason`` says which (never content)."""

    def __init__(self, reason: str = "timeout", method: str = "?"):
        super().__init__(f"{method}: {reason}")
        self.reason, self.method = reason, method


#: How long sending the request may take. With the broker there it takes milliseconds (a publish
#: and its confirm); with the broker away kombu keeps reconnecting for about nine seconds before it
#: gives up, and a reporter would wait all that time for the 503. So the send has its own, shorter
#: bound, and the rest of ``timeout`` is left for the peer's work.
SEND_DEADLINE = 3.0


def call_with_deadline(method, timeout: float, *args, **kwargs):
    """``method(*args, **kwargs)`` over RPC (a nameko proxy method), waiting at most ``timeout``."""
    name = getattr(method, "method_name", None) or getattr(method, "identifier", "?")
    started = eventlet.hubs.get_hub().clock()
    try:
        with eventlet.Timeout(min(timeout, SEND_DEADLINE), Unavailable("broker", name)):
            reply = method.call_async(*args, **kwargs)
        with eventlet.Timeout(max(0.0, timeout - (eventlet.hubs.get_hub().clock() - started))):
            return reply.result()
    except eventlet.Timeout:
        raise Unavailable("timeout", name) from None
    except UnknownService:
        raise Unavailable("unknown_service", name) from None
    except MethodNotFound:
        raise Unavailable("method_not_found", name) from None
    except CONNECTION_ERRORS:  # the broker is away (kombu gave up reconnecting): say so, soon
        raise Unavailable("broker", name) from None

"""Is a kept-open connection still good to use? One function for the pooled connections of the
services (PostgreSQL through SQLAlchemy's pool, SMTP in notification).

An idle connection has nothing to read: if its socket is readable, the peer spoke unasked (a
database backend's FATAL before it closed, a mail server's 421, or the end of the stream), so
the connection must not be used. The check asks the kernel once with the *original* ``select``:
eventlet's green ``select`` (what ``import select`` gives once the process is monkey-patched)
registers the socket with the hub, schedules timers and switches greenthreads even for a zero
timeout, which cost more than the round trip this check exists to avoid.
"""
from __future__ import annotations

import eventlet.patcher

_select = eventlet.patcher.original("select")


def spoken_unasked(fileno) -> bool:
    """True when the socket (or file descriptor) has data or an end of stream waiting, or is
    no longer valid; never blocks."""
    try:
        readable, _w, _x = _select.select([fileno], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)

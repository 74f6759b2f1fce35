"""Time as every service stores and shows it: aware UTC datetimes, ISO 8601 with a ``Z``.

SQLite (the development database) hands back naive datetimes even for columns declared with a
time zone; everything the services store is UTC, so ``as_utc`` restores the zone on the way
out. One copy here instead of one per service keeps the services' answers formatted alike.
"""
from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime, whatever the driver returned (naive values are UTC
    by the services' convention; aware ones are converted)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    """``2026-11-24T13:50:00Z``; None stays None."""
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")

"""Indonesia's three time zones as staff read them: WIB, WITA, WIT.

Times are stored in UTC; the console shows each case's times in the zone of the unit it is
about (``Unit.timezone``), with the label people use rather than an offset, because an
inspector in Makassar reading "14:00" must know whether that is their 14:00.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from wbs_plumbing.clock import as_utc

DEFAULT = "Asia/Jakarta"
# The zones a unit may be in, with their label. Pontianak keeps WIB like Jakarta.
LABELS = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}
CHOICES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")


def valid(name: str | None) -> bool:
    return name in LABELS


def label(name: str | None) -> str:
    return LABELS.get(name or DEFAULT, "WIB")


def local(value: dt.datetime | None, zone: str | None) -> str | None:
    """``value`` as ``2026-11-24 21:30 WIB`` in ``zone`` (the default zone if unknown)."""
    if value is None:
        return None
    zone = zone if zone in LABELS else DEFAULT
    return as_utc(value).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M ") + LABELS[zone]


def local_iso(text: str | None, zone: str | None) -> str | None:
    """An ISO UTC string (``...Z``) as :func:`local` shows it."""
    if not text:
        return None
    return local(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), zone)


def day_start(day: dt.date, zone: str = DEFAULT) -> dt.datetime:
    """Midnight of ``day`` in ``zone``, in UTC (received-date filters are calendar days in WIB)."""
    return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.timezone.utc)

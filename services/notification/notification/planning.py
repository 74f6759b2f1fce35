"""What notification plans on its timer and keeps per staff member: deadline reminders,
supervisor digests, daily bundles of case emails, OpenPGP key warnings, and each person's
delivery preference and key.

Every planned email is a row made by ``domain.record_notification`` under an event id derived
from what it is about (``_derived_id``: the case and clock, the digest period, the key and
threshold), so two replicas planning at once make one row; delivery then follows the same
claim -> send -> record cycle as every other email (``domain``).
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import List, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from wbs_plumbing.clock import as_utc, utcnow

from notification.domain import (
    _NOTICE_NAMESPACE,
    KIND_DAILY_BUNDLE,
    KIND_KEY_EXPIRED,
    KIND_KEY_EXPIRING,
    KIND_SLA_REMINDER,
    KIND_SUPERVISOR_DIGEST,
    record_notification,
    release_held_for_key,
)
from notification.models import PENDING, DigestCounts, Notification, StaffKey, StaffPreference
from notification.settings import Settings


# --- OpenPGP keys -----------------------------------------------------------------------------


def register_key(session, staff_id: str, checked, now: datetime) -> None:
    """Store (or replace) a staff member's checked public key."""
    row = session.get(StaffKey, staff_id)
    if row is None:
        row = StaffKey(staff_id=staff_id)
        session.add(row)
    row.fingerprint, row.armored = checked.fingerprint, checked.armored
    row.expires_at, row.registered_at = checked.expires_at, now
    session.flush()
    release_held_for_key(session, staff_id, now)


# --- staff reminders and digests ----------------------------------------------------------------


def _once(session, **row) -> Optional[str]:
    """``record_notification`` in a savepoint: a replica that lost the race on
    ``UNIQUE(event_id, recipient_id)`` gets None instead of a failed transaction."""
    try:
        with session.begin_nested():
            existing = session.execute(select(Notification.notification_id).where(
                Notification.event_id == row["event_id"],
                Notification.recipient_id == row["recipient_id"])).scalar_one_or_none()
            if existing is not None:
                return None
            return record_notification(session, **row)
    except IntegrityError:
        return None


def _derived_id(*parts) -> str:
    return str(uuid.uuid5(_NOTICE_NAMESPACE, "/".join(str(p) for p in parts)))


def record_reminders(session, due: list, now: datetime, settings: Settings) -> List[str]:
    """One ``sla_reminder`` per (case, clock, due time) to the assignee: the event id is derived
    from those three, so a later sweep, a second replica or a restart adds nothing, and a clock
    that was paused and moved gets a reminder for its new due time."""
    ids = []
    for item in due:
        notification_id = _once(session, event_id=_derived_id("reminder", item["case_id"], item["clock"], item["due_at"]),
                                recipient_id=item["assignee_id"], kind=KIND_SLA_REMINDER,
                                case_id=item["case_id"], now=now)
        if notification_id:
            ids.append(notification_id)
    return ids


def digest_period(staff_period: str, now: datetime, settings: Settings) -> Optional[str]:
    """The period key a digest is due for now, or None: daily from the digest hour on; weekly
    on Mondays from the digest hour on."""
    local = as_utc(now) + timedelta(hours=settings.day_utc_offset_hours)
    if local.hour < settings.digest_hour:
        return None
    if staff_period == "weekly":
        return "weekly:{}".format(local.date()) if local.weekday() == 0 else None
    return "daily:{}".format(local.date())


def record_digests(session, digests: list, now: datetime, settings: Settings) -> List[str]:
    """One ``supervisor_digest`` per supervisor and period (``UNIQUE(event_id, recipient_id)``
    with the event id derived from the period), carrying counts only."""
    ids = []
    for digest in digests:
        pref = session.get(StaffPreference, digest["supervisor_id"])
        period = digest_period(pref.digest if pref else "daily", now, settings)
        if period is None:
            continue
        notification_id = _once(session, event_id=_derived_id("digest", period), recipient_id=digest["supervisor_id"],
                                kind=KIND_SUPERVISOR_DIGEST, case_id=period, now=now)
        if notification_id:
            units = [{k: u[k] for k in ("unit", "new", "waiting", "overdue", "awaiting_reporter")}
                     for u in digest["units"]]
            session.add(DigestCounts(notification_id=notification_id, units=json.dumps(units)))
            ids.append(notification_id)
    return ids


def digest_since(now: datetime, settings: Settings) -> datetime:
    """Where "new" starts for today's digests: the previous digest hour (a day ago)."""
    return as_utc(now) - timedelta(days=1)


def record_bundles(session, now: datetime, settings: Settings) -> List[str]:
    """From the digest hour on, one ``daily_bundle`` per staff member with held case emails and
    day: the same rule as the digests (an event id derived from the period, ``UNIQUE(event_id,
    recipient_id)``, a losing replica's insert rolled back to a savepoint), and the winner moves
    the held rows into its bundle in the same transaction. Case emails held after that wait for
    the next day's bundle."""
    period = digest_period("daily", now, settings)
    if period is None:
        return []
    held = select(Notification.recipient_id).where(
        Notification.held.is_(True), Notification.bundle_id.is_(None), Notification.status == PENDING,
        Notification.next_attempt_at.is_(None), Notification.last_error.is_(None)).distinct()
    ids = []
    for staff_id in session.scalars(held).all():
        notification_id = _once(session, event_id=_derived_id("bundle", period), recipient_id=staff_id,
                                kind=KIND_DAILY_BUNDLE, case_id=period, now=now)
        if notification_id:
            session.execute(update(Notification).where(
                Notification.recipient_id == staff_id, Notification.held.is_(True),
                Notification.bundle_id.is_(None), Notification.status == PENDING,
                Notification.next_attempt_at.is_(None), Notification.last_error.is_(None),
                Notification.notification_id != notification_id,
            ).values(bundle_id=notification_id).execution_options(synchronize_session=False))
            ids.append(notification_id)
    return ids


def key_warnings_due(session, now: datetime, settings: Settings) -> list:
    """Keys expiring within ``key_warning_days`` (or expired) whose owner has not yet been told
    at that threshold: ``[(staff_id, fingerprint, expires_at, threshold)]``."""
    due = []
    for key in session.scalars(select(StaffKey).where(
            StaffKey.expires_at.is_not(None),
            StaffKey.expires_at <= now + timedelta(days=settings.key_warning_days))).all():
        threshold = "expired" if as_utc(key.expires_at) <= now else "expiring:{}".format(settings.key_warning_days)
        event_id = _derived_id("key", key.staff_id, key.fingerprint, threshold)
        if session.scalar(select(Notification.notification_id).where(
                Notification.event_id == event_id, Notification.recipient_id == key.staff_id)) is None:
            due.append((key.staff_id, key.fingerprint, as_utc(key.expires_at), threshold))
    return due


def record_key_warnings(session, due: list, admin_ids: list, now: datetime) -> List[str]:
    """One warning per key and threshold (expiring within N days; expired) to its owner and to
    each administrator, in clear and without a case link: exactly once with any number of
    replicas (derived event id, ``_once``)."""
    ids = []
    for staff_id, fingerprint, expires_at, threshold in due:
        kind = KIND_KEY_EXPIRED if threshold == "expired" else KIND_KEY_EXPIRING
        details = json.dumps({"staff_id": staff_id, "fingerprint": fingerprint,
                              "expires_at": expires_at.isoformat()})
        event_id = _derived_id("key", staff_id, fingerprint, threshold)
        for recipient_id, recipient_kind in [(staff_id, kind)] + [(a, kind + "_admin") for a in admin_ids
                                                                   if a != staff_id]:
            notification_id = _once(session, event_id=event_id, recipient_id=recipient_id, kind=recipient_kind,
                                    case_id="key:" + staff_id, now=now)
            if notification_id:
                session.add(DigestCounts(notification_id=notification_id, units=details))
                ids.append(notification_id)
    return ids


def staff_settings(session, staff_id: str) -> dict:
    """What the console's "Notifikasi" page shows: delivery, digest period, the key (if any)."""
    pref = session.get(StaffPreference, staff_id)
    key = session.get(StaffKey, staff_id)
    return {"staff_id": staff_id, "delivery": pref.delivery if pref else "immediate",
            "digest": pref.digest if pref else "daily",
            "key": None if key is None else {
                "fingerprint": key.fingerprint,
                "expires_at": as_utc(key.expires_at).isoformat() if key.expires_at else None}}


def remove_key(session, staff_id: str, now: datetime) -> bool:
    """Forget a staff member's key; emails held for it go out (in clear) at the next sweep."""
    removed = session.execute(delete(StaffKey).where(StaffKey.staff_id == staff_id)).rowcount == 1
    release_held_for_key(session, staff_id, now)
    return removed


def set_preference(session, staff_id: str, delivery: Optional[str], digest: Optional[str],
                   now: Optional[datetime] = None) -> dict:
    """Set what is given; switching to immediate releases the case emails still held (not yet
    in a bundle) at once."""
    row = session.get(StaffPreference, staff_id)
    if row is None:
        row = StaffPreference(staff_id=staff_id, delivery="immediate", digest="daily")
        session.add(row)
    if delivery is not None:
        row.delivery = delivery
        if delivery == "immediate":
            session.execute(update(Notification).where(
                Notification.recipient_id == staff_id, Notification.held.is_(True),
                Notification.bundle_id.is_(None), Notification.status == PENDING,
                Notification.next_attempt_at.is_(None), Notification.last_error.is_(None),
            ).values(next_attempt_at=now or utcnow()).execution_options(synchronize_session=False))
    if digest is not None:
        row.digest = digest
    session.flush()
    return {"staff_id": staff_id, "delivery": row.delivery, "digest": row.digest}

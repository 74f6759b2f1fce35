"""Retention and crypto-shredding: data is kept no longer than its retention period.

The schedule is kept from verification's events (storage never asks verification):

* ``case_status_changed`` into an end state (``not_actionable``, ``referred``, ``closed``) sets
  ``shred_after = occurred_at + the period configured for that state`` (``RETENTION_<STATE>_DAYS``);
  any other state (a supervisor reopened the case) clears it.
* ``legal_hold_changed`` sets or lifts a legal hold; a held report is never shredded, whatever its
  date. Each change is logged (ids only) and the event itself stays in verification's audit trail.

Events arrive at least once and not necessarily in order (retries park a failed event for a
while), so each row remembers the ``occurred_at`` of the last status and hold event it applied and
ignores older ones.

``run_retention`` shreds every report whose date has passed and that is not held: in one
transaction it deletes the data key and every row pointing at its objects and stages
``report_shredded`` (report id only) in the outbox; then it deletes the objects (every version,
bypassing governance-mode object lock). Finally it rotates the key-encryption key and destroys the
retired one (:mod:`storage.keyfile`), so that a backup of the database taken before the shredding
(which still holds the wrapped data key) cannot be opened with anything that remains.

An event is a candidate, not an order: anyone with broker credentials could publish one. Before
shredding, ``confirm(report_id, now)`` asks verification, the owner of the case, for its state
(``confirmed_due``); a report it does not confirm is kept and asked about again next run.

Times come in as arguments (``now``, ``occurred_at``) to the functions here; the service passes
its own clock (``run_retention`` takes none from its caller).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import func, select

from storage import domain
from storage.models import OutboxMessage, RetentionRecord
from wbs_plumbing.outbox import add_event, utcnow

log = logging.getLogger(__name__)


def parse_time(value) -> datetime:
    """An event's ``occurred_at`` (ISO 8601, ``Z`` or offset) as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _row(session, report_id: str, case_id: str | None) -> RetentionRecord:
    row = session.get(RetentionRecord, report_id)
    if row is None:
        row = RetentionRecord(report_id=report_id, case_id=case_id, legal_hold=False)
        session.add(row)
    elif case_id and not row.case_id:
        row.case_id = case_id
    return row


def record_status_change(session, periods: dict, event: dict) -> None:
    """Apply ``case_status_changed`` to the report's schedule (see the module docstring).

    An event without ``report_id`` (published before verification included it) cannot be placed
    and is ignored with a warning: nothing is shredded on a guess.
    """
    report_id = event.get("report_id")
    if not report_id:
        log.warning("case_status_changed without report_id for case %s; retention not scheduled",
                    event.get("case_id"))
        return
    at = parse_time(event["occurred_at"])
    row = _row(session, report_id, event.get("case_id"))
    if row.state_at is not None and _aware(row.state_at) > at:
        return  # an older event delivered late
    row.state, row.state_at = event["to_state"], at
    period = periods.get(event["to_state"])
    row.shred_after = at + period if period is not None else None


def record_legal_hold(session, event: dict) -> None:
    """Apply ``legal_hold_changed``: a held report is never shredded."""
    at = parse_time(event["occurred_at"])
    row = _row(session, event["report_id"], event.get("case_id"))
    if row.hold_at is not None and _aware(row.hold_at) > at:
        return
    row.legal_hold, row.hold_at = bool(event["legal_hold"]), at
    log.info("legal hold %s for report %s (case %s)", "set" if row.legal_hold else "lifted",
             row.report_id, row.case_id)


def due_reports(session, now: datetime) -> list[str]:
    query = (select(RetentionRecord.report_id)
             .where(RetentionRecord.shred_after.is_not(None), RetentionRecord.shred_after <= now,
                    RetentionRecord.legal_hold.is_(False), RetentionRecord.shredded_at.is_(None))
             .order_by(RetentionRecord.shred_after))
    return list(session.scalars(query))


def confirmed_due(periods: dict, state, now: datetime) -> bool:
    """Whether verification's answer ``{"state", "since", "legal_hold"}`` about a case makes its
    report due at ``now``: an end state whose period has passed since ``since``, and no hold."""
    if not isinstance(state, dict) or state.get("legal_hold") is not False:
        return False
    period = periods.get(state.get("state"))
    try:
        since = parse_time(state["since"])
    except (KeyError, TypeError, ValueError):
        return False
    return period is not None and since + period <= now


def shred_report(transaction, store, uploads, report_id: str, now: datetime) -> bool:
    """Crypto-shred one report if it is still due; returns whether it was shredded.

    The due check is repeated under a row lock (PostgreSQL), so a legal hold that arrived since
    the report was selected wins, and two storage instances never shred the same report twice.
    """
    for upload_id in uploads.for_report(report_id):
        domain.abort_upload(uploads, upload_id)
    with transaction() as session:
        row = session.scalars(select(RetentionRecord)
                              .where(RetentionRecord.report_id == report_id)
                              .with_for_update()).first()
        if (row is None or row.legal_hold or row.shredded_at is not None
                or row.shred_after is None or _aware(row.shred_after) > now):
            return False
        keys = domain.delete_report_rows(session, report_id)
        row.shredded_at = utcnow()  # when it really happened (``now`` may be a test's clock)
        add_event(session, OutboxMessage, "report_shredded", {"report_id": report_id})
    domain.delete_objects(store, keys)
    log.info("retention: shredded report %s (%d object(s))", report_id, len(keys))
    return True


def run_retention(transaction, store, uploads, now: datetime, rotate=None, confirm=None) -> list[str]:
    """Shred every report past retention and not on legal hold; returns their ids.

    ``rotate(last_shredded_at)`` (new KEK, re-wrap, destroy retired KEKs, unless the active KEK is
    newer than the last shredding) runs at the end: that is what puts old database backups out of
    reach. If it fails, the shredding stands (the live system can no longer read the reports) and
    the next run, seeing a shredding newer than the active KEK, rotates again.
    """
    with transaction() as session:
        candidates = due_reports(session, now)
    if confirm is not None:
        candidates = [r for r in candidates if confirm(r, now)]
    shredded = [r for r in candidates if shred_report(transaction, store, uploads, r, now)]
    if rotate is not None:
        with transaction() as session:
            last = _aware(session.scalar(select(func.max(RetentionRecord.shredded_at))))
        if last is not None:
            try:
                rotate(last)
            except Exception:  # noqa: BLE001 -- the shredding stands; the next run rotates
                log.warning("retention: key rotation after shredding failed; database backups "
                            "taken before it stay decryptable until a rotation succeeds",
                            exc_info=True)
    return shredded

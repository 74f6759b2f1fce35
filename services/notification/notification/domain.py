"""What the notification service decides: who gets an email about which event, and when to try
again. Plain functions; the caller owns every transaction.

Why one module of some 590 lines: staff emails and reporter notices run through the same
claim -> send with no transaction open -> record cycle below, and the exactly-once argument is
only checkable when those paths are read side by side. What the timer plans (reminders,
digests, daily bundles, key warnings) and each staff member's settings are in ``planning``.

Exactly once per (event, recipient)
    ``record_notification`` runs inside ``Database.handle_once`` (the event id goes into
    ``processed_events`` in the same transaction) and the ``notifications`` table has
    ``UNIQUE(event_id, recipient_id)``: a redelivered event, or two instances racing on it,
    cannot create a second row, and only a row leads to an email.

Nothing lost when mail or the directory is down
    The row is committed *before* any attempt. Each attempt first claims the row (a conditional
    UPDATE that moves ``next_attempt_at`` into the future: only one worker wins), then asks
    verification for the address and talks to SMTP with no transaction open, then records the
    outcome. A failed attempt is rescheduled with exponential backoff; the timer sweep picks it
    up. After ``max_attempts`` the row is ``failed`` and logged by id only, for an operator.

    The one unavoidable duplicate: if the process dies after SMTP accepted the message but
    before ``sent`` is committed, the claim expires and the email is sent again, with the same
    ``Message-ID``. SMTP offers no way to make that exactly-once; losing it would be worse.

Reporter notices (``reporter_news``), one a day at most
    News for a reporter (a message from an inspector, or a change of the state the reporter
    sees) marks the report in ``reporter_news``; ``plan_reporter_notices`` turns waiting news
    into one notification row per (report, local day), claiming the report with a conditional
    UPDATE and keyed by a deterministic event id, so replicas racing on it plan one row. News
    arriving after that day's notice waits for the next day's sweep. The recipient is
    ``reporter:<report_id>``: the address is read from storage when the row is sent and exists
    only in that worker's memory and in the SMTP conversation. No ``notification_sent`` is
    published for it: an event saying "this reporter gets email" would tell every consumer
    that the reporter left an address.

Logs name the notification id, kind, attempt and error class; never an address or a name.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, ContextManager, List, Optional

from sqlalchemy import delete, or_, select, update

from wbs_plumbing.clock import as_utc, utcnow
from wbs_plumbing.db import dialect_insert, insert_unless_present
from wbs_plumbing.outbox import add_event

from notification import overrides
from notification.mailer import CASE_KINDS, KEY_KINDS, KeyUnusable, MailTransportError, case_link
from notification.models import (
    FAILED,
    PENDING,
    SENT,
    CaseAssignee,
    CaseReference,
    CaseReport,
    Notification,
    OutboxMessage,
    DigestCounts,
    ReporterNews,
    StaffChange,
    StaffKey,
    StaffPreference,
)
from wbs_contracts.vocabulary import STATE_LABELS
from notification.settings import Settings, backoff_seconds

log = logging.getLogger(__name__)

KIND_CASE_ASSIGNED = "case_assigned"
KIND_SLA_BREACHED = "sla_breached"
KIND_SLA_ESCALATED = "sla_escalated"
KIND_REPORTER_REPLIED = "reporter_replied"
KIND_ROUTING_FAILED = "routing_failed"
KIND_REPORTER_NEWS = "reporter_news"
KIND_SLA_REMINDER = "sla_reminder"
KIND_SUPERVISOR_DIGEST = "supervisor_digest"
KIND_DAILY_BUNDLE = "daily_bundle"
KIND_KEY_EXPIRING = "key_expiring"
KIND_KEY_EXPIRED = "key_expired"
KEY_EXPIRED = "key_expired"  # last_error of an email held for an expired key
REPORTER_PREFIX = "reporter:"
_NOTICE_NAMESPACE = uuid.UUID("6f1c3e0a-5b1d-4c53-9a3e-2d7f8b9c0e41")


def parse_time(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return as_utc(value)


# --- recording (inside the handler's handle_once transaction) ---------------------------------


def record_notification(session, *, event_id: str, recipient_id: str, kind: str, case_id: str,
                        now: datetime) -> str:
    """Create the pending row for (event, recipient) unless it exists; return its id. A case
    email to a staff member who chose "daily" delivery is recorded held: no attempt until the
    day's ``daily_bundle`` collects it (``record_bundles``)."""
    existing = session.execute(
        select(Notification.notification_id).where(
            Notification.event_id == event_id, Notification.recipient_id == recipient_id
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    return _new_notification(session, event_id, recipient_id, kind, case_id, now).notification_id


def _new_notification(session, event_id: str, recipient_id: str, kind: str, case_id: str, now: datetime,
                      claim_seconds: Optional[float] = None, daily: Optional[bool] = None) -> Notification:
    """The new pending row; with ``claim_seconds``, claimed at once for its first attempt (as
    ``claim`` would, without another transaction), unless it is held for the daily bundle.
    ``daily``: whether the recipient chose daily delivery, when the caller read it already."""
    held = kind in CASE_KINDS and (wants_daily(session, recipient_id) if daily is None else daily)
    claimed = claim_seconds is not None and not held
    row = Notification(
        notification_id=str(uuid.uuid4()),
        event_id=event_id,
        recipient_id=recipient_id,
        kind=kind,
        case_id=case_id,
        status=PENDING,
        attempts=1 if claimed else 0,
        next_attempt_at=None if held else (now + timedelta(seconds=claim_seconds) if claimed else now),
        created_at=now,
        held=held,
    )
    session.add(row)
    session.flush()  # a racing duplicate fails here, inside the caller's transaction
    return row


def wants_daily(session, staff_id: str) -> bool:
    if staff_id.startswith(REPORTER_PREFIX):
        return False
    pref = session.get(StaffPreference, staff_id)
    return pref is not None and pref.delivery == "daily"


def note_staff_changed(session, staff_id: str, now: datetime) -> None:
    """``staff_changed`` -> from now on, no replica sends to an address of this staff member it
    asked for before (``notification.dependencies.RecipientCache``)."""
    session.merge(StaffChange(staff_id=str(staff_id), changed_at=now))


@dataclass(frozen=True)
class StaffFacts:
    """What this service keeps about one staff member, read in one statement: daily delivery
    chosen, their OpenPGP key (armored, expiry) if any, and when they last changed."""
    daily: bool = False
    key: Optional[str] = None
    key_expires_at: Optional[datetime] = None
    changed_at: Optional[datetime] = None


def staff_facts(session, staff_id: str) -> StaffFacts:
    """``StaffFacts`` of a staff member in one query (a reporter has none)."""
    if staff_id.startswith(REPORTER_PREFIX):
        return StaffFacts()
    daily, key, expires, changed = session.execute(select(
        select(StaffPreference.delivery).where(StaffPreference.staff_id == staff_id).scalar_subquery(),
        select(StaffKey.armored).where(StaffKey.staff_id == staff_id).scalar_subquery(),
        select(StaffKey.expires_at).where(StaffKey.staff_id == staff_id).scalar_subquery(),
        select(StaffChange.changed_at).where(StaffChange.staff_id == staff_id).scalar_subquery(),
    )).one()
    return StaffFacts(daily == "daily", key, as_utc(expires), as_utc(changed))


def remember_case(session, case_opened: dict) -> None:
    """``case_opened`` -> which report the case is about, for the reporter's notices (ids only),
    and its register reference, for the subject of staff emails (never a reporter's)."""
    remember_case_report(session, case_opened["case_id"], case_opened["report_id"])
    remember_case_reference(session, case_opened["case_id"], case_opened.get("reference"))


def remember_case_reference(session, case_id: str, reference: Optional[str]) -> None:
    """``case_opened``, ``case_assigned`` (or verification's ``case_contacts``) -> the case's
    register reference, for the subject of staff emails only. Two workers learning it at once:
    the second insert does nothing."""
    if reference:
        insert_unless_present(session, CaseReference, case_id=case_id, reference=str(reference)[:64])


def remember_assignment(session, *, case_id: str, inspector_id: str, assigned_at: datetime) -> None:
    """Keep the case's latest assignee: one ``INSERT ... ON CONFLICT DO UPDATE`` that leaves a
    newer assignment in place when an older one is delivered late."""
    insert = dialect_insert(session)
    statement = insert(CaseAssignee).values(case_id=case_id, inspector_id=inspector_id, assigned_at=assigned_at)
    session.execute(statement.on_conflict_do_update(
        index_elements=[CaseAssignee.case_id],
        set_={"inspector_id": statement.excluded.inspector_id, "assigned_at": statement.excluded.assigned_at},
        where=CaseAssignee.assigned_at <= statement.excluded.assigned_at))


def record_case_assigned(session, event: dict, now: datetime) -> str:
    """``case_assigned`` -> one notification for the assigned inspector (its id); the sweep or
    ``deliver`` sends it."""
    _learn_assignment(session, event, now)
    return record_notification(session, event_id=event["event_id"], recipient_id=event["inspector_id"],
                               kind=KIND_CASE_ASSIGNED, case_id=event["case_id"], now=now)


def claim_case_assigned(session, event: dict, now: datetime, settings: Settings) -> Optional["Prepared"]:
    """``case_assigned`` -> one notification for the assigned inspector, claimed for its first
    attempt in this same transaction, with what sending it needs (``prepare``): the handler's
    one transaction instead of a second one to claim. None when it waits for the inspector's
    daily bundle (or for a usable OpenPGP key). The caller runs ``attempt`` after the commit.

    Only inside ``handle_once``: that is what makes it once per event (a second call for the
    same event would break the ``UNIQUE(event_id, recipient_id)`` constraint)."""
    _learn_assignment(session, event, now)
    facts = staff_facts(session, event["inspector_id"])
    row = _new_notification(session, event["event_id"], event["inspector_id"], KIND_CASE_ASSIGNED,
                            event["case_id"], now, claim_seconds=settings.claim_seconds, daily=facts.daily)
    if row.attempts != 1:
        return None  # held for the daily bundle
    prepared = prepare(session, Claim(row.notification_id, row.recipient_id, row.kind, row.case_id, 1),
                       settings, lambda: now, reference=event.get("reference"), facts=facts)
    return prepared if isinstance(prepared, Prepared) else None


def _learn_assignment(session, event: dict, now: datetime) -> None:
    """What a ``case_assigned`` teaches beyond its email: the case's reference, report and
    assignee. (An assigned case's ``case_opened`` is not handled at all. A ``case_assigned``
    from a verification older than its ``report_id`` teaches no report; ``case_status_changed``
    carries its own, so only a message notice for such a case would find none and be logged.)"""
    remember_case_reference(session, event["case_id"], event.get("reference"))
    if event.get("report_id"):
        remember_case_report(session, event["case_id"], event["report_id"])
    remember_assignment(session, case_id=event["case_id"], inspector_id=event["inspector_id"],
                        assigned_at=parse_time(event.get("occurred_at")) or now)


def record_sla_breached(session, event: dict, now: datetime, contacts: Optional[dict] = None) -> List[str]:
    """``sla_breached`` -> one notification for the case's assignee and one for each supervisor
    who oversees it (docs/domain.md: "escalate to the supervisor when a clock is breached").

    ``contacts`` is verification's ``case_contacts`` answer (ids only), fetched by the caller
    outside this transaction. Without it (older callers), the assignee known from earlier
    ``case_assigned`` events is told. Nobody to tell: logged, nothing recorded.
    """
    if contacts is not None:
        assignee_id = contacts.get("assignee_id")
        supervisors = list(contacts.get("supervisor_ids") or [])
    else:
        known = session.get(CaseAssignee, event["case_id"])
        assignee_id, supervisors = (known.inspector_id if known else None), []
    ids = []
    if assignee_id:
        ids.append(record_notification(session, event_id=event["event_id"], recipient_id=assignee_id,
                                       kind=KIND_SLA_BREACHED, case_id=event["case_id"], now=now))
    for supervisor_id in supervisors:
        if supervisor_id != assignee_id:
            ids.append(record_notification(session, event_id=event["event_id"], recipient_id=supervisor_id,
                                           kind=KIND_SLA_ESCALATED, case_id=event["case_id"], now=now))
    if not ids:
        log.warning("sla_breached event %s: nobody to tell; no email", event["event_id"])
    return ids


def record_routing_failed(session, event: dict, now: datetime, contacts: Optional[dict]) -> List[str]:
    """``case_opened`` of a case routing could not assign -> the supervisors who reach it are
    asked to assign it by hand. A case with an assignee needs nothing here."""
    if not contacts or contacts.get("assignee_id"):
        return []
    supervisors = list(contacts.get("supervisor_ids") or [])
    if not supervisors:
        log.warning("case_opened event %s: unassigned and no supervisor reaches it; no email", event["event_id"])
    return [record_notification(session, event_id=event["event_id"], recipient_id=supervisor_id,
                                kind=KIND_ROUTING_FAILED, case_id=event["case_id"], now=now)
            for supervisor_id in supervisors]


def record_reporter_replied(session, event: dict, now: datetime, contacts: Optional[dict] = None) -> List[str]:
    """``case_message_posted`` with direction ``from_reporter`` -> the assignee is told that the
    reporter answered (content-free). Other directions were written by staff: nobody to tell."""
    if event.get("direction") != "from_reporter":
        return []
    assignee_id = (contacts or {}).get("assignee_id")
    if assignee_id is None:
        known = session.get(CaseAssignee, event["case_id"])
        assignee_id = known.inspector_id if known else None
    if assignee_id is None:
        log.warning("case_message_posted event %s: case has no assignee; no email", event["event_id"])
        return []
    return [record_notification(session, event_id=event["event_id"], recipient_id=assignee_id,
                                kind=KIND_REPORTER_REPLIED, case_id=event["case_id"], now=now)]


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    notification_id: str
    recipient_id: str
    kind: str
    case_id: str
    attempt: int  # 1-based number of this attempt


def due_notification_ids(session, now: datetime, limit: int) -> List[str]:
    return list(
        session.execute(
            select(Notification.notification_id)
            .where(Notification.status == PENDING, Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit)
        ).scalars()
    )


def claim(session, notification_id: str, now: datetime, settings: Settings) -> Optional[Claim]:
    """Reserve a due pending row for one attempt; None if it is not due or someone else has it."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.notification_id == notification_id,
            Notification.status == PENDING,
            Notification.next_attempt_at <= now,
        )
        .values(
            attempts=Notification.attempts + 1,
            next_attempt_at=now + timedelta(seconds=settings.claim_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    row = session.execute(
        select(Notification).where(Notification.notification_id == notification_id)
    ).scalar_one()
    return Claim(row.notification_id, row.recipient_id, row.kind, row.case_id, row.attempts)


def mark_sent(session, claimed: Claim, now: datetime) -> Optional[dict]:
    """Record success and announce it (outbox, same transaction)."""
    session.execute(
        update(Notification)
        .where(Notification.notification_id == claimed.notification_id)
        .values(status=SENT, sent_at=now, next_attempt_at=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    if claimed.recipient_id.startswith(REPORTER_PREFIX):
        return None  # see the module docstring: no event about a reporter's notices
    if claimed.kind == KIND_DAILY_BUNDLE:  # the case emails it carried are sent with it
        bundled = session.execute(select(Notification.notification_id, Notification.kind, Notification.case_id)
                                  .where(Notification.bundle_id == claimed.notification_id)).all()
        session.execute(update(Notification).where(Notification.bundle_id == claimed.notification_id)
                        .values(status=SENT, sent_at=now, last_error=None)
                        .execution_options(synchronize_session=False))
        for notification_id, kind, case_id in bundled:
            add_event(session, OutboxMessage, "notification_sent",
                      {"notification_id": notification_id, "kind": kind, "case_id": case_id})
        return None
    if claimed.kind not in CASE_KINDS:
        return None  # a digest or a key warning is about no case: notification_sent names a case
    return add_event(
        session,
        OutboxMessage,
        "notification_sent",
        {"notification_id": claimed.notification_id, "kind": claimed.kind, "case_id": claimed.case_id},
    )


def mark_attempt_failed(session, claimed: Claim, now: datetime, error: str, settings: Settings,
                        permanent: bool = False) -> str:
    """Reschedule with backoff, or give up after ``max_attempts`` (or at once if permanent)."""
    if permanent or claimed.attempt >= settings.max_attempts:
        values = dict(status=FAILED, next_attempt_at=None, last_error=error[:64])
        status = FAILED
        log.error(
            "notification %s (%s) failed for good after %d attempt(s): %s",
            claimed.notification_id, claimed.kind, claimed.attempt, error,
        )
    else:
        delay = backoff_seconds(claimed.attempt, settings.retry_base_seconds, settings.retry_max_seconds)
        values = dict(next_attempt_at=now + timedelta(seconds=delay), last_error=error[:64])
        status = PENDING
        log.warning(
            "notification %s (%s) attempt %d failed (%s); next try in %.1fs",
            claimed.notification_id, claimed.kind, claimed.attempt, error, delay,
        )
    session.execute(
        update(Notification)
        .where(Notification.notification_id == claimed.notification_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if status == FAILED and claimed.kind == KIND_DAILY_BUNDLE:  # its case emails fail with it
        session.execute(update(Notification).where(Notification.bundle_id == claimed.notification_id)
                        .values(status=FAILED, last_error=error[:64]).execution_options(synchronize_session=False))
    return status


def _asked_reference(case_id: str, lookup_reference, transaction) -> Optional[str]:
    try:
        reference = lookup_reference(case_id)
    except Exception as exc:  # verification away: this email goes without the reference
        log.warning("case %s: register reference not known (%s)", case_id, type(exc).__name__)
        return None
    if reference:
        with transaction() as session:
            remember_case_reference(session, case_id, reference)
    return reference


def hold_for_key(session, claimed: Claim) -> str:
    """The recipient's OpenPGP key expired: keep the email pending with no attempt planned
    (``key_expired``) until they register a usable key or remove theirs
    (``release_held_for_key``); they and the administrators were told (``record_key_warnings``)."""
    session.execute(update(Notification).where(Notification.notification_id == claimed.notification_id)
                    .values(next_attempt_at=None, last_error=KEY_EXPIRED)
                    .execution_options(synchronize_session=False))
    log.warning("notification %s (%s): the recipient's OpenPGP key has expired; held, not sent in clear",
                claimed.notification_id, claimed.kind)
    return PENDING


def release_held_for_key(session, staff_id: str, now: datetime) -> int:
    """A new key, or none: the emails held for the expired one go out at the next sweep."""
    return session.execute(update(Notification).where(
        Notification.recipient_id == staff_id, Notification.status == PENDING,
        Notification.last_error == KEY_EXPIRED).values(next_attempt_at=now, last_error=None)
        .execution_options(synchronize_session=False)).rowcount


def mail_variables(session, claimed: Claim, units, settings: Settings) -> Optional[dict]:
    """What a bundle or a key warning renders beside its link: the bundled cases' links and
    references, or the key's fingerprint and expiry date and the console page to act on."""
    console = settings.console_url.rstrip("/")
    if claimed.kind == KIND_DAILY_BUNDLE:
        rows = session.execute(select(Notification.case_id, CaseReference.reference)
                               .outerjoin(CaseReference, CaseReference.case_id == Notification.case_id)
                               .where(Notification.bundle_id == claimed.notification_id)
                               .order_by(Notification.created_at)).all()
        seen, items = set(), []
        for case_id, reference in rows:
            if case_id not in seen:
                seen.add(case_id)
                items.append({"link": case_link(console, case_id), "reference": reference})
        return {"items": items}
    if claimed.kind in KEY_KINDS and isinstance(units, dict):
        link = (console + "/me/notifications" if claimed.kind in (KIND_KEY_EXPIRING, KIND_KEY_EXPIRED)
                else "{}/admin/staff/{}".format(console, units["staff_id"]))
        return {"link": link, "fingerprint": units["fingerprint"], "expires_on": units["expires_at"][:10]}
    return None


@dataclass(frozen=True)
class Prepared:
    """A claimed row with all it takes to send it, read in the claiming transaction."""
    claimed: Claim
    templates: Optional[dict]
    public_key: Optional[str]
    units: Optional[object]
    reference: Optional[str]
    extra: Optional[dict]
    recipient_changed_at: Optional[datetime]


def prepare(session, claimed: Claim, settings: Settings, clock: Callable[[], datetime] = utcnow,
            reference: Optional[str] = None, facts: Optional[StaffFacts] = None):
    """What sending ``claimed`` needs, read in the transaction that claimed it: a ``Prepared``,
    or the row's new status when it is held for an expired OpenPGP key. ``reference``: the
    case's register reference, and ``facts`` the recipient's, when the caller already knows
    them (else they are read here)."""
    # The administrator's current templates, read now: an edit changes the next email.
    templates = overrides.current(session, claimed.kind)
    facts = facts if facts is not None else staff_facts(session, claimed.recipient_id)
    public_key = facts.key
    if public_key is not None and claimed.kind not in KEY_KINDS and facts.key_expires_at is not None \
            and facts.key_expires_at <= clock():
        return hold_for_key(session, claimed)  # never in clear in the key's place
    counts = session.get(DigestCounts, claimed.notification_id) if claimed.kind not in CASE_KINDS else None
    units = json.loads(counts.units) if counts is not None else None
    if claimed.kind in CASE_KINDS and reference is None:
        known = session.get(CaseReference, claimed.case_id)
        reference = known.reference if known is not None else None
    return Prepared(claimed, templates, public_key, units, reference if claimed.kind in CASE_KINDS else None,
                    mail_variables(session, claimed, units, settings), facts.changed_at)


def deliver(notification_id: str, *, transaction: Callable[[], ContextManager], lookup_recipient,
            mailer, settings: Settings, clock: Callable[[], datetime] = utcnow,
            lookup_reference: Optional[Callable[[str], Optional[str]]] = None) -> Optional[str]:
    """One delivery attempt. Returns the row's new status, or None if the row was not claimable.

    ``transaction`` is the caller's unit of work (``Database.transaction``); this function opens
    short ones around the claim and the outcome and none around the RPC or SMTP conversation.
    ``lookup_recipient(staff_id, changed_since)`` returns ``{"email", "display_name",
    "language"}`` or None; ``changed_since`` is when this service last learned of a change of
    that staff member (None if never): an answer remembered from before it is not used.
    ``mailer`` is a ``MailSender``. Transient failures never raise: the row is rescheduled.
    ``lookup_reference(case_id)``: the case's register reference from verification, asked when
    this service has not learned it yet (a ``case_assigned`` handled before its ``case_opened``);
    without an answer the email goes without it.
    """
    with transaction() as session:
        claimed = claim(session, notification_id, clock(), settings)
        if claimed is None:
            return None
        prepared = prepare(session, claimed, settings, clock)
    if not isinstance(prepared, Prepared):
        return prepared  # held for the recipient's expired key
    return attempt(prepared, transaction=transaction, lookup_recipient=lookup_recipient, mailer=mailer,
                   settings=settings, clock=clock, lookup_reference=lookup_reference)


def attempt(prepared: Prepared, *, transaction: Callable[[], ContextManager], lookup_recipient, mailer,
            settings: Settings, clock: Callable[[], datetime] = utcnow,
            lookup_reference: Optional[Callable[[str], Optional[str]]] = None) -> str:
    """Send a claimed, prepared row with no transaction open, then record the outcome (see
    ``deliver``). Returns the row's new status."""
    claimed, reference = prepared.claimed, prepared.reference
    if claimed.kind in CASE_KINDS and reference is None and lookup_reference is not None:
        reference = _asked_reference(claimed.case_id, lookup_reference, transaction)

    error, permanent = None, False
    try:
        recipient = lookup_recipient(claimed.recipient_id, prepared.recipient_changed_at)
    except Exception as exc:  # verification down, timed out, or erred: try again later
        recipient, error = None, "recipient_lookup:" + type(exc).__name__
    else:
        if not recipient or not recipient.get("email"):
            error, permanent = "no_recipient", True
            if claimed.recipient_id.startswith(REPORTER_PREFIX):
                error = "no_contact"  # the reporter gave no address (or the report is gone)

    if error is None:
        try:
            mailer.send_notification(
                key=claimed.notification_id,
                to_address=recipient["email"],
                kind=claimed.kind,
                case_id=claimed.case_id,
                language=recipient.get("language"),
                overrides=prepared.templates,
                public_key=prepared.public_key,
                units=prepared.units if claimed.kind == KIND_SUPERVISOR_DIGEST else None,
                reference=reference,
                extra=prepared.extra,
            )
        except MailTransportError as exc:
            error = "mail:" + str(exc)
        except KeyUnusable:
            error = KEY_EXPIRED

    with transaction() as session:
        if error is None:
            mark_sent(session, claimed, clock())
            status = SENT
        elif error == "no_contact":
            status = forget_reporter(session, claimed)
        elif error == KEY_EXPIRED:
            status = hold_for_key(session, claimed)
        else:
            status = mark_attempt_failed(session, claimed, clock(), error, settings, permanent)
    if status == SENT:
        log.info("notification %s (%s) sent on attempt %d", claimed.notification_id, claimed.kind, claimed.attempt)
    return status


def sweep(*, transaction, lookup_recipient, mailer, settings: Settings,
          clock: Callable[[], datetime] = utcnow, lookup_reference=None) -> int:
    """Retry every due pending notification (bounded batch). Returns how many were attempted."""
    with transaction() as session:
        plan_reporter_notices(session, clock(), settings)  # news that waited for a new day
        ids = due_notification_ids(session, clock(), settings.sweep_batch)
    attempted = 0
    for notification_id in ids:
        if deliver(notification_id, transaction=transaction, lookup_recipient=lookup_recipient,
                   mailer=mailer, settings=settings, clock=clock, lookup_reference=lookup_reference) is not None:
            attempted += 1
    return attempted


# --- reporter notices -------------------------------------------------------------------------


def remember_case_report(session, case_id: str, report_id: str) -> None:
    """``case_opened`` -> which report a case is about (ids only)."""
    insert_unless_present(session, CaseReport, case_id=case_id, report_id=report_id)


def reporter_label_changed(from_state: Optional[str], to_state: Optional[str]) -> bool:
    """Whether the reporter's status page shows something new (wbs_contracts vocabulary)."""
    def reporter_label(state):
        return (STATE_LABELS.get(state) or {}).get("reporter")
    return reporter_label(from_state) != reporter_label(to_state)


def news_for_reporter(event: dict) -> bool:
    """Is this verification event news the reporter should hear of? A message written to the
    reporter, or a state change the reporter's status page shows differently."""
    if "direction" in event:
        return event.get("direction") == "to_reporter"
    if "to_state" in event:
        return reporter_label_changed(event.get("from_state"), event["to_state"])
    return False


def note_reporter_news(session, event: dict, now: datetime) -> Optional[str]:
    """Mark the case's report as having news; the report id, or None if unknown (a case opened
    before this service learned of it: logged, no notice) or known to have no address."""
    report_id = event.get("report_id")
    if not report_id:
        known = session.get(CaseReport, event["case_id"])
        report_id = known.report_id if known else None
    if not report_id:
        log.warning("%s: no report known for case %s; no reporter notice", event["event_id"], event["case_id"])
        return None
    news = session.get(ReporterNews, report_id)
    if news is None:
        session.add(ReporterNews(report_id=report_id, case_id=event["case_id"], news_since=now))
    elif not news.no_contact and news.news_since is None:
        news.news_since = now
    session.flush()
    return report_id


def local_day(now: datetime, settings: Settings) -> date:
    return (as_utc(now) + timedelta(hours=settings.day_utc_offset_hours)).date()


def plan_reporter_notices(session, now: datetime, settings: Settings, limit: int = 100) -> List[str]:
    """Turn waiting news into at most one notice per report and local day; the new row ids.

    Each report is claimed by a conditional UPDATE (news waiting, no notice yet today): of two
    replicas racing, PostgreSQL lets one update the row and the other finds it no longer
    matching. The row's event id is derived from (report, day), so even a second plan for the
    same day would hit ``UNIQUE(event_id, recipient_id)``.
    """
    today = local_day(now, settings)
    waiting = session.execute(
        select(ReporterNews.report_id, ReporterNews.case_id)
        .where(ReporterNews.news_since.is_not(None), ReporterNews.no_contact.is_(False),
               or_(ReporterNews.last_notice_day.is_(None), ReporterNews.last_notice_day < today))
        .order_by(ReporterNews.news_since)
        .limit(limit)
    ).all()
    planned = []
    for report_id, case_id in waiting:
        won = session.execute(
            update(ReporterNews)
            .where(ReporterNews.report_id == report_id, ReporterNews.news_since.is_not(None),
                   or_(ReporterNews.last_notice_day.is_(None), ReporterNews.last_notice_day < today))
            .values(news_since=None, last_notice_day=today)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if won:
            planned.append(record_notification(
                session, event_id=str(uuid.uuid5(_NOTICE_NAMESPACE, "{}/{}".format(report_id, today))),
                recipient_id=REPORTER_PREFIX + report_id, kind=KIND_REPORTER_NEWS, case_id=case_id,
                now=now))
    return planned


def forget_reporter(session, claimed: Claim) -> str:
    """storage says the reporter left no address (or the report is gone): stop planning notices
    for it, and close the row quietly (most reporters leave none; that is not an error)."""
    report_id = claimed.recipient_id[len(REPORTER_PREFIX):]
    session.execute(update(ReporterNews).where(ReporterNews.report_id == report_id)
                    .values(no_contact=True, news_since=None).execution_options(synchronize_session=False))
    session.execute(update(Notification).where(Notification.notification_id == claimed.notification_id)
                    .values(status=FAILED, next_attempt_at=None, last_error="no_contact")
                    .execution_options(synchronize_session=False))
    log.info("notification %s (%s): no reporter address; none sent", claimed.notification_id, claimed.kind)
    return FAILED


def forget_report(session, report_id: str) -> None:
    """``report_shredded``: drop what this service knew of the report; pending notices end."""
    session.execute(delete(ReporterNews).where(ReporterNews.report_id == report_id))
    session.execute(delete(CaseReport).where(CaseReport.report_id == report_id))
    session.execute(update(Notification)
                    .where(Notification.recipient_id == REPORTER_PREFIX + report_id,
                           Notification.status == PENDING)
                    .values(status=FAILED, next_attempt_at=None, last_error="shredded")
                    .execution_options(synchronize_session=False))

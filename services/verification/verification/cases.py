"""A case's life: opening and routing it, listing, reading, moving it through the lifecycle,
flags and legal hold, messages, the reporter's view, and retention's shredding.

Plain functions over a SQLAlchemy session that take their collaborators (clock, calendar) as
arguments and never commit: the entrypoint owns the transaction, so a change and the events
announcing it (written with ``add_event`` into the outbox) commit together or not at all.
Reach (who may see a case) is ``reach``; reassignment and recusal are ``assignment``.
"""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_plumbing.outbox import add_event

from . import assignment, audit, deadlines, lifecycle, reach, register, routing, views
from .errors import CaseNotYetOpen, Conflict, Forbidden, InvalidInput
from .models import (
    REPORTER_ACTOR,
    SYSTEM_ACTOR,
    Case,
    CaseHistory,
    CaseMessage,
    OutboxMessage,
    Staff,
    utcnow,
)


_CASE_NAMESPACE = uuid.UUID("5b0e6f44-3c1d-4a51-9a52-2f7f1d0c9e11")


def case_id_for(report_id: str) -> str:
    """The case id a report will get, known before the case exists.

    Deterministic (UUIDv5 of the report id) so verification can sign the grant that reads the
    report's parties for routing *before* opening the case, and a redelivered event computes
    the same id.
    """
    return str(uuid.uuid5(_CASE_NAMESPACE, str(report_id)))


def open_case(session: Session, event: dict, *, now: dt.datetime | None = None,
              parties: list[routing.Party] | None = None, calendar: deadlines.Calendar | None = None,
              parties_note: str | None = None) -> Case:
    """Open the case for a ``report_submitted`` event, route it, announce it.

    ``parties`` are the people named in the report (read from storage by the caller, outside
    this transaction); every candidate is checked against them. Idempotent: ``report_id`` is
    unique, so a report whose case exists gives back that case and emits nothing.

    Emits ``case_opened`` and, when routing found someone, ``case_assigned``. Exclusions are
    recorded with their reasons; nobody eligible leaves the case unassigned with
    ``routing_failed: <reason>`` for the supervisors. Raises :class:`InvalidInput` for an event
    without ``report_id``, ``unit`` or ``category`` (a poison message).
    """
    missing = [k for k in ("report_id", "unit", "category") if not isinstance(event.get(k), str) or not event[k]]
    if missing:
        raise InvalidInput(f"report_submitted lacks {', '.join(missing)}")
    existing = session.scalar(select(Case).where(Case.report_id == event["report_id"]))
    if existing is not None:
        return existing

    now = now or utcnow()
    calendar = calendar or deadlines.Calendar()
    units = routing.load_units(session)  # once, for routing and for the register
    decision = routing.route(session, event["unit"], parties or (), units=units)
    case = Case(
        case_id=case_id_for(event["report_id"]),
        report_id=event["report_id"],
        reference=register.assign(session, units, event["unit"], decision.inspectorate, now),
        unit=event["unit"],
        category=event["category"],
        state=lifecycle.INITIAL,
        assignee_id=decision.assignee_id,
        routing_note=decision.note or parties_note,
        evidence_count=int(event.get("evidence_count") or 0),
        escalated=decision.escalated,
        conflict_flagged=any(r in routing.CONFLICT_REASONS for _, r in decision.exclusions),
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    deadlines.on_transition(session, case, None, case.state, now, calendar)  # inserted with the case
    session.flush()  # a duplicate report_id fails here, before any event is written
    session.add(CaseHistory(case_id=case.case_id, from_state=None, to_state=case.state,
                            reason=decision.note, actor=SYSTEM_ACTOR, at=now))
    assignment.record_exclusions(session, case.case_id, decision.exclusions, now)

    add_event(session, OutboxMessage, "case_opened", {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "reference": case.reference,
        "unit": case.unit,
        "category": case.category,
        "state": case.state,
        # notification asks verification for supervisors only when nobody was assigned
        "assigned": case.assignee_id is not None,
    })
    if case.assignee_id is not None:
        assignment.announce_assignment(session, case, SYSTEM_ACTOR, now)
    return case


def list_cases(
    session: Session,
    staff: Staff,
    *,
    state: str | None = None,
    unit: str | None = None,
    category: str | None = None,
    unassigned: bool = False,
) -> list[Case]:
    """Cases within ``staff``'s reach, newest first, optionally filtered."""
    condition = reach.scope_filter(session, staff)
    if condition is None:
        return []
    query = select(Case).where(condition)
    if state:
        query = query.where(Case.state == state)
    if unit:
        query = query.where(Case.unit == unit)
    if category:
        query = query.where(Case.category == category)
    if unassigned:
        query = query.where(Case.assignee_id.is_(None))
    return list(session.scalars(query.order_by(Case.created_at.desc(), Case.case_id)).unique())


def get_case(session: Session, staff: Staff, case_id: str) -> Case:
    """The case, if ``staff`` reaches it. Raises :class:`NotFound` when the case does not exist
    or is out of reach (the two are indistinguishable)."""
    return reach.reachable_case(session, staff, case_id)


def transition_case(
    session: Session,
    staff: Staff,
    case_id: str,
    to_state: str,
    reason: str | None = None,
    *,
    detail: str | None = None,
    now: dt.datetime | None = None,
    calendar: deadlines.Calendar | None = None,
) -> Case:
    """Move a case to ``to_state`` if the lifecycle allows it; record history; announce it.

    ``detail`` is the coded reason an end state needs (sub-reason, authority, outcome).
    Emits ``case_status_changed`` (with ``report_id``). Raises :class:`NotFound` (out of
    reach), :class:`~verification.errors.TransitionForbidden` or :class:`InvalidInput`
    (e.g. a missing reason where one is required).
    """
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    _move(session, case, staff.role, staff.id, to_state, reason, detail, now or utcnow(),
          calendar or deadlines.Calendar())
    session.flush()
    return case


def _move(session: Session, case: Case, role: str, actor: str, to_state: str, reason: str | None,
          detail: str | None, now: dt.datetime, calendar: deadlines.Calendar) -> None:
    from_state = case.state
    reason, detail = lifecycle.check_transition(from_state, to_state, role=role, reason=reason, detail=detail)
    case.state = to_state
    case.updated_at = now
    if from_state == lifecycle.RECEIVED and case.acknowledged_at is None:
        case.acknowledged_at = now
    if to_state in lifecycle.TERMINAL:
        case.end_detail, case.ended_at = detail, now
    elif from_state in lifecycle.TERMINAL:
        case.end_detail, case.ended_at = None, None
    session.add(CaseHistory(case_id=case.case_id, from_state=from_state, to_state=to_state,
                            reason=reason, detail=detail, actor=actor, at=now))
    deadlines.on_transition(session, case, from_state, to_state, now, calendar)
    add_event(session, OutboxMessage, "case_status_changed", {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "from_state": from_state,
        "to_state": to_state,
    })
    audit.append(session, actor, audit.TRANSITION, case.case_id, now=now, from_state=from_state,
                 to_state=to_state, detail=detail)


def set_flags(session: Session, staff: Staff, case_id: str, *, on_hold: bool | None = None,
              conflict_flagged: bool | None = None, now: dt.datetime | None = None) -> Case:
    """Set the on-hold flag (anyone handling the case) or the conflict flag (supervisors).

    Audited. Raises NotFound or :class:`Forbidden` (clearing/setting the conflict flag is a
    supervisor's decision).
    """
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    now = now or utcnow()
    if conflict_flagged is not None and staff.role != "supervisor":
        raise Forbidden("Only a supervisor can change the conflict-of-interest flag")
    changes = {}
    if on_hold is not None and bool(on_hold) != case.on_hold:
        case.on_hold = changes["on_hold"] = bool(on_hold)
    if conflict_flagged is not None and bool(conflict_flagged) != case.conflict_flagged:
        case.conflict_flagged = changes["conflict_flagged"] = bool(conflict_flagged)
    if changes:
        case.updated_at = now
        audit.append(session, staff.id, audit.FLAG, case.case_id, now=now, **changes)
    session.flush()
    return case


def set_legal_hold(session: Session, staff: Staff, case_id: str, legal_hold: bool,
                   reason: str | None = None, *, now: dt.datetime | None = None) -> Case:
    """Place or lift a legal hold (supervisors only): while held, storage shreds nothing of the
    report. Audited; emits ``legal_hold_changed`` {case_id, report_id, legal_hold} when the flag
    actually changes. Raises NotFound, Forbidden, InvalidInput (no reason)."""
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    if staff.role != "supervisor":
        raise Forbidden("Only a supervisor can place or lift a legal hold")
    if not (reason or "").strip():
        raise InvalidInput("A legal hold needs a reason")
    now = now or utcnow()
    if bool(legal_hold) != case.legal_hold:
        case.legal_hold = bool(legal_hold)
        case.updated_at = now
        add_event(session, OutboxMessage, "legal_hold_changed", {
            "case_id": case.case_id, "report_id": case.report_id, "legal_hold": case.legal_hold})
        audit.append(session, staff.id, audit.LEGAL_HOLD, case.case_id, now=now, legal_hold=case.legal_hold)
    session.flush()
    return case


def case_for_message(session: Session, staff: Staff, case_id: str, visibility: str) -> Case:
    """The case a staff member may post on (checked before the text goes to storage)."""
    if visibility not in ("reporter", "internal"):
        raise InvalidInput("'visibility' must be 'reporter' or 'internal'")
    case = reach.reachable_case(session, staff, case_id)
    if case.content_destroyed:
        raise Conflict("The report was destroyed under the retention policy")
    return case


def post_message(session: Session, staff: Staff, case_id: str, message_id: str, visibility: str,
                 *, awaiting_reporter: bool = False, now: dt.datetime | None = None,
                 calendar: deadlines.Calendar | None = None) -> dict:
    """Record a message whose text storage already holds, announce it, audit it; optionally move
    the case to ``awaiting_reporter`` (a question to the reporter pauses the clocks).

    Emits ``case_message_posted`` {case_id, direction, message_id} and, when moved,
    ``case_status_changed``. Raises NotFound, InvalidInput, TransitionForbidden.
    """
    case_for_message(session, staff, case_id, visibility)
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    now = now or utcnow()
    direction = "to_reporter" if visibility == "reporter" else "internal"
    if awaiting_reporter and direction != "to_reporter":
        raise InvalidInput("Only a message to the reporter can wait for the reporter")
    if session.get(CaseMessage, message_id) is None:
        session.add(CaseMessage(message_id=message_id, case_id=case.case_id, direction=direction,
                                author_id=staff.id, at=now))
        add_event(session, OutboxMessage, "case_message_posted", {
            "case_id": case.case_id, "direction": direction, "message_id": message_id})
        audit.append(session, staff.id, audit.MESSAGE, case.case_id, now=now, message_id=message_id,
                     direction=direction)
    if awaiting_reporter and case.state != lifecycle.AWAITING_REPORTER:
        _move(session, case, staff.role, staff.id, lifecycle.AWAITING_REPORTER, None, None, now,
              calendar or deadlines.Calendar())
    session.flush()
    return {"message_id": message_id, "direction": direction, "at": views.iso(now), "state": case.state}


def record_reporter_message(session: Session, event: dict, *, now: dt.datetime | None = None,
                            calendar: deadlines.Calendar | None = None) -> dict | None:
    """``reporter_message_posted``: the reporter answered through intake. Record it (direction
    ``from_reporter``), announce ``case_message_posted``, and move a case that was waiting for
    the reporter back to ``verification`` (docs/domain.md: "the reporter answered"), which restarts
    its clocks. Idempotent per message id. Raises InvalidInput (poison) or CaseNotYetOpen.
    """
    report_id, message_id = event.get("report_id"), event.get("message_id")
    try:
        message_id = str(uuid.UUID(str(message_id)))
    except ValueError:
        raise InvalidInput("reporter_message_posted lacks a valid message_id") from None
    case = session.scalar(select(Case).where(Case.report_id == str(report_id)).with_for_update(of=Case))
    if case is None:
        raise CaseNotYetOpen("No case for this report yet")
    if session.get(CaseMessage, message_id) is not None:
        return None
    now = now or utcnow()
    session.add(CaseMessage(message_id=message_id, case_id=case.case_id, direction="from_reporter",
                            author_id=None, at=now))
    add_event(session, OutboxMessage, "case_message_posted", {
        "case_id": case.case_id, "direction": "from_reporter", "message_id": message_id})
    if case.state == lifecycle.AWAITING_REPORTER:
        _move(session, case, "system", REPORTER_ACTOR, lifecycle.VERIFICATION, "reporter answered", None, now,
              calendar or deadlines.Calendar())
    session.flush()
    return {"case_id": case.case_id, "message_id": message_id}


def mark_content_destroyed(session: Session, report_id: str, *, now: dt.datetime | None = None) -> bool:
    """``report_shredded``: storage destroyed the report's data key; nothing is readable any more.
    The case keeps its metadata (statistics, history) and shows that the content is gone."""
    case = session.scalar(select(Case).where(Case.report_id == str(report_id)).with_for_update(of=Case))
    if case is None or case.content_destroyed:
        return False
    case.content_destroyed = True
    case.updated_at = now or utcnow()
    audit.append(session, SYSTEM_ACTOR, audit.CONTENT_DESTROYED, case.case_id,
                 now=case.updated_at)
    return True


def report_status(session: Session, report_id: str, language: str = "id") -> dict | None:
    """What the reporter may see of their case: state, dates and messages, with reporter labels.

    No staff names, no reasons (they may be internal), no routing, never internal notes: only
    the state's public label and the ids of messages to and from the reporter (the texts come
    from storage with the grant the caller adds). None when no case exists (yet).
    """
    case = session.scalar(select(Case).where(Case.report_id == str(report_id)))
    if case is None:
        return None
    history = session.scalars(
        select(CaseHistory).where(CaseHistory.case_id == case.case_id).order_by(CaseHistory.at, CaseHistory.id)
    )
    seen_states: list[dict] = []
    for h in history:
        if h.to_state in lifecycle.STATE_LABELS and (h.from_state != h.to_state):
            seen_states.append({"code": h.to_state, "label": lifecycle.reporter_label(h.to_state, language),
                                "at": views.iso(h.at)})
    messages = session.scalars(
        select(CaseMessage).where(CaseMessage.case_id == case.case_id,
                                  CaseMessage.direction.in_(("to_reporter", "from_reporter")))
        .order_by(CaseMessage.at, CaseMessage.message_id))
    return {
        "case_id": case.case_id,
        "reference": case.reference,
        "state": {"code": case.state, "label": lifecycle.reporter_label(case.state, language)},
        "history": seen_states,
        "messages": [{"message_id": m.message_id, "direction": m.direction, "at": views.iso(m.at)} for m in messages],
    }


def record_export(session: Session, staff: Staff, case: Case, *, now: dt.datetime | None = None) -> None:
    """An export for referral (``export``): audited like a content read, and announced by
    ``case_exported`` {case_id, reference, exported_by}, which carries no content. Raises
    Conflict when the report was shredded (nothing is left to refer)."""
    if case.content_destroyed:
        raise Conflict("The report was destroyed under the retention policy")
    audit.append(session, staff.id, audit.CASE_EXPORTED, case.case_id, now=now)
    add_event(session, OutboxMessage, "case_exported", {
        "case_id": case.case_id, "reference": case.reference, "exported_by": staff.id})


def audit_read(session: Session, staff: Staff, case_id: str, action: str, **detail) -> None:
    """Record a content read or evidence download in the audit chain (before storage is asked)."""
    audit.append(session, staff.id, action, case_id, **detail)

"""What the verification service does, as plain functions over a SQLAlchemy session.

Every function takes its collaborators (session, password hasher, clock) as arguments and
never commits: the entrypoint owns the transaction, so a change and the events announcing it
(written with ``add_event`` into the outbox) commit together or not at all.

Reach (DESIGN.md §5.5), always computed from the database *now* (so moving, disabling or
re-scoping an account takes effect on its next request):

* anyone reaches the cases assigned to them (an inspector only those);
* a supervisor reaches the cases about the units they oversee and every unit below them,
  except cases about their own home unit and cases they have a recorded conflict in
  (named among the parties, declared conflict, recused);
* a report about an inspectorate is escalated: only escalation-pool supervisors whose home unit
  is outside that inspectorate reach it (and its assignee);
* an administrator reaches no case at all (they manage units and accounts, not content).

A case out of reach raises :class:`NotFound`, exactly like a case that does not exist, so
probing case ids reveals nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wbs_plumbing.outbox import add_event

from . import audit, auth, deadlines, lifecycle, routing
from .errors import CaseNotYetOpen, Conflict, Forbidden, InvalidInput, NotEligible, NotFound
from .models import (
    ROLES,
    Case,
    CaseClock,
    CaseExclusion,
    CaseHistory,
    CaseMessage,
    DeclaredConflict,
    OutboxMessage,
    Staff,
    StaffSession,
    Supervision,
    Unit,
    as_utc,
    utcnow,
)

SYSTEM_ACTOR = "system"
REPORTER_ACTOR = "reporter"
_CASE_NAMESPACE = uuid.UUID("5b0e6f44-3c1d-4a51-9a52-2f7f1d0c9e11")

CATEGORY_LABELS = {
    "corruption": ("Korupsi", "Corruption"),
    "bribery": ("Suap / gratifikasi / pemerasan / pungutan liar", "Bribery, gratuities, extortion, illegal levies"),
    "collusion": ("Kolusi", "Collusion"),
    "nepotism": ("Nepotisme", "Nepotism"),
    "conflict_of_interest": ("Benturan kepentingan", "Conflict of interest"),
    "abuse_of_authority": ("Penyalahgunaan wewenang / jabatan", "Abuse of authority"),
    "procurement": ("Penyimpangan pengadaan barang/jasa", "Procurement irregularities"),
    "fraud": ("Penggelapan / kecurangan aset negara", "Embezzlement, fraud, theft of state assets"),
    "discipline": ("Pelanggaran disiplin pegawai", "Breach of civil-service discipline"),
    "ethics": ("Pelanggaran kode etik", "Breach of the code of ethics"),
    "harassment": ("Diskriminasi / pelecehan", "Discrimination, harassment"),
    "other": ("Pelanggaran peraturan lainnya", "Other breach of regulations"),
}

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


# --------------------------------------------------------------------------- cases


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
    decision = routing.route(session, event["unit"], parties or ())
    case = Case(
        case_id=case_id_for(event["report_id"]),
        report_id=event["report_id"],
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
    session.flush()  # a duplicate report_id fails here, before any event is written
    session.add(CaseHistory(case_id=case.case_id, from_state=None, to_state=case.state,
                            reason=decision.note, actor=SYSTEM_ACTOR, at=now))
    _record_exclusions(session, case.case_id, decision.exclusions, now)
    deadlines.on_transition(session, case, None, case.state, now, calendar)

    add_event(session, OutboxMessage, "case_opened", {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "unit": case.unit,
        "category": case.category,
        "state": case.state,
    })
    if case.assignee_id is not None:
        _announce_assignment(session, case, SYSTEM_ACTOR, now)
    return case


def _record_exclusions(session: Session, case_id: str, exclusions, now: dt.datetime) -> None:
    if not exclusions:
        return
    known = set(session.execute(select(CaseExclusion.candidate_id, CaseExclusion.reason)
                                .where(CaseExclusion.case_id == case_id)).all())
    for staff_id, reason in exclusions:
        if (staff_id, reason) not in known:
            session.add(CaseExclusion(case_id=case_id, candidate_id=staff_id, reason=reason, at=now))
            known.add((staff_id, reason))


def _announce_assignment(session: Session, case: Case, actor: str, now: dt.datetime) -> None:
    """Emit ``case_assigned``; a staff member's assignment (reassignment, recusal) is audited.

    Routing's own assignment when a case opens is not a staff action and is already recorded in
    the case's history and exclusions; keeping it out of the chain keeps case opening off the
    chain's lock, so verification workers open cases in parallel.
    """
    add_event(session, OutboxMessage, "case_assigned", {
        "case_id": case.case_id,
        "inspector_id": case.assignee_id,
        "unit": case.unit,
    })
    if actor != SYSTEM_ACTOR:
        audit.append(session, actor, audit.ASSIGNMENT, case.case_id, now=now, assignee=case.assignee_id)


def overseen_units(session: Session, staff: Staff, units=None) -> set[str]:
    """Every unit a supervisor reaches through oversight (overseen units and all below them)."""
    units = units if units is not None else routing.load_units(session)
    roots = session.scalars(select(Supervision.unit_code).where(Supervision.staff_id == staff.id))
    reach: set[str] = set()
    for root in roots:
        reach |= routing.subtree(units, root)
    return reach


def _scope_filter(session: Session, staff: Staff):
    """The SQL condition selecting the cases ``staff`` may reach, or None for no case at all."""
    if not staff.active:
        return None
    assigned = Case.assignee_id == staff.id
    if staff.role == "inspector":
        return assigned
    if staff.role != "supervisor":
        return None  # admin: manages units and accounts, never case content
    units = routing.load_units(session)
    conflicted = select(CaseExclusion.case_id).where(
        CaseExclusion.candidate_id == staff.id, CaseExclusion.reason.in_(sorted(routing.CONFLICT_REASONS)))
    parts = [assigned]
    overseen = overseen_units(session, staff, units) - {staff.home_unit}
    if overseen:
        parts.append(and_(Case.escalated.is_(False), Case.unit.in_(sorted(overseen)),
                          Case.case_id.not_in(conflicted)))
    if staff.escalation_pool:
        own_line = routing.path_up(units, staff.home_unit) or [staff.home_unit]
        parts.append(and_(Case.escalated.is_(True), Case.unit.not_in(own_line), Case.case_id.not_in(conflicted)))
    return or_(*parts)


def _reachable_case(session: Session, staff: Staff, case_id: str, *, for_update: bool = False) -> Case:
    try:
        case_id = str(uuid.UUID(str(case_id)))
    except ValueError:
        raise NotFound("No such case")
    condition = _scope_filter(session, staff)
    if condition is None:
        raise NotFound("No such case")
    query = select(Case).where(Case.case_id == case_id, condition)
    if for_update:
        query = query.with_for_update(of=Case)
    case = session.scalar(query)
    if case is None:
        raise NotFound("No such case")
    return case


def _reaches(session: Session, staff: Staff, case_id: str) -> bool:
    condition = _scope_filter(session, staff)
    return condition is not None and session.scalar(
        select(Case.case_id).where(Case.case_id == case_id, condition)) is not None


def visible_case_ids(session: Session, staff: Staff) -> set[str]:
    """Every case id in ``staff``'s reach (for tests and the supervisor view)."""
    condition = _scope_filter(session, staff)
    if condition is None:
        return set()
    return set(session.scalars(select(Case.case_id).where(condition)))


def list_cases(
    session: Session,
    staff: Staff,
    *,
    state: str | None = None,
    unit: str | None = None,
    category: str | None = None,
    now: dt.datetime | None = None,
    unassigned: bool = False,
) -> list[dict]:
    """Cases within ``staff``'s reach, newest first, optionally filtered (metadata and deadlines)."""
    condition = _scope_filter(session, staff)
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
    query = query.order_by(Case.created_at.desc(), Case.case_id)
    now = now or utcnow()
    cases = list(session.scalars(query).unique())
    clocks: dict[str, list] = {}
    if cases:
        for row in session.scalars(select(CaseClock).where(CaseClock.case_id.in_([c.case_id for c in cases]))):
            clocks.setdefault(row.case_id, []).append(row)
    out = []
    for c in cases:
        summary = case_summary(c, staff)
        summary["deadlines"] = [deadlines.clock_dict(r, now) for r in
                                sorted(clocks.get(c.case_id, []), key=lambda r: deadlines.CLOCKS.index(r.clock))]
        out.append(summary)
    return out


def get_case(session: Session, staff: Staff, case_id: str, *, now: dt.datetime | None = None) -> dict:
    """One case's metadata, assignee, history, deadlines and messages (ids only).

    Raises :class:`NotFound` when the case does not exist or is out of reach.
    """
    case = _reachable_case(session, staff, case_id)
    return case_detail(session, case, staff, now=now)


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
) -> dict:
    """Move a case to ``to_state`` if the lifecycle allows it; record history; announce it.

    ``detail`` is the coded reason an end state needs (sub-reason, authority, outcome).
    Emits ``case_status_changed`` (with ``report_id``). Raises :class:`NotFound` (out of
    reach), :class:`~verification.errors.TransitionForbidden` (409) or :class:`InvalidInput`
    (400, e.g. a missing reason where one is required).
    """
    case = _reachable_case(session, staff, case_id, for_update=True)
    _move(session, case, staff.role, staff.id, to_state, reason, detail, now or utcnow(),
          calendar or deadlines.Calendar())
    session.flush()
    return case_detail(session, case, staff, now=now)


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
              conflict_flagged: bool | None = None, now: dt.datetime | None = None) -> dict:
    """Set the on-hold flag (anyone handling the case) or the conflict flag (supervisors).

    Audited. Raises NotFound or :class:`Forbidden` (clearing/setting the conflict flag is a
    supervisor's decision).
    """
    case = _reachable_case(session, staff, case_id, for_update=True)
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
    return case_detail(session, case, staff, now=now)


def set_legal_hold(session: Session, staff: Staff, case_id: str, legal_hold: bool,
                   reason: str | None = None, *, now: dt.datetime | None = None) -> dict:
    """Place or lift a legal hold (supervisors only): while held, storage shreds nothing of the
    report. Audited; emits ``legal_hold_changed`` {case_id, report_id, legal_hold} when the flag
    actually changes. Raises NotFound, Forbidden, InvalidInput (no reason)."""
    case = _reachable_case(session, staff, case_id, for_update=True)
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
    return case_detail(session, case, staff, now=now)


def recuse(session: Session, staff: Staff, case_id: str, reason: str | None,
           parties: list[routing.Party], *, now: dt.datetime | None = None) -> dict:
    """The assignee steps aside from a case (conflict of interest). Recorded as an exclusion with
    reason ``recused`` (so routing never gives it back to them), the case is flagged and routed
    again with the same checks. Emits ``case_assigned`` when someone else takes it.
    Raises NotFound, InvalidInput (no reason), Forbidden (not the assignee)."""
    case = _reachable_case(session, staff, case_id, for_update=True)
    if case.assignee_id != staff.id:
        raise Forbidden("Only the case's assignee can recuse themselves")
    if not (reason or "").strip():
        raise InvalidInput("A recusal needs a reason")
    now = now or utcnow()
    _record_exclusions(session, case.case_id, [(staff.id, routing.RECUSED)], now)
    session.flush()
    case.conflict_flagged = True
    audit.append(session, staff.id, audit.RECUSAL, case.case_id, now=now)
    decision = routing.route(session, case.unit, parties, case.case_id, exclude={staff.id})
    _record_exclusions(session, case.case_id, decision.exclusions, now)
    case.assignee_id = decision.assignee_id
    case.routing_note = decision.note
    case.updated_at = now
    session.add(CaseHistory(case_id=case.case_id, from_state=case.state, to_state=case.state,
                            reason=f"recused{': ' + decision.note if decision.note else ''}",
                            actor=staff.id, at=now))
    if case.assignee_id is not None:
        _announce_assignment(session, case, staff.id, now)
    session.flush()
    return {"case_id": case.case_id, "assignee_id": case.assignee_id, "routing_note": case.routing_note}


def add_parties(session: Session, staff: Staff, case_id: str, parties: list[routing.Party],
                *, now: dt.datetime | None = None) -> dict:
    """People found to be involved after the report came in: check everyone against them now.

    Every active inspector and supervisor named (normalised name or NIP) or with a declared
    conflict about them is excluded from the case with the reason, for good; if that hits the
    assignee, the case is routed again with the same checks (``case_assigned`` when someone
    takes it, ``routing_failed`` otherwise). The names themselves are content: the caller
    stores them in storage (an internal note), never here. Raises NotFound, InvalidInput.
    """
    if not parties:
        raise InvalidInput("At least one party with a name or NIP is required")
    case = _reachable_case(session, staff, case_id, for_update=True)
    now = now or utcnow()
    declared = routing.load_declared(session)
    hits = []
    for cand in routing.load_candidates(session) + _supervisor_candidates(session):
        reason = routing.conflict_reason(cand, "", parties, declared.get(cand.staff_id, ()), False)
        if reason is not None and (cand.staff_id, reason) not in hits:
            hits.append((cand.staff_id, reason))
    _record_exclusions(session, case.case_id, hits, now)
    if hits:
        case.conflict_flagged = True
    audit.append(session, staff.id, audit.PARTIES_ADDED, case.case_id, now=now, excluded=len(hits))
    if case.assignee_id in dict(hits):
        session.flush()
        decision = routing.route(session, case.unit, parties, case.case_id)
        _record_exclusions(session, case.case_id, decision.exclusions, now)
        case.assignee_id, case.routing_note = decision.assignee_id, decision.note
        session.add(CaseHistory(case_id=case.case_id, from_state=case.state, to_state=case.state,
                                reason="conflict found in added parties" + (f": {decision.note}" if decision.note else ""),
                                actor=staff.id, at=now))
        if case.assignee_id is not None:
            _announce_assignment(session, case, staff.id, now)
    case.updated_at = now
    session.flush()
    return {"case_id": case.case_id, "assignee_id": case.assignee_id, "routing_note": case.routing_note,
            "excluded": [{"staff_id": sid, "reason": r} for sid, r in hits]}


def _supervisor_candidates(session: Session) -> list[routing.Candidate]:
    return [routing.Candidate(s.id, s.username, s.home_unit, 0, s.display_name, s.nip, s.role, bool(s.escalation_pool))
            for s in session.scalars(select(Staff).where(Staff.role == "supervisor", Staff.active.is_(True),
                                                         Staff.escalation_pool.is_(False)))]


def reassign(session: Session, staff: Staff, case_id: str, assignee: str,
             parties: list[routing.Party], *, now: dt.datetime | None = None) -> dict:
    """A supervisor gives a case to someone else (username or staff id), with the same checks as
    routing: the new assignee must be in the case's pool and have no conflict. Emits
    ``case_assigned``. Raises NotFound, Forbidden (not a supervisor), InvalidInput (unknown
    person), NotEligible (409, with the exclusion reason)."""
    case = _reachable_case(session, staff, case_id, for_update=True)
    if staff.role != "supervisor":
        raise Forbidden("Only a supervisor can reassign a case")
    target = _staff_by_ref(session, assignee)
    if target is None or not target.active:
        raise InvalidInput("Unknown or inactive staff member")
    now = now or utcnow()
    decision = routing.route(session, case.unit, parties, case.case_id)
    _record_exclusions(session, case.case_id, decision.exclusions, now)
    excluded = dict(decision.exclusions)
    if target.id in excluded:
        session.flush()
        raise NotEligible(f"Not eligible: {excluded[target.id]}")
    pool = routing.choose(routing.load_units(session), case.unit,
                          [c for c in routing.load_candidates(session) if c.staff_id == target.id])
    if pool.assignee_id != target.id:
        raise NotEligible("Not eligible: outside the pool that handles this unit")
    case.assignee_id = target.id
    case.routing_note = None
    case.updated_at = now
    session.add(CaseHistory(case_id=case.case_id, from_state=case.state, to_state=case.state,
                            reason=f"reassigned to {target.username}", actor=staff.id, at=now))
    _announce_assignment(session, case, staff.id, now)
    session.flush()
    session.expire(case, ["assignee"])
    return case_detail(session, case, staff, now=now)


def _staff_by_ref(session: Session, ref: str) -> Staff | None:
    ref = (ref or "").strip()
    try:
        return session.get(Staff, str(uuid.UUID(ref)))
    except ValueError:
        return session.scalar(select(Staff).where(Staff.username == ref.lower()))


def case_for_message(session: Session, staff: Staff, case_id: str, visibility: str) -> Case:
    """The case a staff member may post on (checked before the text goes to storage)."""
    if visibility not in ("reporter", "internal"):
        raise InvalidInput("'visibility' must be 'reporter' or 'internal'")
    case = _reachable_case(session, staff, case_id)
    if case.content_destroyed:
        raise Conflict("The report was destroyed under the retention policy")
    return case


def post_message(session: Session, staff: Staff, case_id: str, message_id: str, visibility: str,
                 *, awaiting_reporter: bool = False, now: dt.datetime | None = None,
                 calendar: deadlines.Calendar | None = None) -> dict:
    """Record a message whose text storage already holds, announce it, audit it; optionally move
    the case to ``awaiting_reporter`` (a question to the reporter pauses the clocks).

    Emits ``case_message_posted`` {case_id, direction, message_id} and, when moved,
    ``case_status_changed``. Raises NotFound, InvalidInput, TransitionForbidden (409).
    """
    case_for_message(session, staff, case_id, visibility)
    case = _reachable_case(session, staff, case_id, for_update=True)
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
    return {"message_id": message_id, "direction": direction, "at": _iso(now), "state": case.state}


def record_reporter_message(session: Session, event: dict, *, now: dt.datetime | None = None,
                            calendar: deadlines.Calendar | None = None) -> dict | None:
    """``reporter_message_posted``: the reporter answered through intake. Record it (direction
    ``from_reporter``), announce ``case_message_posted``, and move a case that was waiting for
    the reporter back to ``verification`` (DOMAIN.md: "the reporter answered"), which restarts
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
        if h.to_state in lifecycle.LABELS and (h.from_state != h.to_state):
            seen_states.append({"code": h.to_state, "label": lifecycle.reporter_label(h.to_state, language),
                                "at": _iso(h.at)})
    messages = session.scalars(
        select(CaseMessage).where(CaseMessage.case_id == case.case_id,
                                  CaseMessage.direction.in_(("to_reporter", "from_reporter")))
        .order_by(CaseMessage.at, CaseMessage.message_id))
    return {
        "case_id": case.case_id,
        "state": {"code": case.state, "label": lifecycle.reporter_label(case.state, language)},
        "history": seen_states,
        "messages": [{"message_id": m.message_id, "direction": m.direction, "at": _iso(m.at)} for m in messages],
    }


def _iso(value: dt.datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def category_labels(code: str) -> dict:
    id_label, en_label = CATEGORY_LABELS.get(code, (code, code))
    return {"code": code, "label": id_label, "labels": {"id": id_label, "en": en_label}}


def case_summary(case: Case, viewer: Staff) -> dict:
    assignee = case.assignee
    return {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "unit": case.unit,
        "category": category_labels(case.category),
        "state": lifecycle.labels(case.state),
        "end_detail": lifecycle.detail_labels(case.state, case.end_detail),
        "assignee": None if assignee is None else {
            "staff_id": assignee.id,
            "username": assignee.username,
            "display_name": assignee.display_name,
        },
        "routing_note": case.routing_note,
        "evidence_count": case.evidence_count,
        "flags": {"on_hold": bool(case.on_hold), "legal_hold": bool(case.legal_hold),
                  "conflict_flagged": bool(case.conflict_flagged), "escalated": bool(case.escalated),
                  "content_destroyed": bool(case.content_destroyed)},
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "allowed_transitions": [
            dict(lifecycle.labels(s), details=[lifecycle.detail_labels(s, d) for d in lifecycle.detail_choices(case.state, s)])
            for s in lifecycle.allowed_moves(case.state, viewer.role)
        ],
    }


def case_detail(session: Session, case: Case, viewer: Staff, *, now: dt.datetime | None = None) -> dict:
    data = case_summary(case, viewer)
    history = list(session.scalars(
        select(CaseHistory).where(CaseHistory.case_id == case.case_id).order_by(CaseHistory.at, CaseHistory.id)
    ))
    exclusions = list(session.scalars(select(CaseExclusion).where(CaseExclusion.case_id == case.case_id)
                                      .order_by(CaseExclusion.at, CaseExclusion.id)))
    messages = list(session.scalars(select(CaseMessage).where(CaseMessage.case_id == case.case_id)
                                    .order_by(CaseMessage.at, CaseMessage.message_id)))
    actor_ids = {h.actor for h in history} | {e.candidate_id for e in exclusions} | {m.author_id for m in messages}
    actor_ids = {a for a in actor_ids if a and a not in (SYSTEM_ACTOR, REPORTER_ACTOR)}
    names = {}
    if actor_ids:
        names = {s.id: s.username for s in session.scalars(select(Staff).where(Staff.id.in_(actor_ids)))}
    data["history"] = [
        {
            "from_state": h.from_state,
            "to_state": h.to_state,
            "to_label": lifecycle.LABELS[h.to_state].staff_id if h.to_state in lifecycle.LABELS else h.to_state,
            "labels": lifecycle.labels(h.to_state)["labels"] if h.to_state in lifecycle.LABELS else None,
            "reason": h.reason,
            "detail": lifecycle.detail_labels(h.to_state, h.detail),
            "actor": names.get(h.actor, h.actor),
            "at": _iso(h.at),
        }
        for h in history
    ]
    data["routing_exclusions"] = [
        {"candidate_id": e.candidate_id, "username": names.get(e.candidate_id), "reason": e.reason,
         "labels": dict(zip(("id", "en"), routing.REASON_LABELS.get(e.reason, (e.reason, e.reason)))),
         "at": _iso(e.at)}
        for e in exclusions
    ] if viewer.role == "supervisor" else [
        # An inspector sees only their own recusal record, not who else was screened out.
        {"candidate_id": e.candidate_id, "username": names.get(e.candidate_id), "reason": e.reason,
         "labels": dict(zip(("id", "en"), routing.REASON_LABELS.get(e.reason, (e.reason, e.reason)))),
         "at": _iso(e.at)}
        for e in exclusions if e.candidate_id == viewer.id
    ]
    data["messages"] = [
        {"message_id": m.message_id, "direction": m.direction, "author": names.get(m.author_id),
         "at": _iso(m.at), "text": None}
        for m in messages
    ]
    data["deadlines"] = deadlines.clocks_view(session, case.case_id, now or utcnow())
    return data


def attach_content(case: dict, content: bytes | None, evidence: list[dict] | None,
                   texts: dict[str, str] | None = None) -> dict:
    """Add what storage gave back (sealed report JSON, evidence list, message texts) to a case.

    Only narrative and parties (and the 4W1H fields around them) are shown; the reporter's
    identity block is dropped here even if storage returned it, because inspectors get it only
    through a separate, explicitly authorised path.
    """
    report = parse_report(content)
    reporter = report.get("reporter") if isinstance(report.get("reporter"), dict) else {}
    out = dict(case)
    out.update({
        "title": report.get("title"),
        "narrative": report.get("description"),
        "parties": report.get("parties") or [],
        "occurred": report.get("occurred"),
        "location": report.get("location"),
        "reporter": {
            "relationship": reporter.get("relationship"),
            "involved": reporter.get("involved"),
        },
        "evidence": [
            {k: e.get(k) for k in ("evidence_id", "filename", "media_type", "size_bytes", "sha256")}
            for e in (evidence or [])
        ],
    })
    texts = texts or {}
    out["messages"] = [dict(m, text=texts.get(m["message_id"])) for m in case.get("messages", [])]
    return out


def parse_report(content) -> dict:
    if not content:
        return {}
    try:
        report = json.loads(content.decode("utf-8")) if isinstance(content, (bytes, bytearray)) else dict(content)
    except (ValueError, UnicodeDecodeError, TypeError):
        return {}
    return report if isinstance(report, dict) else {}


def audit_read(session: Session, staff: Staff, case_id: str, action: str, **detail) -> None:
    """Record a content read or evidence download in the audit chain (before storage is asked)."""
    audit.append(session, staff.id, action, case_id, **detail)


# --------------------------------------------------------------------------- directory


def list_units(session: Session) -> list[dict]:
    return [
        {"code": u.code, "name": u.name, "parent": u.parent_code, "inspectorate": bool(u.inspectorate)}
        for u in session.scalars(select(Unit).order_by(Unit.code))
    ]


def add_unit(session: Session, code: str, name: str, parent: str | None = None, inspectorate: bool = False) -> dict:
    """Add a unit under ``parent``. Raises :class:`InvalidInput` or :class:`Conflict`."""
    code = (code or "").strip()
    name = (name or "").strip()
    if not _CODE_RE.match(code):
        raise InvalidInput("Unit code must be lowercase letters, digits, '-' or '_' (max 64)")
    if not name:
        raise InvalidInput("Unit name is required")
    if parent is not None and session.get(Unit, parent) is None:
        raise InvalidInput(f"Unknown parent unit {parent!r}")
    if session.get(Unit, code) is not None:
        raise Conflict(f"Unit {code!r} already exists")
    session.add(Unit(code=code, name=name, parent_code=parent, inspectorate=bool(inspectorate)))
    session.flush()
    return {"code": code, "name": name, "parent": parent, "inspectorate": bool(inspectorate)}


def add_staff(
    session: Session,
    passwords: auth.Passwords,
    username: str,
    email: str,
    unit: str,
    role: str = "inspector",
    *,
    display_name: str | None = None,
    language: str = "id",
    password: str | None = None,
    totp_secret: str | None = None,
    nip: str | None = None,
    escalation_pool: bool = False,
    oversees: list[str] | None = None,
) -> dict:
    """Create a staff account with a random initial password and a TOTP secret.

    The password is given back this once (the CLI prints it) and only its Argon2id hash is kept.
    Raises :class:`InvalidInput` or :class:`Conflict`.
    """
    username = (username or "").strip().lower()
    email = (email or "").strip()
    if not _USERNAME_RE.match(username):
        raise InvalidInput("Username must be 2-64 lowercase letters, digits, '.', '-' or '_'")
    if "@" not in email or len(email) > 254:
        raise InvalidInput("A valid email is required")
    if role not in ROLES:
        raise InvalidInput(f"Role must be one of {', '.join(ROLES)}")
    if session.get(Unit, unit) is None:
        raise InvalidInput(f"Unknown unit {unit!r}")
    if session.scalar(select(Staff).where(Staff.username == username)) is not None:
        raise Conflict(f"Username {username!r} is taken")
    password = password or auth.new_password()
    totp_secret = totp_secret or auth.new_totp_secret()
    staff = Staff(
        id=str(uuid.uuid4()),
        username=username,
        email=email,
        display_name=(display_name or username).strip(),
        role=role,
        home_unit=unit,
        language=language if language in ("id", "en") else "id",
        password_hash=passwords.hash(password),
        totp_secret=totp_secret,
        active=True,
        nip=routing.normalise_nip(nip),
        escalation_pool=bool(escalation_pool) and role == "supervisor",
    )
    session.add(staff)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Username {username!r} is taken")
    if role == "supervisor":
        set_supervision(session, staff.id, oversees if oversees else [unit])
    return {
        "staff_id": staff.id,
        "username": username,
        "role": role,
        "unit": unit,
        "password": password,
        "totp_secret": totp_secret,
        "otpauth_uri": auth.otpauth_uri(totp_secret, username),
    }


def _staff(session: Session, ref: str) -> Staff:
    staff = _staff_by_ref(session, ref)
    if staff is None:
        raise NotFound("No such staff member")
    return staff


def set_supervision(session: Session, staff_ref: str, units: list[str]) -> dict:
    """Replace the units a supervisor oversees. Raises NotFound, InvalidInput."""
    staff = _staff(session, staff_ref)
    if staff.role != "supervisor":
        raise InvalidInput("Only a supervisor oversees units")
    for code in units:
        if session.get(Unit, code) is None:
            raise InvalidInput(f"Unknown unit {code!r}")
    for row in session.scalars(select(Supervision).where(Supervision.staff_id == staff.id)):
        session.delete(row)
    session.flush()
    for code in sorted(set(units)):
        session.add(Supervision(staff_id=staff.id, unit_code=code))
    session.flush()
    return {"staff_id": staff.id, "oversees": sorted(set(units))}


def move_staff(session: Session, staff_ref: str, unit: str) -> dict:
    """Give a staff member a new home unit (their reach follows at once). Raises NotFound,
    InvalidInput."""
    staff = _staff(session, staff_ref)
    if session.get(Unit, unit) is None:
        raise InvalidInput(f"Unknown unit {unit!r}")
    staff.home_unit = unit
    session.flush()
    return staff_view(staff)


def set_staff_active(session: Session, staff_ref: str, active: bool, *, actor: str = SYSTEM_ACTOR) -> dict:
    """Disable (or re-enable) an account. Disabling revokes every session of it in the same
    transaction, so the next request with any of its tokens is refused. Audited."""
    staff = _staff(session, staff_ref)
    staff.active = bool(active)
    revoked = 0
    if not active:
        revoked = revoke_sessions(session, staff.id)
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id,
                 change="enabled" if active else "disabled")
    session.flush()
    return dict(staff_view(staff), active=staff.active, sessions_revoked=revoked)


def revoke_staff_sessions(session: Session, staff_ref: str, *, actor: str = SYSTEM_ACTOR) -> dict:
    """End every open session of an account (it stays enabled). Audited."""
    staff = _staff(session, staff_ref)
    revoked = revoke_sessions(session, staff.id)
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="sessions_revoked")
    return {"staff_id": staff.id, "sessions_revoked": revoked}


def revoke_sessions(session: Session, staff_id: str) -> int:
    rows = list(session.scalars(select(StaffSession).where(StaffSession.staff_id == staff_id,
                                                          StaffSession.revoked.is_(False))))
    for row in rows:
        row.revoked = True
    return len(rows)


def declare_conflict(session: Session, staff: Staff, *, unit: str | None = None, name: str | None = None,
                     nip: str | None = None, note: str | None = None, now: dt.datetime | None = None) -> dict:
    """A staff member declares a conflict of interest (a unit and/or a person). Routing and
    reassignment exclude them from every case it touches from now on. Raises InvalidInput."""
    unit = (unit or "").strip() or None
    name = (name or "").strip() or None
    nip = routing.normalise_nip(nip)
    if not (unit or name or nip):
        raise InvalidInput("Declare a unit, a name or a NIP")
    if unit is not None and session.get(Unit, unit) is None:
        raise InvalidInput(f"Unknown unit {unit!r}")
    row = DeclaredConflict(staff_id=staff.id, unit_code=unit, party_name=name, party_nip=nip,
                           note=(note or "").strip() or None, at=now or utcnow())
    session.add(row)
    session.flush()
    return {"id": row.id, "unit": unit, "name": name, "nip": nip}


def list_declared_conflicts(session: Session, staff: Staff) -> list[dict]:
    return [{"id": r.id, "unit": r.unit_code, "name": r.party_name, "nip": r.party_nip, "at": _iso(r.at)}
            for r in session.scalars(select(DeclaredConflict).where(DeclaredConflict.staff_id == staff.id)
                                     .order_by(DeclaredConflict.id))]


def set_unit_clocks(session: Session, code: str, *, ack_days: int | None = None,
                    ack_working_days: bool | None = None, verification_days: int | None = None,
                    verification_working_days: bool | None = None, feedback_months: int | None = None) -> dict:
    """Change a unit's deadline clocks (new cases use them). Raises NotFound, InvalidInput."""
    unit = session.get(Unit, code)
    if unit is None:
        raise NotFound("No such unit")
    for name, value in (("ack_days", ack_days), ("verification_days", verification_days),
                        ("feedback_months", feedback_months)):
        if value is not None:
            if int(value) <= 0:
                raise InvalidInput(f"{name} must be positive")
            setattr(unit, name, int(value))
    if ack_working_days is not None:
        unit.ack_working_days = bool(ack_working_days)
    if verification_working_days is not None:
        unit.verification_working_days = bool(verification_working_days)
    session.flush()
    return {"code": unit.code, "ack_days": unit.ack_days, "ack_working_days": unit.ack_working_days,
            "verification_days": unit.verification_days,
            "verification_working_days": unit.verification_working_days,
            "feedback_months": unit.feedback_months}


def case_contacts(session: Session, case_id: str) -> dict | None:
    """Who to tell about a case (ids only): its assignee and the active supervisors who reach it."""
    try:
        case_id = str(uuid.UUID(str(case_id)))
    except ValueError:
        return None
    case = session.get(Case, case_id)
    if case is None:
        return None
    supervisors = [s.id for s in session.scalars(select(Staff).where(Staff.role == "supervisor",
                                                                     Staff.active.is_(True)))
                   if s.id != case.assignee_id and _reaches(session, s, case.case_id)]
    return {"case_id": case.case_id, "assignee_id": case.assignee_id, "supervisor_ids": sorted(supervisors)}


def get_recipient(session: Session, staff_id: str) -> dict | None:
    """Where to send a staff member content-free notices, or None if unknown or inactive."""
    try:
        staff_id = str(uuid.UUID(str(staff_id)))
    except ValueError:
        return None
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    return {"email": staff.email, "display_name": staff.display_name, "language": staff.language}


def staff_view(staff: Staff) -> dict:
    return {
        "staff_id": staff.id,
        "username": staff.username,
        "display_name": staff.display_name,
        "role": staff.role,
        "unit": staff.home_unit,
        "language": staff.language,
    }


DEMO_UNITS = (
    ("itjen", "Inspektorat Jenderal", None, True),
    ("dit-smp", "Direktorat Sekolah Menengah Pertama", "itjen", False),
    ("kpu-dki", "KPU Provinsi DKI Jakarta", "itjen", False),
)

# Fixed so `make run` can print a sign-in that works every time; used only in development.
DEMO_STAFF = {
    "inspector": dict(username="inspektur", email="inspektur@wbs.example.org", display_name="Inspektur Demo",
                      password="inspektur-demo-2026", totp_secret="WBSDEMOINSPEKTUR234567AB"),
    "supervisor": dict(username="supervisor", email="supervisor@wbs.example.org", display_name="Supervisor Demo",
                       password="supervisor-demo-2026", totp_secret="WBSDEMOSUPERVISOR234567A"),
}


def seed_demo(session: Session, passwords: auth.Passwords, *, development: bool) -> dict:
    """Create the demo directory once: units itjen > {dit-smp, kpu-dki}, an inspector and a
    supervisor homed at itjen. Idempotent.

    In development the sign-ins are fixed (and shown on every call); otherwise they are random
    and shown only on the call that created them (``password`` is None afterwards).
    """
    for code, name, parent, inspectorate in DEMO_UNITS:
        if session.get(Unit, code) is None:
            add_unit(session, code, name, parent, inspectorate)
    result = {}
    for role, spec in DEMO_STAFF.items():
        existing = session.scalar(select(Staff).where(Staff.username == spec["username"]))
        if existing is None:
            created = add_staff(
                session, passwords, spec["username"], spec["email"], "itjen", role,
                display_name=spec["display_name"],
                password=spec["password"] if development else None,
                totp_secret=spec["totp_secret"] if development else None,
            )
            result[role] = {k: created[k] for k in ("staff_id", "username", "password", "totp_secret", "otpauth_uri")}
            result[role]["created"] = True
        else:
            result[role] = {
                "staff_id": existing.id,
                "username": existing.username,
                "password": spec["password"] if development else None,
                "totp_secret": existing.totp_secret if development else None,
                "otpauth_uri": auth.otpauth_uri(existing.totp_secret, existing.username) if development else None,
                "created": False,
            }
    return result

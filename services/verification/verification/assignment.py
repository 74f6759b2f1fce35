"""Who handles a case after it opened: recusal, parties found later, reassignment.

Each use case re-runs the same checks as routing (``routing.route``) and records every
exclusion with its reason, so a person with a conflict never gets the case back. The caller
reads the report's parties from storage beforehand (outside the transaction) and passes them in.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_plumbing.outbox import add_event

from . import audit, directory, reach, routing
from .errors import Forbidden, InvalidInput, NotEligible
from .models import SYSTEM_ACTOR, Case, CaseExclusion, CaseHistory, OutboxMessage, Staff, utcnow


def record_exclusions(session: Session, case_id: str, exclusions, now: dt.datetime) -> None:
    if not exclusions:
        return
    known = set(session.execute(select(CaseExclusion.candidate_id, CaseExclusion.reason)
                                .where(CaseExclusion.case_id == case_id)).all())
    for staff_id, reason in exclusions:
        if (staff_id, reason) not in known:
            session.add(CaseExclusion(case_id=case_id, candidate_id=staff_id, reason=reason, at=now))
            known.add((staff_id, reason))


def announce_assignment(session: Session, case: Case, actor: str, now: dt.datetime) -> None:
    """Emit ``case_assigned``; a staff member's assignment (reassignment, recusal) is audited.

    Routing's own assignment when a case opens is not a staff action and is already recorded in
    the case's history and exclusions; keeping it out of the chain keeps case opening off the
    chain's lock, so verification workers open cases in parallel.
    """
    event = {"case_id": case.case_id, "inspector_id": case.assignee_id, "unit": case.unit,
             "report_id": case.report_id}  # so notification needs nothing from case_opened
    if case.reference:  # the subject of the inspector's email, without asking verification back
        event["reference"] = case.reference
    add_event(session, OutboxMessage, "case_assigned", event)
    if actor != SYSTEM_ACTOR:
        audit.append(session, actor, audit.ASSIGNMENT, case.case_id, now=now, assignee=case.assignee_id)


def recuse(session: Session, staff: Staff, case_id: str, reason: str | None,
           parties: list[routing.Party], *, now: dt.datetime | None = None) -> dict:
    """The assignee steps aside from a case (conflict of interest). Recorded as an exclusion with
    reason ``recused`` (so routing never gives it back to them), the case is flagged and routed
    again with the same checks. Emits ``case_assigned`` when someone else takes it.
    Raises NotFound, InvalidInput (no reason), Forbidden (not the assignee)."""
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    if case.assignee_id != staff.id:
        raise Forbidden("Only the case's assignee can recuse themselves")
    if not (reason or "").strip():
        raise InvalidInput("A recusal needs a reason")
    now = now or utcnow()
    record_exclusions(session, case.case_id, [(staff.id, routing.RECUSED)], now)
    session.flush()
    case.conflict_flagged = True
    audit.append(session, staff.id, audit.RECUSAL, case.case_id, now=now)
    decision = routing.route(session, case.unit, parties, case.case_id, exclude={staff.id})
    record_exclusions(session, case.case_id, decision.exclusions, now)
    case.assignee_id = decision.assignee_id
    case.routing_note = decision.note
    case.updated_at = now
    session.add(CaseHistory(case_id=case.case_id, from_state=case.state, to_state=case.state,
                            reason=f"recused{': ' + decision.note if decision.note else ''}",
                            actor=staff.id, at=now))
    if case.assignee_id is not None:
        announce_assignment(session, case, staff.id, now)
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
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    now = now or utcnow()
    declared = routing.load_declared(session)
    hits = []
    for cand in routing.load_candidates(session) + directory.supervisor_candidates(session):
        reason = routing.conflict_reason(cand, "", parties, declared.get(cand.staff_id, ()), False)
        if reason is not None and (cand.staff_id, reason) not in hits:
            hits.append((cand.staff_id, reason))
    record_exclusions(session, case.case_id, hits, now)
    if hits:
        case.conflict_flagged = True
    audit.append(session, staff.id, audit.PARTIES_ADDED, case.case_id, now=now, excluded=len(hits))
    if case.assignee_id in dict(hits):
        session.flush()
        decision = routing.route(session, case.unit, parties, case.case_id)
        record_exclusions(session, case.case_id, decision.exclusions, now)
        case.assignee_id, case.routing_note = decision.assignee_id, decision.note
        session.add(CaseHistory(case_id=case.case_id, from_state=case.state, to_state=case.state,
                                reason="conflict found in added parties" + (f": {decision.note}" if decision.note else ""),
                                actor=staff.id, at=now))
        if case.assignee_id is not None:
            announce_assignment(session, case, staff.id, now)
    case.updated_at = now
    session.flush()
    return {"case_id": case.case_id, "assignee_id": case.assignee_id, "routing_note": case.routing_note,
            "excluded": [{"staff_id": sid, "reason": r} for sid, r in hits]}


def reassign(session: Session, staff: Staff, case_id: str, assignee: str,
             parties: list[routing.Party], *, now: dt.datetime | None = None) -> Case:
    """A supervisor gives a case to someone else (username or staff id), with the same checks as
    routing: the new assignee must be in the case's pool and have no conflict. Emits
    ``case_assigned``. Raises NotFound, Forbidden (not a supervisor), InvalidInput (unknown
    person), NotEligible (with the exclusion reason)."""
    case = reach.reachable_case(session, staff, case_id, for_update=True)
    if staff.role != "supervisor":
        raise Forbidden("Only a supervisor can reassign a case")
    target = directory.staff_by_ref(session, assignee)
    if target is None or not target.active:
        raise InvalidInput("Unknown or inactive staff member")
    now = now or utcnow()
    decision = routing.route(session, case.unit, parties, case.case_id)
    record_exclusions(session, case.case_id, decision.exclusions, now)
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
    announce_assignment(session, case, staff.id, now)
    session.flush()
    session.expire(case, ["assignee"])
    return case

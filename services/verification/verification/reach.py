"""Who may see a case: reach, as one SQL condition (docs/architecture.md §5.5).

Always computed from the database *now*, so moving, disabling or re-scoping an account takes
effect on its next request:

* anyone reaches the cases assigned to them (an inspector only those);
* a supervisor reaches the cases about the units they oversee and every unit below them,
  except cases about their own home unit and cases they have a recorded conflict in
  (named among the parties, declared conflict, recused);
* a report about an inspectorate is escalated: only escalation-pool supervisors whose home unit
  is outside that inspectorate reach it (and its assignee);
* an administrator reaches no case at all (they manage units and accounts, not content).

A case out of reach raises :class:`NotFound`, exactly like a case that does not exist, so
probing case ids reveals nothing. What a role may *do* to a case it reaches (legal hold,
reassignment, the conflict flag) is checked by the use case itself (``cases``,
``assignment``); which moves a role may make is ``lifecycle.allowed_moves``.
"""
from __future__ import annotations

import uuid

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from . import routing
from .errors import NotFound
from .models import Case, CaseExclusion, Staff, Supervision


def overseen_units(session: Session, staff: Staff, units=None) -> set[str]:
    """Every unit a supervisor reaches through oversight (overseen units and all below them)."""
    units = units if units is not None else routing.load_units(session)
    roots = session.scalars(select(Supervision.unit_code).where(Supervision.staff_id == staff.id))
    reach: set[str] = set()
    for root in roots:
        reach |= routing.subtree(units, root)
    return reach


def scope_filter(session: Session, staff: Staff):
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


def reachable_case(session: Session, staff: Staff, case_id: str, *, for_update: bool = False) -> Case:
    try:
        case_id = str(uuid.UUID(str(case_id)))
    except ValueError:
        raise NotFound("No such case")
    condition = scope_filter(session, staff)
    if condition is None:
        raise NotFound("No such case")
    query = select(Case).where(Case.case_id == case_id, condition)
    if for_update:
        query = query.with_for_update(of=Case)
    case = session.scalar(query)
    if case is None:
        raise NotFound("No such case")
    return case


def reaches(session: Session, staff: Staff, case_id: str) -> bool:
    condition = scope_filter(session, staff)
    return condition is not None and session.scalar(
        select(Case.case_id).where(Case.case_id == case_id, condition)) is not None


def visible_case_ids(session: Session, staff: Staff) -> set[str]:
    """Every case id in ``staff``'s reach (for tests and the supervisor view)."""
    condition = scope_filter(session, staff)
    if condition is None:
        return set()
    return set(session.scalars(select(Case.case_id).where(condition)))

"""What notification asks verification for staff reminders and supervisors' digests.

Why here: verification alone knows deadlines, reach and states; notification keeps its own
exactly-once bookkeeping (one reminder per clock and due time, one digest per supervisor and
period) and only asks. Answers are ids, clock names, due times and counts: never a reference,
a narrative or a name.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_contracts.vocabulary import AWAITING_REPORTER, TERMINAL_STATES
from wbs_plumbing.clock import as_utc

from . import deadlines, reach
from .models import Case, CaseClock, Staff


def deadlines_ahead(session: Session, now: dt.datetime, until: dt.datetime) -> list[dict]:
    """Running, unpaused, unbreached clocks falling due between ``now`` and ``until``, of cases
    with an assignee: ``[{case_id, clock, due_at, assignee_id}]``."""
    rows = session.execute(
        select(CaseClock, Case.assignee_id).join(Case, Case.case_id == CaseClock.case_id)
        .where(CaseClock.stopped_at.is_(None), CaseClock.breached_at.is_(None),
               CaseClock.paused_since.is_(None), CaseClock.due_at >= now, CaseClock.due_at <= until,
               Case.assignee_id.is_not(None)))
    return [{"case_id": clock.case_id, "clock": clock.clock, "assignee_id": assignee_id,
             "due_at": deadlines.effective_due(clock, now).isoformat().replace("+00:00", "Z")}
            for clock, assignee_id in rows]


def supervisor_digests(session: Session, now: dt.datetime, since: dt.datetime) -> list[dict]:
    """Per active supervisor, counts by unit of the open cases in their reach: ``new`` (opened
    since ``since``), ``waiting`` (open, not awaiting the reporter), ``overdue`` (a clock
    breached or past due), ``awaiting_reporter``. Supervisors with nothing open are left out."""
    overdue_cases = set(session.scalars(
        select(CaseClock.case_id).where(CaseClock.stopped_at.is_(None),
                                        (CaseClock.breached_at.is_not(None)) | (CaseClock.due_at < now))))
    digests = []
    for supervisor in session.scalars(select(Staff).where(Staff.role == "supervisor", Staff.active.is_(True))):
        condition = reach.scope_filter(session, supervisor)
        if condition is None:
            continue
        units: dict[str, dict] = {}
        for case_id, unit, state, created_at in session.execute(
                select(Case.case_id, Case.unit, Case.state, Case.created_at)
                .where(condition, Case.state.not_in(sorted(TERMINAL_STATES)))):
            counts = units.setdefault(unit, {"unit": unit, "new": 0, "waiting": 0, "overdue": 0,
                                             "awaiting_reporter": 0})
            if as_utc(created_at) >= since:
                counts["new"] += 1
            if state == AWAITING_REPORTER:
                counts["awaiting_reporter"] += 1
            else:
                counts["waiting"] += 1
            if case_id in overdue_cases:
                counts["overdue"] += 1
        if units:
            digests.append({"supervisor_id": supervisor.id, "units": sorted(units.values(), key=lambda u: u["unit"])})
    return digests


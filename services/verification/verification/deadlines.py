"""Deadline clocks of a case (docs/domain.md "Deadlines people are held to").

Three clocks, each unit configures its own (defaults in brackets):

* ``acknowledge`` [7 calendar days]: from receipt until the case leaves ``received``;
* ``verification`` [5 working days]: from entering ``verification`` until it leaves the
  verification phase (``analysis`` or an end state);
* ``feedback`` [3 months]: from acknowledgement until the case ends (the reporter then sees
  the final state and its feedback).

Working days (*hari kerja*) skip Saturdays, Sundays, Indonesian national holidays (the
``holidays`` package, country ID) and the *cuti bersama* dates an administrator configures
(``CUTI_BERSAMA_DATES``: the government announces them each year, no library knows them in
advance). Days are counted on the Jakarta calendar (UTC+7): a report filed on a Friday evening
in Jakarta is a Friday report even though it is Friday noon in UTC.

Pausing: while a case waits for the reporter every running clock stops. On resume, its due time
moves later by the time spent paused (calendar time; a clock never gains time because the
reporter answered on a holiday). A breach is announced once: ``breached_at`` is set in the same
transaction that writes ``sla_breached`` into the outbox.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import holidays
from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_plumbing.outbox import add_event

from . import lifecycle
from .models import Case, CaseClock, OutboxMessage, Unit, as_utc

ACKNOWLEDGE = "acknowledge"
VERIFICATION = "verification"
FEEDBACK = "feedback"
CLOCKS = (ACKNOWLEDGE, VERIFICATION, FEEDBACK)
CLOCK_LABELS = {
    ACKNOWLEDGE: ("Tanggapan awal", "Acknowledgement"),
    VERIFICATION: ("Verifikasi", "Verification"),
    FEEDBACK: ("Umpan balik ke pelapor", "Feedback to reporter"),
}
JAKARTA = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Calendar:
    """Which days count as working days."""

    cuti_bersama: frozenset[dt.date] = frozenset()

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in _national_holidays(day.year) and day not in self.cuti_bersama

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """The moment ``days`` working days after ``start`` (same time of day, Jakarta calendar)."""
        local = as_utc(start).astimezone(JAKARTA)
        day = local.date()
        remaining = days
        while remaining > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return dt.datetime.combine(day, local.timetz()).astimezone(dt.timezone.utc)


@lru_cache(maxsize=32)
def _national_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("ID", years=year).keys())


def parse_dates(values: Iterable[str] | str | None) -> frozenset[dt.date]:
    """``CUTI_BERSAMA_DATES``: ISO dates, as a list or comma/space separated."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    return frozenset(dt.date.fromisoformat(str(v).strip()) for v in values if str(v).strip())


def add_months(start: dt.datetime, months: int) -> dt.datetime:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def due_from(clock: str, unit: Unit | None, start: dt.datetime, cal: Calendar) -> dt.datetime:
    ack_days = unit.ack_days if unit is not None and unit.ack_days is not None else 7
    ack_working = bool(unit.ack_working_days) if unit is not None else False
    ver_days = unit.verification_days if unit is not None and unit.verification_days is not None else 5
    ver_working = bool(unit.verification_working_days) if unit is not None and unit.verification_working_days is not None else True
    months = unit.feedback_months if unit is not None and unit.feedback_months is not None else 3
    start = as_utc(start)
    if clock == ACKNOWLEDGE:
        return cal.add_working_days(start, ack_days) if ack_working else start + dt.timedelta(days=ack_days)
    if clock == VERIFICATION:
        return cal.add_working_days(start, ver_days) if ver_working else start + dt.timedelta(days=ver_days)
    return add_months(start, months)


def _clock(session: Session, case_id: str, clock: str) -> CaseClock | None:
    return session.get(CaseClock, (case_id, clock))


def start_clock(session: Session, case: Case, clock: str, now: dt.datetime, cal: Calendar) -> None:
    """Start ``clock`` unless it already ran (a case re-entering verification keeps its clock)."""
    if _clock(session, case.case_id, clock) is not None:
        return
    unit = session.get(Unit, case.unit)
    session.add(CaseClock(case_id=case.case_id, clock=clock, started_at=now,
                          due_at=due_from(clock, unit, now, cal)))


def stop_clock(session: Session, case_id: str, clock: str, now: dt.datetime) -> None:
    row = _clock(session, case_id, clock)
    if row is not None and row.stopped_at is None:
        if row.paused_since is not None:
            row.due_at = as_utc(row.due_at) + (now - as_utc(row.paused_since))
            row.paused_since = None
        row.stopped_at = now


def on_transition(session: Session, case: Case, from_state: str | None, to_state: str,
                  now: dt.datetime, cal: Calendar) -> None:
    """Start, stop, pause and resume clocks for a move (or for the case's opening)."""
    if from_state is None:  # a new case: no clock can exist yet
        due = due_from(ACKNOWLEDGE, session.get(Unit, case.unit), now, cal)
        session.add(CaseClock(case_id=case.case_id, clock=ACKNOWLEDGE, started_at=now, due_at=due))
        case.next_due_at = due  # its only clock; inserted with it (models._keep_next_due)
        return
    running = {c.clock: c for c in session.scalars(select(CaseClock).where(CaseClock.case_id == case.case_id))}
    if from_state == lifecycle.AWAITING_REPORTER:
        for row in running.values():
            if row.stopped_at is None and row.paused_since is not None:
                row.due_at = as_utc(row.due_at) + (now - as_utc(row.paused_since))
                row.paused_since = None
    if from_state == lifecycle.RECEIVED:
        stop_clock(session, case.case_id, ACKNOWLEDGE, now)
        start_clock(session, case, FEEDBACK, now, cal)
    if to_state == lifecycle.VERIFICATION:
        start_clock(session, case, VERIFICATION, now, cal)
    if to_state == lifecycle.ANALYSIS or to_state in lifecycle.TERMINAL:
        stop_clock(session, case.case_id, VERIFICATION, now)
    if to_state in lifecycle.TERMINAL:
        for clock in CLOCKS:
            stop_clock(session, case.case_id, clock, now)
    if to_state == lifecycle.ANALYSIS and from_state in lifecycle.TERMINAL:
        # Reopened: the reporter is owed feedback again, on a fresh clock.
        row = _clock(session, case.case_id, FEEDBACK)
        if row is not None:
            row.started_at, row.stopped_at, row.breached_at, row.paused_since = now, None, None, None
            row.due_at = due_from(FEEDBACK, session.get(Unit, case.unit), now, cal)
    if to_state == lifecycle.AWAITING_REPORTER:
        for row in session.scalars(select(CaseClock).where(CaseClock.case_id == case.case_id)):
            if row.stopped_at is None and row.paused_since is None:
                row.paused_since = now


def effective_due(row: CaseClock, now: dt.datetime) -> dt.datetime:
    """The due time as of ``now``: a paused clock's deadline moves along with the pause."""
    due = as_utc(row.due_at)
    if row.paused_since is not None:
        due += now - as_utc(row.paused_since)
    return due


def check_breaches(session: Session, now: dt.datetime, limit: int = 500) -> list[dict]:
    """Publish ``sla_breached`` once for every running, unpaused clock past its due time.

    Rows are locked (``SKIP LOCKED`` on PostgreSQL), so two verification instances running the
    timer at once announce each breach once. Returns what was published.
    """
    query = (select(CaseClock)
             .where(CaseClock.stopped_at.is_(None), CaseClock.breached_at.is_(None),
                    CaseClock.paused_since.is_(None), CaseClock.due_at < now)
             .order_by(CaseClock.due_at).limit(limit)
             .with_for_update(skip_locked=True))
    published = []
    for row in session.scalars(query):
        row.breached_at = now
        body = {"case_id": row.case_id, "clock": row.clock,
                "due_at": as_utc(row.due_at).isoformat().replace("+00:00", "Z")}
        add_event(session, OutboxMessage, "sla_breached", body)
        published.append(body)
    session.flush()
    return published


def clocks_view(session: Session, case_id: str, now: dt.datetime) -> list[dict]:
    rows = session.scalars(select(CaseClock).where(CaseClock.case_id == case_id))
    return [clock_dict(r, now) for r in sorted(rows, key=lambda r: CLOCKS.index(r.clock))]


def clock_dict(row: CaseClock, now: dt.datetime) -> dict:
    due = effective_due(row, now)
    label_id, label_en = CLOCK_LABELS[row.clock]
    if row.stopped_at is not None:
        status = "met" if as_utc(row.stopped_at) <= due and row.breached_at is None else "late"
    elif row.breached_at is not None or due < now:
        status = "breached"
    else:
        status = "paused" if row.paused_since is not None else "running"
    return {"clock": row.clock, "label": label_id, "labels": {"id": label_id, "en": label_en},
            "due_at": due.isoformat().replace("+00:00", "Z"), "status": status}

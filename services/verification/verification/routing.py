"""Who handles a new case (DOMAIN.md "Who handles a case").

A report about a unit goes to the inspectorate that oversees it: the nearest unit flagged
``inspectorate`` on the path from the reported unit up through its parents. Its candidates are
the active inspectors whose home unit belongs to that inspectorate. Anyone who works in the
reported unit itself is excluded (conflict of interest: they might be reporting on colleagues,
or be the reported party), and the reason is recorded. Among the rest, the one with the fewest
open cases gets it; ties go to the lowest username, then id, so routing is deterministic and a
redelivered event cannot pick someone else.

A report about an inspectorate itself must never go back to it: it escalates to the inspectorate
above. When no one is eligible the case stays unassigned with the note ``routing_failed`` and
the reason, for a supervisor to pick up.

The core (:func:`choose`) is a pure function over plain data; :func:`route` loads that data from
the database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import lifecycle
from .models import Case, Staff, Unit

HOME_UNIT = "home_unit"

FAIL_UNKNOWN_UNIT = "unknown_unit"
FAIL_NO_INSPECTORATE = "no_inspectorate"
FAIL_NO_CANDIDATE = "no_eligible_inspector"


@dataclass(frozen=True)
class UnitNode:
    code: str
    parent: str | None
    inspectorate: bool


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    username: str
    home_unit: str
    open_cases: int


@dataclass
class RoutingDecision:
    assignee_id: str | None
    inspectorate: str | None
    exclusions: list[tuple[str, str]] = field(default_factory=list)  # (staff_id, reason)
    failure: str | None = None

    @property
    def note(self) -> str | None:
        return None if self.failure is None else f"routing_failed: {self.failure}"


def path_up(units: Mapping[str, UnitNode], code: str) -> list[str]:
    """The unit and its ancestors, nearest first. Stops on a cycle rather than looping."""
    path: list[str] = []
    current: str | None = code
    while current is not None and current in units and current not in path:
        path.append(current)
        current = units[current].parent
    return path


def inspectorate_of(units: Mapping[str, UnitNode], code: str) -> str | None:
    """Nearest unit flagged inspectorate on the path from ``code`` up (``code`` itself included)."""
    for c in path_up(units, code):
        if units[c].inspectorate:
            return c
    return None


def responsible_inspectorate(units: Mapping[str, UnitNode], reported_unit: str) -> str | None:
    """The inspectorate that must verify a report about ``reported_unit``.

    Normally the unit's own inspectorate; for a report about an inspectorate, the one above it
    (a report about the inspectorate never goes back to it).
    """
    node = units.get(reported_unit)
    if node is None:
        return None
    if node.inspectorate:
        return None if node.parent is None else inspectorate_of(units, node.parent)
    return inspectorate_of(units, reported_unit)


def choose(
    units: Mapping[str, UnitNode], reported_unit: str, inspectors: Iterable[Candidate]
) -> RoutingDecision:
    """Pick the inspector for a report about ``reported_unit`` among active ``inspectors``."""
    if reported_unit not in units:
        return RoutingDecision(None, None, failure=FAIL_UNKNOWN_UNIT)
    inspectorate = responsible_inspectorate(units, reported_unit)
    if inspectorate is None:
        return RoutingDecision(None, None, failure=FAIL_NO_INSPECTORATE)

    exclusions: list[tuple[str, str]] = []
    eligible: list[Candidate] = []
    for cand in sorted(inspectors, key=lambda c: (c.username, c.staff_id)):
        if inspectorate_of(units, cand.home_unit) != inspectorate:
            continue  # not in this inspectorate's pool at all
        if cand.home_unit == reported_unit:
            exclusions.append((cand.staff_id, HOME_UNIT))
            continue
        eligible.append(cand)

    if not eligible:
        return RoutingDecision(None, inspectorate, exclusions, failure=FAIL_NO_CANDIDATE)
    best = min(eligible, key=lambda c: (c.open_cases, c.username, c.staff_id))
    return RoutingDecision(best.staff_id, inspectorate, exclusions)


def load_units(session: Session) -> dict[str, UnitNode]:
    return {
        u.code: UnitNode(u.code, u.parent_code, bool(u.inspectorate))
        for u in session.scalars(select(Unit))
    }


def load_candidates(session: Session) -> list[Candidate]:
    """Active inspectors with their count of open cases."""
    open_counts = dict(
        session.execute(
            select(Case.assignee_id, func.count())
            .where(Case.assignee_id.is_not(None), Case.state.in_(lifecycle.OPEN_STATES))
            .group_by(Case.assignee_id)
        ).all()
    )
    rows = session.scalars(select(Staff).where(Staff.role == "inspector", Staff.active.is_(True)))
    return [Candidate(s.id, s.username, s.home_unit, int(open_counts.get(s.id, 0))) for s in rows]


def route(session: Session, reported_unit: str) -> RoutingDecision:
    """Decide who gets a new case about ``reported_unit``, from the current database state."""
    return choose(load_units(session), reported_unit, load_candidates(session))


def subtree(units: Mapping[str, UnitNode], root: str) -> set[str]:
    """``root`` and every unit below it (a supervisor's reach)."""
    children: dict[str, list[str]] = {}
    for node in units.values():
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node.code)
    seen: set[str] = set()
    stack = [root] if root in units else []
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        stack.extend(children.get(code, ()))
    return seen

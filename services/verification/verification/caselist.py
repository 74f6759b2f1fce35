"""The case list for thousands of cases: search, filters, sorting and pages, in one query.

``GET /api/v1/cases`` and the console's list page both call :func:`search` with a
:class:`ListQuery` parsed from the request by :func:`parse_query`, so the two cannot drift.
Reach (``reach.scope_filter``) is always the first condition: filters only ever narrow what the
viewer may see, and a unit filter outside their reach gives an empty page, not an error (which
would tell them the unit has cases).

Only one page of cases is loaded (``per_page`` at most 200), with their units and clocks in two
more queries; the total comes from a ``count(*)`` over the same conditions. The default order
puts the nearest open deadline first (cases whose clocks all stopped go last, newest first):
that is the order an inspector works in.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlencode

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from wbs_contracts import vocabulary

from . import deadlines, lifecycle, reach, routing, views, zones
from .errors import InvalidInput
from .models import Case, CaseClock, Staff, Unit, utcnow

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
SORTS = ("deadline", "-deadline", "received", "-received", "reference", "-reference", "updated", "-updated")
DEFAULT_SORT = "deadline"
UNASSIGNED = "none"
_REFERENCE_TEXT = re.compile(r"^[A-Za-z0-9/ -]{1,80}$")


@dataclass(frozen=True)
class ListQuery:
    q: str | None = None
    state: str | None = None
    unit: str | None = None
    category: str | None = None
    assignee: str | None = None
    received_from: dt.date | None = None
    received_to: dt.date | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def as_params(self) -> dict:
        """The query as request parameters (for the page's links), without the defaults."""
        out = {}
        for name in ("q", "state", "unit", "category", "assignee", "received_from", "received_to"):
            value = getattr(self, name)
            if value:
                out[name] = value.isoformat() if isinstance(value, dt.date) else value
        if self.sort != DEFAULT_SORT:
            out["sort"] = self.sort
        if self.per_page != DEFAULT_PER_PAGE:
            out["per_page"] = str(self.per_page)
        return out

    def link(self, page: int) -> str:
        """The query string of page ``page`` of this same list."""
        return urlencode(dict(self.as_params(), page=str(page)))


def _int(args: Mapping, name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"'{name}' must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"'{name}' must be between {low} and {high}")
    return value


def _date(args: Mapping, name: str) -> dt.date | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise InvalidInput(f"'{name}' must be a date as YYYY-MM-DD")


def parse_query(args: Mapping) -> ListQuery:
    """A :class:`ListQuery` from request parameters; :class:`InvalidInput` (400) names what is wrong."""
    text = {k: (str(args.get(k)).strip() or None) if args.get(k) is not None else None
            for k in ("q", "state", "unit", "category", "assignee", "sort")}
    if text["q"] and not _REFERENCE_TEXT.match(text["q"]):
        raise InvalidInput("'q' is a register number or part of one (letters, digits, '/', '-')")
    if text["state"] and text["state"] not in lifecycle.STATE_LABELS:
        raise InvalidInput(f"'state' must be one of {', '.join(lifecycle.STATE_LABELS)}")
    if text["category"] and text["category"] not in vocabulary.CATEGORIES:
        raise InvalidInput("'category' is not a known category")
    sort = text["sort"] or DEFAULT_SORT
    if sort not in SORTS:
        raise InvalidInput(f"'sort' must be one of {', '.join(SORTS)}")
    query = ListQuery(q=text["q"], state=text["state"], unit=text["unit"], category=text["category"],
                      assignee=text["assignee"], received_from=_date(args, "received_from"),
                      received_to=_date(args, "received_to"), sort=sort,
                      page=_int(args, "page", 1, 1, 1_000_000),
                      per_page=_int(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))
    if query.received_from and query.received_to and query.received_from > query.received_to:
        raise InvalidInput("'received_from' is after 'received_to'")
    return query


def _conditions(session: Session, staff: Staff, query: ListQuery, scope) -> list:
    conditions = [scope]
    if query.q:
        needle = query.q.upper().replace("%", "").replace("_", "")
        conditions.append(Case.reference.like(f"%{needle}%"))
    if query.state:
        conditions.append(Case.state == query.state)
    if query.category:
        conditions.append(Case.category == query.category)
    if query.unit:
        conditions.append(Case.unit.in_(sorted(routing.subtree(routing.load_units(session), query.unit))
                                        or [query.unit]))
    if query.assignee == UNASSIGNED:
        conditions.append(Case.assignee_id.is_(None))
    elif query.assignee:
        staff_ids = select(Staff.id).where(or_(Staff.username == query.assignee,
                                               Staff.id == _uuid_or_none(query.assignee)))
        conditions.append(Case.assignee_id.in_(staff_ids))
    if query.received_from:
        conditions.append(Case.created_at >= zones.day_start(query.received_from))
    if query.received_to:
        conditions.append(Case.created_at < zones.day_start(query.received_to + dt.timedelta(days=1)))
    return conditions


def _uuid_or_none(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _order(sort: str):
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "deadline":  # cases.next_due_at: the earliest running clock (models._keep_next_due)
        primary = (Case.next_due_at.desc() if descending else Case.next_due_at.asc()).nulls_last()
        return [primary, Case.created_at.desc(), Case.case_id]
    column = {"received": Case.created_at, "reference": Case.reference, "updated": Case.updated_at}[key]
    return [column.desc() if descending else column.asc(), Case.case_id]


def search(session: Session, staff: Staff, query: ListQuery, now: dt.datetime | None = None) -> dict:
    """One page of the cases in ``staff``'s reach matching ``query``:
    ``{"cases": [...], "total": N, "page": P, "per_page": K}``."""
    now = now or utcnow()
    scope = reach.scope_filter(session, staff)
    empty = {"cases": [], "total": 0, "page": query.page, "per_page": query.per_page}
    if scope is None:
        return empty
    conditions = _conditions(session, staff, query, scope)
    total = session.scalar(select(func.count()).select_from(Case).where(*conditions))
    if not total:
        return empty
    statement = (select(Case).where(*conditions).order_by(*_order(query.sort))
                 .limit(query.per_page).offset((query.page - 1) * query.per_page))
    rows = list(session.scalars(statement).unique())
    return {"cases": summaries(session, rows, staff, now), "total": int(total), "page": query.page,
            "per_page": query.per_page}


def summaries(session: Session, rows: list[Case], staff: Staff, now: dt.datetime) -> list[dict]:
    """Case summaries (names, times in the unit's zone) with their deadlines."""
    clocks: dict[str, list[CaseClock]] = {}
    if rows:
        for row in session.scalars(select(CaseClock).where(CaseClock.case_id.in_([c.case_id for c in rows]))):
            clocks.setdefault(row.case_id, []).append(row)
    out = []
    for case in rows:
        summary = views.case_summary(case, staff)
        summary["deadlines"] = [deadlines.clock_dict(r, now) for r in
                                sorted(clocks.get(case.case_id, []), key=lambda r: deadlines.CLOCKS.index(r.clock))]
        out.append(summary)
    return out


def page_view(session: Session, staff: Staff, query: ListQuery, now: dt.datetime | None = None) -> dict:
    """What the console's list page shows: the page of cases, the number of the last page, and
    the units to filter by (names, not codes)."""
    result = search(session, staff, query, now)
    units = [{"code": code, "name": name} for code, name in
             session.execute(select(Unit.code, Unit.name).order_by(Unit.name, Unit.code))]
    return {"result": result, "units": units,
            "last_page": max(1, -(-result["total"] // query.per_page))}

"""Register numbers: the case number a reporter and the staff quote, ``WBS/ITJEN/2026/00042``.

Per inspectorate (the one responsible for the case, or the top of the reported unit's tree
when routing found none) and per calendar year in Western Indonesian Time, sequential and never
reused. The counter is one ``case_register`` row per (inspectorate, year), advanced by a single
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in the transaction that opens the case: the
row stays locked until that transaction ends, so replicas opening cases at once queue on it and
each gets the next value, and a rolled-back case gives its number back with the rollback (the
number was never seen by anyone).
"""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import routing
from .models import CaseRegister

PREFIX = "WBS"
# Register years turn at midnight WIB, the time of the central offices.
REGISTER_ZONE = ZoneInfo("Asia/Jakarta")
UNROUTED = "UMUM"
DIGITS = 5

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def register_code(units: dict[str, routing.UnitNode], reported_unit: str, inspectorate: str | None) -> str:
    """The register a case is numbered in: its inspectorate's code, upper case.

    A case routing could not place (unknown unit, no inspectorate above it) is numbered in the
    register of the top of its unit's tree, or ``UMUM`` for an unknown unit.
    """
    code = inspectorate or (routing.path_up(units, reported_unit) or [None])[-1] or UNROUTED
    return re.sub(r"[^A-Z0-9-]", "-", code.upper())


def register_year(now: dt.datetime) -> int:
    return now.astimezone(REGISTER_ZONE).year


def next_number(session: Session, register: str, year: int) -> int:
    """Advance the (register, year) counter and return its new value, locking its row until commit."""
    insert = _INSERTS[session.get_bind().dialect.name]
    statement = insert(CaseRegister).values(inspectorate=register, year=year, last=1)
    statement = statement.on_conflict_do_update(
        index_elements=[CaseRegister.inspectorate, CaseRegister.year],
        set_={"last": CaseRegister.last + 1},
    ).returning(CaseRegister.last)
    return int(session.execute(statement).scalar_one())


def format_reference(register: str, year: int, number: int) -> str:
    return f"{PREFIX}/{register}/{year}/{number:0{DIGITS}d}"


def assign(session: Session, units: dict[str, routing.UnitNode], reported_unit: str,
           inspectorate: str | None, now: dt.datetime) -> str:
    """The next reference for a case about ``reported_unit`` handled by ``inspectorate``."""
    register = register_code(units, reported_unit, inspectorate)
    year = register_year(now)
    return format_reference(register, year, next_number(session, register, year))

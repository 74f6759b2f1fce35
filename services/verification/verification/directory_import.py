"""Bulk import of units and staff from CSV, all or nothing.

Units: a header ``code,name,parent,inspectorate`` and optionally ``timezone``. Every line is
checked against the file *and* the directory as it stands before anything is written: a bad code,
an empty name, a duplicate code, an unknown parent, a parent chain that makes a cycle, a bad
flag or time zone. Any bad line means nothing is imported, and every bad line is reported with
its line number (the header is line 1). A good file is applied parents first; re-importing it
changes nothing, an edited file renames, moves, re-flags and re-zones the units it names, and
units missing from the file are left alone (an import never deletes).

Staff: a header ``username,name,email,unit,role``; the same all-or-nothing check, then each new
account with a one-time password and TOTP enrolment, returned this once (the command prints them
or writes a 0600 file). Accounts that already exist are reported and left unchanged.

Both go through ``admin`` for the actual changes, so every unit and account is audited and
announced exactly as when added by hand.
"""
from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import admin, auth, directory, zones
from .models import ROLES, Staff, Unit

UNIT_COLUMNS = ("code", "name", "parent", "inspectorate")
STAFF_COLUMNS = ("username", "name", "email", "unit", "role")
_TRUE = {"true", "1", "yes", "ya", "y"}
_FALSE = {"false", "0", "no", "tidak", "n", ""}


def _rows(text: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> tuple[list[dict], list[dict]]:
    """The CSV's lines as dicts with their line numbers, or a header error."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:len(required)] != list(required) or any(h not in optional for h in header[len(required):]):
        wanted = ",".join(required) + "".join(f"[,{o}]" for o in optional)
        return [], [{"line": 1, "message": f"the header must be {wanted}"}]
    rows, errors = [], []
    for number, values in enumerate(reader, start=2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append({"line": number, "message": f"{len(values)} fields, the header has {len(header)}"})
            continue
        rows.append(dict(zip(header, (v.strip() for v in values)), line=number))
    return rows, errors


def check_units(session: Session, text: str) -> tuple[list[dict], list[dict]]:
    """(the unit lines, every bad line) for a units CSV, against the current directory."""
    rows, errors = _rows(text, UNIT_COLUMNS, ("timezone",))
    existing = {u.code: u.parent_code for u in session.scalars(select(Unit))}
    seen: dict[str, int] = {}
    for row in rows:
        problems = []
        if not directory._CODE_RE.match(row["code"]):
            problems.append(f"code {row['code']!r} must be lowercase letters, digits, '-' or '_' (max 64)")
        elif row["code"] in seen:
            problems.append(f"code {row['code']!r} is already on line {seen[row['code']]}")
        else:
            seen[row["code"]] = row["line"]
        if not row["name"]:
            problems.append("the name is empty")
        if row["inspectorate"].lower() not in _TRUE | _FALSE:
            problems.append(f"inspectorate must be true or false, not {row['inspectorate']!r}")
        row["inspectorate"] = row["inspectorate"].lower() in _TRUE
        row["timezone"] = row.get("timezone") or None
        if row["timezone"] and not zones.valid(row["timezone"]):
            problems.append(f"time zone {row['timezone']!r} is not one of {', '.join(zones.CHOICES)}")
        row["parent"] = row["parent"] or None
        if row["parent"] == row["code"]:
            problems.append("a unit cannot be its own parent")
        errors.extend({"line": row["line"], "message": p} for p in problems)
    parents = dict(existing, **{r["code"]: r["parent"] for r in rows})
    for row in rows:
        if row["parent"] and row["parent"] not in parents:
            errors.append({"line": row["line"], "message": f"unknown parent {row['parent']!r}"})
    for row in rows:  # a cycle: following parents from this unit comes back to it
        current, steps = row["parent"], 0
        while current is not None and steps <= len(parents):
            if current == row["code"]:
                errors.append({"line": row["line"], "message": f"parent {row['parent']!r} makes a cycle"})
                break
            current, steps = parents.get(current), steps + 1
    return rows, sorted(errors, key=lambda e: e["line"])


def _parents_first(rows: list[dict]) -> list[dict]:
    in_file = {r["code"]: r for r in rows}
    done: set[str] = set()
    ordered: list[dict] = []

    def visit(row):
        if row["code"] in done:
            return
        done.add(row["code"])
        if row["parent"] in in_file:
            visit(in_file[row["parent"]])
        ordered.append(row)

    for row in rows:
        visit(row)
    return ordered


def import_units(session: Session, actor: str, rows: list[dict]) -> dict:
    """Apply checked unit lines: add the new units, update the ones whose line differs."""
    added, changed = [], []
    for row in _parents_first(rows):
        unit = session.get(Unit, row["code"])
        if unit is None:
            admin.add_unit(session, actor, row["code"], row["name"], row["parent"], row["inspectorate"],
                           row["timezone"])
            added.append(row["code"])
            continue
        result = admin.update_unit(session, actor, row["code"], name=row["name"], parent=row["parent"], move=True,
                                   inspectorate=row["inspectorate"], timezone=row["timezone"])
        if result["changes"]:
            changed.append({"code": row["code"], "changes": result["changes"]})
    return {"added": added, "changed": changed, "unchanged": len(rows) - len(added) - len(changed)}


def import_units_text(session: Session, actor: str, text: str) -> dict:
    """Check, then (only when every line is good) import a units CSV: ``{ok, errors, added,
    changed, unchanged}``."""
    rows, errors = check_units(session, text)
    if errors or not rows:
        return {"ok": False, "errors": errors or [{"line": 1, "message": "no units in the file"}],
                "added": [], "changed": [], "unchanged": 0}
    return dict(import_units(session, actor, rows), ok=True, errors=[])


def check_staff(session: Session, text: str) -> tuple[list[dict], list[dict]]:
    rows, errors = _rows(text, STAFF_COLUMNS)
    units = set(session.scalars(select(Unit.code)))
    seen: dict[str, int] = {}
    for row in rows:
        row["username"] = row["username"].lower()
        problems = []
        if not directory._USERNAME_RE.match(row["username"]):
            problems.append(f"username {row['username']!r} must be 2-64 lowercase letters, digits, '.', '-' or '_'")
        elif row["username"] in seen:
            problems.append(f"username {row['username']!r} is already on line {seen[row['username']]}")
        else:
            seen[row["username"]] = row["line"]
        if not row["name"]:
            problems.append("the name is empty")
        if "@" not in row["email"] or len(row["email"]) > 254:
            problems.append(f"email {row['email']!r} is not an address")
        if row["unit"] not in units:
            problems.append(f"unknown unit {row['unit']!r}")
        if row["role"] not in ROLES:
            problems.append(f"role must be one of {', '.join(ROLES)}")
        errors.extend({"line": row["line"], "message": p} for p in problems)
    return rows, sorted(errors, key=lambda e: e["line"])


def import_staff_text(session: Session, passwords: auth.Passwords, actor: str, text: str) -> dict:
    """Check, then create every account of a staff CSV that does not exist yet: ``{ok, errors,
    created: [{username, staff_id, password, totp_secret, otpauth_uri}], existing: [username]}``."""
    rows, errors = check_staff(session, text)
    if errors or not rows:
        return {"ok": False, "errors": errors or [{"line": 1, "message": "no accounts in the file"}],
                "created": [], "existing": []}
    created, existing = [], []
    for row in rows:
        if session.scalar(select(Staff.id).where(Staff.username == row["username"])) is not None:
            existing.append(row["username"])
            continue
        account = admin.add_staff(session, passwords, actor, row["username"], row["email"], row["unit"], row["role"],
                                  display_name=row["name"])
        created.append({k: account[k] for k in ("username", "staff_id", "password", "totp_secret", "otpauth_uri")})
    return {"ok": True, "errors": [], "created": created, "existing": existing}

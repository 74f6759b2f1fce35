"""The administrator's use cases: the unit tree and the whole account lifecycle.

Plain functions over a session, called by the admin console (``/admin``), its JSON API
(``/api/v1/admin/``) and the admin RPCs behind the ``wbs`` command, so the three cannot drift.
Every change is audited in the hash chain with the acting administrator (or ``system`` for the
signed command line) and announced with ``unit_changed`` / ``staff_changed`` where the directory
events cover it. Nothing here reaches a case's content: an administrator manages units and
accounts, never cases (``reach``).

Two resets hand a secret back exactly once, and only its hash (password) or the secret itself
(TOTP, as any authenticator needs) is kept:

* **reset password** -- a random one-time password; the account must choose a new password at its
  next sign-in (``must_change_password``: every page and API call but the password change is
  refused until then) and every open session ends now;
* **reset authenticator** -- a new TOTP secret replaces the old one in the same transaction, so a
  code from the lost device is refused from the next request on, and every open session ends.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import audit, auth, directory, routing, views, zones
from .errors import InvalidInput, NotFound
from .models import ROLES, Case, Staff, Supervision, Unit, as_utc, utcnow

UNIT_ACTION = "unit"
MIN_PASSWORD = 12


def require_admin(staff: Staff) -> Staff:
    """The administrator, or :class:`NotFound`: the admin pages do not exist for anyone else."""
    if staff.role != "admin":
        raise NotFound("No such page")
    return staff


# --------------------------------------------------------------------------- units


def unit_view(unit: Unit, cases: int = 0) -> dict:
    return {"code": unit.code, "name": unit.name, "parent": unit.parent_code,
            "inspectorate": bool(unit.inspectorate), "active": bool(unit.active),
            "timezone": unit.timezone, "zone_label": zones.label(unit.timezone),
            "clocks": {"ack_days": unit.ack_days, "ack_working_days": bool(unit.ack_working_days),
                       "verification_days": unit.verification_days,
                       "verification_working_days": bool(unit.verification_working_days),
                       "feedback_months": unit.feedback_months},
            "cases": cases}


def unit_tree(session: Session) -> list[dict]:
    """Every unit, depth first under its parent (names sorted), each with its ``depth`` and its
    number of cases: the tree the admin page draws and ``GET /api/v1/admin/units`` returns."""
    units = list(session.scalars(select(Unit)))
    counts = dict(session.execute(select(Case.unit, func.count()).group_by(Case.unit)).all())
    children: dict[str | None, list[Unit]] = {}
    for unit in units:
        parent = unit.parent_code if unit.parent_code in {u.code for u in units} else None
        children.setdefault(parent, []).append(unit)
    out: list[dict] = []
    stack = [(u, 0) for u in sorted(children.get(None, []), key=lambda u: (u.name, u.code), reverse=True)]
    while stack:
        unit, depth = stack.pop()
        out.append(dict(unit_view(unit, int(counts.get(unit.code, 0))), depth=depth))
        stack.extend((c, depth + 1) for c in sorted(children.get(unit.code, []), key=lambda u: (u.name, u.code),
                                                      reverse=True))
    return out


def _unit(session: Session, code: str) -> Unit:
    unit = session.get(Unit, (code or "").strip())
    if unit is None:
        raise NotFound(f"No unit {code!r}")
    return unit


def check_timezone(timezone: str | None) -> str:
    timezone = (timezone or zones.DEFAULT).strip()
    if not zones.valid(timezone):
        raise InvalidInput(f"Time zone must be one of {', '.join(zones.CHOICES)}")
    return timezone


def check_parent(session: Session, code: str, parent: str | None) -> None:
    """``parent`` exists and is not ``code`` itself or below it (a move must not make a cycle)."""
    if parent is None:
        return
    if session.get(Unit, parent) is None:
        raise InvalidInput(f"Unknown parent unit {parent!r}")
    if parent in routing.subtree(routing.load_units(session), code):
        raise InvalidInput(f"Unit {parent!r} is {code!r} or below it: that would make a cycle")


def add_unit(session: Session, actor: str, code: str, name: str, parent: str | None = None,
             inspectorate: bool = False, timezone: str | None = None) -> dict:
    """A new unit (``directory.add_unit``: checks, ``unit_changed``) with its time zone; audited."""
    timezone = check_timezone(timezone)
    directory.add_unit(session, code, name, parent or None, inspectorate)
    unit = _unit(session, code.strip())
    unit.timezone = timezone
    audit.append(session, actor, UNIT_ACTION, None, target=unit.code, change="added")
    return unit_view(unit)


def update_unit(session: Session, actor: str, code: str, *, name: str | None = None,
                parent: str | None = None, move: bool = False, inspectorate: bool | None = None,
                active: bool | None = None, timezone: str | None = None, clocks: dict | None = None) -> dict:
    """Rename, move (``move=True``: ``parent`` None makes it a root), flag, disable/enable, change
    the time zone or the deadline clocks of a unit. Never deletes: a unit with cases keeps them,
    and a disabled unit only stops taking new reports. Audited once per changed property;
    ``unit_changed`` when what integrators see changed."""
    unit = _unit(session, code)
    changes = []
    if name is not None:
        name = name.strip()
        if not name:
            raise InvalidInput("Unit name is required")
        if name != unit.name:
            unit.name, changes = name, changes + ["renamed"]
    if move:
        parent = (parent or "").strip() or None
        check_parent(session, unit.code, parent)
        if parent != unit.parent_code:
            unit.parent_code, changes = parent, changes + ["moved"]
    if inspectorate is not None and bool(inspectorate) != bool(unit.inspectorate):
        unit.inspectorate = bool(inspectorate)
        changes.append("inspectorate" if inspectorate else "not_inspectorate")
    if active is not None and bool(active) != bool(unit.active):
        unit.active = bool(active)
        changes.append("enabled" if active else "disabled")
    if timezone is not None:
        timezone = check_timezone(timezone)
        if timezone != unit.timezone:
            unit.timezone, changes = timezone, changes + ["timezone"]
    if clocks:
        before = unit_view(unit)["clocks"]
        directory.set_unit_clocks(session, unit.code, **clocks)
        if unit_view(unit)["clocks"] != before:
            changes.append("clocks")
    session.flush()
    for change in changes:
        audit.append(session, actor, UNIT_ACTION, None, target=unit.code, change=change)
    if set(changes) & {"renamed", "moved", "inspectorate", "not_inspectorate", "enabled", "disabled"}:
        directory.unit_changed(session, unit)
    return dict(unit_view(unit), changes=changes)


# --------------------------------------------------------------------------- staff


def staff_row(staff: Staff, units: dict[str, str], oversees: list[str], now: dt.datetime) -> dict:
    locked = staff.locked_until is not None and as_utc(staff.locked_until) > now
    return dict(views.staff_view(staff), email=staff.email, active=bool(staff.active),
                unit_name=units.get(staff.home_unit, staff.home_unit), nip=staff.nip,
                escalation_pool=bool(staff.escalation_pool), oversees=oversees, locked=locked,
                must_change_password=bool(staff.must_change_password))


def list_staff(session: Session, *, q: str | None = None, unit: str | None = None, role: str | None = None,
               active: str | None = None, now: dt.datetime | None = None) -> list[dict]:
    """Accounts, filtered by text (username, name, email), home unit (with sub-units), role and
    state (``active`` / ``disabled``), sorted by name."""
    now = now or utcnow()
    query = select(Staff)
    if q:
        needle = f"%{q.strip().lower()}%"
        query = query.where(or_(func.lower(Staff.username).like(needle), func.lower(Staff.display_name).like(needle),
                                func.lower(Staff.email).like(needle)))
    if unit:
        query = query.where(Staff.home_unit.in_(sorted(routing.subtree(routing.load_units(session), unit)) or [unit]))
    if role:
        if role not in ROLES:
            raise InvalidInput(f"Role must be one of {', '.join(ROLES)}")
        query = query.where(Staff.role == role)
    if active in ("active", "disabled"):
        query = query.where(Staff.active.is_(active == "active"))
    members = list(session.scalars(query.order_by(Staff.display_name, Staff.username)))
    names = dict(session.execute(select(Unit.code, Unit.name)).all())
    oversight: dict[str, list[str]] = {}
    for staff_id, code in session.execute(select(Supervision.staff_id, Supervision.unit_code)):
        oversight.setdefault(staff_id, []).append(code)
    return [staff_row(s, names, sorted(oversight.get(s.id, [])), now) for s in members]


def _member(session: Session, ref: str) -> Staff:
    staff = directory.staff_by_ref(session, (ref or "").strip())
    if staff is None:
        raise NotFound(f"No account {ref!r}")
    return staff


def add_staff(session: Session, passwords: auth.Passwords, actor: str, username: str, email: str, unit: str,
              role: str = "inspector", display_name: str | None = None, nip: str | None = None) -> dict:
    """A new account (``directory.add_staff``); its one-time password and TOTP enrolment are in
    the answer, this once. The account must choose its own password at its first sign-in."""
    created = directory.add_staff(session, passwords, username, email, unit, role,
                                  display_name=display_name, nip=nip)
    staff = session.get(Staff, created["staff_id"])
    staff.must_change_password = True
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="added")
    return created


def set_role(session: Session, actor: str, ref: str, role: str) -> dict:
    staff = _member(session, ref)
    if role not in ROLES:
        raise InvalidInput(f"Role must be one of {', '.join(ROLES)}")
    if role != staff.role:
        if staff.role == "supervisor":
            directory.set_supervision(session, staff.id, [])
        staff.role = role
        if role != "supervisor":
            staff.escalation_pool = False
        session.flush()
        if role == "supervisor":
            directory.set_supervision(session, staff.id, [staff.home_unit])
        audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="role", detail=role)
        directory.staff_changed(session, staff)
    return views.staff_view(staff)


def move_staff(session: Session, actor: str, ref: str, unit: str) -> dict:
    staff = _member(session, ref)
    out = directory.move_staff(session, staff.id, (unit or "").strip())
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="moved", detail=staff.home_unit)
    return out


def set_oversight(session: Session, actor: str, ref: str, units: list[str], escalation_pool: bool) -> dict:
    """A supervisor's overseen units and escalation-pool membership."""
    staff = _member(session, ref)
    if staff.role != "supervisor":
        raise InvalidInput("Only a supervisor oversees units or joins the escalation pool")
    out = directory.set_supervision(session, staff.id, [u.strip() for u in units if u.strip()])
    staff.escalation_pool = bool(escalation_pool)
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="oversight")
    return dict(out, escalation_pool=staff.escalation_pool)


def set_active(session: Session, actor: str, ref: str, active: bool) -> dict:
    return directory.set_staff_active(session, _member(session, ref).id, active, actor=actor)


def revoke_sessions(session: Session, actor: str, ref: str) -> dict:
    return directory.revoke_staff_sessions(session, _member(session, ref).id, actor=actor)


def unlock(session: Session, actor: str, ref: str) -> dict:
    """Lift a sign-in lock (failed attempts) now."""
    staff = _member(session, ref)
    staff.failed_logins, staff.locked_until = 0, None
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="unlocked")
    return views.staff_view(staff)


def reset_password(session: Session, passwords: auth.Passwords, actor: str, ref: str) -> dict:
    """A new one-time password (given back this once), a forced change at the next sign-in, every
    session ended, the sign-in lock lifted. The old password stops working with this commit."""
    staff = _member(session, ref)
    password = auth.new_password()
    staff.password_hash = passwords.hash(password)
    staff.must_change_password = True
    staff.failed_logins, staff.locked_until = 0, None
    revoked = directory.revoke_sessions(session, staff.id)
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="password_reset")
    return {"staff_id": staff.id, "username": staff.username, "password": password, "sessions_revoked": revoked}


def reset_totp(session: Session, actor: str, ref: str) -> dict:
    """A new TOTP enrolment (given back this once); the old secret is gone with this commit, so a
    code from the lost device is refused, and every session ends."""
    staff = _member(session, ref)
    secret = auth.new_totp_secret()
    staff.totp_secret, staff.last_totp_step = secret, None
    revoked = directory.revoke_sessions(session, staff.id)
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="totp_reset")
    return {"staff_id": staff.id, "username": staff.username, "totp_secret": secret,
            "otpauth_uri": auth.otpauth_uri(secret, staff.username), "sessions_revoked": revoked}


def change_own_password(session: Session, passwords: auth.Passwords, staff: Staff, current: str | None,
                        new: str | None, repeat: str | None) -> None:
    """The signed-in account chooses a new password (forced after a reset or a new account)."""
    if not passwords.verify(staff.password_hash, current or ""):
        raise InvalidInput("The current password is wrong")
    new = new or ""
    if len(new) < MIN_PASSWORD:
        raise InvalidInput(f"The new password needs at least {MIN_PASSWORD} characters")
    if new != (repeat if repeat is not None else new):
        raise InvalidInput("The two new passwords differ")
    if passwords.verify(staff.password_hash, new):
        raise InvalidInput("The new password must differ from the current one")
    staff.password_hash = passwords.hash(new)
    staff.must_change_password = False
    audit.append(session, staff.id, audit.ACCOUNT, None, target=staff.id, change="password_changed")

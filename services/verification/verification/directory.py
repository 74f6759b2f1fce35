"""The directory: units, staff accounts, supervision, declared conflicts and who to contact.

Administrative use cases (the ``wbs`` command and the admin RPCs call them) and the lookups
other services need (``case_contacts``, ``get_recipient``: ids and addresses only, never case
content). Plain functions over a session; the caller owns the transaction.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wbs_contracts import report_content

from wbs_plumbing.outbox import add_event

from . import audit, auth, reach, routing, views
from .errors import Conflict, InvalidInput, NotFound
from .models import (
    ROLES,
    SYSTEM_ACTOR,
    Case,
    DeclaredConflict,
    OutboxMessage,
    Staff,
    StaffSession,
    Supervision,
    Unit,
    utcnow,
)


_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def _nip(value: str | None) -> str | None:
    """A NIP as typed -> its 18 digits (the report-content format's rule), or None when empty.
    Anything else could never match a party's NIP, so it is refused rather than stored."""
    nip = routing.normalise_nip(value)
    if nip is not None and not report_content.is_nip(nip):
        raise InvalidInput("A NIP is 18 digits (spaces, dots and dashes are ignored)")
    return nip


def list_units(session: Session) -> list[dict]:
    """The units reporters may choose: a disabled unit takes no new reports (``admin``)."""
    return [
        {"code": u.code, "name": u.name, "parent": u.parent_code, "inspectorate": bool(u.inspectorate)}
        for u in session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.code))
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
    unit = Unit(code=code, name=name, parent_code=parent, inspectorate=bool(inspectorate))
    session.add(unit)
    session.flush()
    unit_changed(session, unit)
    return {"code": code, "name": name, "parent": parent, "inspectorate": bool(inspectorate)}


def unit_changed(session: Session, unit: Unit) -> None:
    """Stage `unit_changed`: integrators resolve unit codes to names from it (its name, parent
    and inspectorate flag; nothing about cases)."""
    add_event(session, OutboxMessage, "unit_changed", {
        "unit": unit.code, "name": unit.name, "parent": unit.parent_code,
        "inspectorate": bool(unit.inspectorate)})


def announce_directory(session: Session) -> dict:
    """Stage `unit_changed` for every unit and `staff_changed` for every account, as they are now.

    Why: integrators build their lookup tables from the history stream, which forgets after its
    retention, and a directory made before these events existed was never announced. Re-announcing
    is harmless (integrators deduplicate on event_id and keep the latest state per code or id)."""
    units = list(session.scalars(select(Unit).order_by(Unit.code)))
    for unit in units:
        unit_changed(session, unit)
    staff = list(session.scalars(select(Staff).order_by(Staff.created_at, Staff.id)))
    for member in staff:
        staff_changed(session, member)
    return {"units": len(units), "staff": len(staff)}


def staff_changed(session: Session, staff: Staff) -> None:
    """Stage `staff_changed`: resolves the inspector ids of case events to a display name, role
    and home unit. Never the username, email, NIP or TOTP: those are for signing in and routing."""
    add_event(session, OutboxMessage, "staff_changed", {
        "staff_id": staff.id, "display_name": staff.display_name, "role": staff.role,
        "unit": staff.home_unit, "active": bool(staff.active)})


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
        nip=_nip(nip),
        escalation_pool=bool(escalation_pool) and role == "supervisor",
    )
    session.add(staff)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Username {username!r} is taken")
    staff_changed(session, staff)
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


def staff_by_ref(session: Session, ref: str) -> Staff | None:
    ref = (ref or "").strip()
    try:
        return session.get(Staff, str(uuid.UUID(ref)))
    except ValueError:
        return session.scalar(select(Staff).where(Staff.username == ref.lower()))


def _staff(session: Session, ref: str) -> Staff:
    staff = staff_by_ref(session, ref)
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
    staff_changed(session, staff)
    return views.staff_view(staff)


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
    staff_changed(session, staff)
    return dict(views.staff_view(staff), active=staff.active, sessions_revoked=revoked)


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
    nip = _nip(nip)
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
    return [{"id": r.id, "unit": r.unit_code, "name": r.party_name, "nip": r.party_nip, "at": views.iso(r.at)}
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


def _by_id(session: Session, model, ref):
    """The row whose UUID primary key is ``ref``, or None (also for anything not a UUID)."""
    try:
        return session.get(model, str(uuid.UUID(str(ref))))
    except ValueError:
        return None


def case_contacts(session: Session, case_id: str) -> dict | None:
    """Who to tell about a case (ids only): its assignee and the active supervisors who reach it,
    and its register reference (for the subject of staff emails)."""
    case = _by_id(session, Case, case_id)
    if case is None:
        return None
    supervisors = [s.id for s in session.scalars(select(Staff).where(Staff.role == "supervisor",
                                                                     Staff.active.is_(True)))
                   if s.id != case.assignee_id and reach.reaches(session, s, case.case_id)]
    return {"case_id": case.case_id, "assignee_id": case.assignee_id, "supervisor_ids": sorted(supervisors),
            "reference": case.reference}


def get_recipient(session: Session, staff_id: str) -> dict | None:
    """Where to send a staff member content-free notices, or None if unknown or inactive."""
    staff = _by_id(session, Staff, staff_id)
    if staff is None or not staff.active:
        return None
    return {"email": staff.email, "display_name": staff.display_name, "language": staff.language}


def supervisor_candidates(session: Session) -> list[routing.Candidate]:
    return [routing.Candidate(s.id, s.username, s.home_unit, 0, s.display_name, s.nip, s.role, bool(s.escalation_pool))
            for s in session.scalars(select(Staff).where(Staff.role == "supervisor", Staff.active.is_(True),
                                                         Staff.escalation_pool.is_(False)))]

"""What the verification service does, as plain functions over a SQLAlchemy session.

Every function takes its collaborators (session, password hasher, clock) as arguments and
never commits: the entrypoint owns the transaction, so a change and the events announcing it
(written with ``add_event`` into the outbox) commit together or not at all.

Reach (DESIGN.md §5.5): an inspector reaches the cases assigned to them; a supervisor the cases
about units below their home unit (not about the home unit itself); an administrator no case at all (they manage
units and accounts, not content). A case out of reach raises :class:`NotFound`, exactly like a
case that does not exist, so probing case ids reveals nothing.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wbs_plumbing.outbox import add_event

from . import auth, lifecycle, routing
from .errors import Conflict, InvalidInput, NotFound
from .models import (
    ROLES,
    Case,
    CaseExclusion,
    CaseHistory,
    OutboxMessage,
    Staff,
    Unit,
    as_utc,
    utcnow,
)

SYSTEM_ACTOR = "system"

CATEGORY_LABELS = {
    "corruption": ("Korupsi", "Corruption"),
    "bribery": ("Suap / gratifikasi / pemerasan / pungutan liar", "Bribery, gratuities, extortion, illegal levies"),
    "collusion": ("Kolusi", "Collusion"),
    "nepotism": ("Nepotisme", "Nepotism"),
    "conflict_of_interest": ("Benturan kepentingan", "Conflict of interest"),
    "abuse_of_authority": ("Penyalahgunaan wewenang / jabatan", "Abuse of authority"),
    "procurement": ("Penyimpangan pengadaan barang/jasa", "Procurement irregularities"),
    "fraud": ("Penggelapan / kecurangan aset negara", "Embezzlement, fraud, theft of state assets"),
    "discipline": ("Pelanggaran disiplin pegawai", "Breach of civil-service discipline"),
    "ethics": ("Pelanggaran kode etik", "Breach of the code of ethics"),
    "harassment": ("Diskriminasi / pelecehan", "Discrimination, harassment"),
    "other": ("Pelanggaran peraturan lainnya", "Other breach of regulations"),
}

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


# --------------------------------------------------------------------------- cases


def open_case(session: Session, event: dict, *, now: dt.datetime | None = None) -> Case:
    """Open the case for a ``report_submitted`` event, route it, announce it.

    Idempotent: ``report_id`` is unique, so a report whose case exists gives back that case and
    emits nothing (the entrypoint also records the event id in ``processed_events``). Two
    workers racing on the same report both insert; the loser's transaction fails on the unique
    constraint and its redelivery finds the case.

    Emits ``case_opened`` and, when routing found an inspector, ``case_assigned``.
    Raises :class:`InvalidInput` for an event without ``report_id``, ``unit`` or ``category``
    (a poison message: retrying cannot fix it).
    """
    missing = [k for k in ("report_id", "unit", "category") if not isinstance(event.get(k), str) or not event[k]]
    if missing:
        raise InvalidInput(f"report_submitted lacks {', '.join(missing)}")
    existing = session.scalar(select(Case).where(Case.report_id == event["report_id"]))
    if existing is not None:
        return existing

    now = now or utcnow()
    decision = routing.route(session, event["unit"])
    case = Case(
        case_id=str(uuid.uuid4()),
        report_id=event["report_id"],
        unit=event["unit"],
        category=event["category"],
        state=lifecycle.INITIAL,
        assignee_id=decision.assignee_id,
        routing_note=decision.note,
        evidence_count=int(event.get("evidence_count") or 0),
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()  # a duplicate report_id fails here, before any event is written
    session.add(CaseHistory(case_id=case.case_id, from_state=None, to_state=case.state,
                            reason=decision.note, actor=SYSTEM_ACTOR, at=now))
    for staff_id, reason in decision.exclusions:
        session.add(CaseExclusion(case_id=case.case_id, candidate_id=staff_id, reason=reason, at=now))

    add_event(session, OutboxMessage, "case_opened", {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "unit": case.unit,
        "category": case.category,
        "state": case.state,
    })
    if case.assignee_id is not None:
        add_event(session, OutboxMessage, "case_assigned", {
            "case_id": case.case_id,
            "inspector_id": case.assignee_id,
            "unit": case.unit,
        })
    return case


def _scope_filter(session: Session, staff: Staff):
    """The SQL condition selecting the cases ``staff`` may reach, or None for no case at all."""
    if not staff.active:
        return None
    if staff.role == "inspector":
        return Case.assignee_id == staff.id
    if staff.role == "supervisor":
        # Their own unit is left out for the reason routing excludes home-unit inspectors: a
        # report about the inspectorate itself must never come back to it.
        units = routing.subtree(routing.load_units(session), staff.home_unit) - {staff.home_unit}
        return Case.unit.in_(sorted(units)) if units else None
    return None  # admin: manages units and accounts, never case content


def _reachable_case(session: Session, staff: Staff, case_id: str, *, for_update: bool = False) -> Case:
    try:
        case_id = str(uuid.UUID(str(case_id)))
    except ValueError:
        raise NotFound("No such case")
    condition = _scope_filter(session, staff)
    if condition is None:
        raise NotFound("No such case")
    query = select(Case).where(Case.case_id == case_id, condition)
    if for_update:
        query = query.with_for_update(of=Case)
    case = session.scalar(query)
    if case is None:
        raise NotFound("No such case")
    return case


def list_cases(
    session: Session,
    staff: Staff,
    *,
    state: str | None = None,
    unit: str | None = None,
    category: str | None = None,
) -> list[dict]:
    """Cases within ``staff``'s reach, newest first, optionally filtered (metadata only)."""
    condition = _scope_filter(session, staff)
    if condition is None:
        return []
    query = select(Case).where(condition)
    if state:
        query = query.where(Case.state == state)
    if unit:
        query = query.where(Case.unit == unit)
    if category:
        query = query.where(Case.category == category)
    query = query.order_by(Case.created_at.desc(), Case.case_id)
    return [case_summary(c, staff) for c in session.scalars(query).unique()]


def get_case(session: Session, staff: Staff, case_id: str) -> dict:
    """One case's metadata, assignee and history. Content comes from storage, not from here.

    Raises :class:`NotFound` when the case does not exist or is out of reach.
    """
    case = _reachable_case(session, staff, case_id)
    return case_detail(session, case, staff)


def transition_case(
    session: Session,
    staff: Staff,
    case_id: str,
    to_state: str,
    reason: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> dict:
    """Move a case to ``to_state`` if the lifecycle allows it; record history; announce it.

    Emits ``case_status_changed``. Raises :class:`NotFound` (out of reach),
    :class:`~verification.errors.TransitionForbidden` (409) or :class:`InvalidInput` (400, e.g.
    a missing reason where one is required).
    """
    case = _reachable_case(session, staff, case_id, for_update=True)
    from_state = case.state
    reason = lifecycle.check_transition(from_state, to_state, role=staff.role, reason=reason)
    now = now or utcnow()
    case.state = to_state
    case.updated_at = now
    session.add(CaseHistory(case_id=case.case_id, from_state=from_state, to_state=to_state,
                            reason=reason, actor=staff.id, at=now))
    add_event(session, OutboxMessage, "case_status_changed", {
        "case_id": case.case_id,
        "from_state": from_state,
        "to_state": to_state,
    })
    session.flush()
    return case_detail(session, case, staff)


def report_status(session: Session, report_id: str, language: str = "id") -> dict | None:
    """What the reporter may see of their case: state and dates with reporter labels.

    No staff names, no reasons (they may be internal), no routing: only the state's public
    label. None when no case exists (yet) for the report.
    """
    case = session.scalar(select(Case).where(Case.report_id == str(report_id)))
    if case is None:
        return None
    history = session.scalars(
        select(CaseHistory).where(CaseHistory.case_id == case.case_id).order_by(CaseHistory.at, CaseHistory.id)
    )
    return {
        "state": {"code": case.state, "label": lifecycle.reporter_label(case.state, language)},
        "history": [
            {"code": h.to_state, "label": lifecycle.reporter_label(h.to_state, language), "at": _iso(h.at)}
            for h in history if h.to_state in lifecycle.LABELS
        ],
    }


def _iso(value: dt.datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def category_labels(code: str) -> dict:
    id_label, en_label = CATEGORY_LABELS.get(code, (code, code))
    return {"code": code, "label": id_label, "labels": {"id": id_label, "en": en_label}}


def case_summary(case: Case, viewer: Staff) -> dict:
    assignee = case.assignee
    return {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "unit": case.unit,
        "category": category_labels(case.category),
        "state": lifecycle.labels(case.state),
        "assignee": None if assignee is None else {
            "staff_id": assignee.id,
            "username": assignee.username,
            "display_name": assignee.display_name,
        },
        "routing_note": case.routing_note,
        "evidence_count": case.evidence_count,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "allowed_transitions": [lifecycle.labels(s) for s in lifecycle.allowed_moves(case.state, viewer.role)],
    }


def case_detail(session: Session, case: Case, viewer: Staff) -> dict:
    data = case_summary(case, viewer)
    history = list(session.scalars(
        select(CaseHistory).where(CaseHistory.case_id == case.case_id).order_by(CaseHistory.at, CaseHistory.id)
    ))
    actor_ids = {h.actor for h in history if h.actor != SYSTEM_ACTOR}
    names = {}
    if actor_ids:
        names = {s.id: s.username for s in session.scalars(select(Staff).where(Staff.id.in_(actor_ids)))}
    data["history"] = [
        {
            "from_state": h.from_state,
            "to_state": h.to_state,
            "to_label": lifecycle.LABELS[h.to_state].staff_id if h.to_state in lifecycle.LABELS else h.to_state,
            "reason": h.reason,
            "actor": names.get(h.actor, h.actor),
            "at": _iso(h.at),
        }
        for h in history
    ]
    if viewer.role == "supervisor":
        data["routing_exclusions"] = [
            {"candidate_id": e.candidate_id, "reason": e.reason}
            for e in session.scalars(select(CaseExclusion).where(CaseExclusion.case_id == case.case_id))
        ]
    return data


def attach_content(case: dict, content: bytes | None, evidence: list[dict] | None) -> dict:
    """Add what storage gave back (sealed report JSON, evidence list) to a case's metadata.

    Only narrative and parties (and the 4W1H fields around them) are shown; the reporter's
    identity block is dropped here even if storage returned it, because inspectors get it only
    through a separate, explicitly authorised path.
    """
    report: dict = {}
    if content:
        try:
            report = json.loads(content.decode("utf-8")) if isinstance(content, (bytes, bytearray)) else dict(content)
        except (ValueError, UnicodeDecodeError):
            report = {}
    reporter = report.get("reporter") if isinstance(report.get("reporter"), dict) else {}
    out = dict(case)
    out.update({
        "title": report.get("title"),
        "narrative": report.get("description"),
        "parties": report.get("parties") or [],
        "occurred": report.get("occurred"),
        "location": report.get("location"),
        "reporter": {
            "relationship": reporter.get("relationship"),
            "involved": reporter.get("involved"),
        },
        "evidence": [
            {k: e.get(k) for k in ("evidence_id", "filename", "media_type", "size_bytes", "sha256")}
            for e in (evidence or [])
        ],
        "messages": [],
    })
    return out


def reader(staff: Staff, case_id: str) -> dict:
    """Who is reading content, for storage's read audit."""
    return {"staff_id": staff.id, "case_id": case_id}


# --------------------------------------------------------------------------- directory


def list_units(session: Session) -> list[dict]:
    return [
        {"code": u.code, "name": u.name, "parent": u.parent_code, "inspectorate": bool(u.inspectorate)}
        for u in session.scalars(select(Unit).order_by(Unit.code))
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
    session.add(Unit(code=code, name=name, parent_code=parent, inspectorate=bool(inspectorate)))
    session.flush()
    return {"code": code, "name": name, "parent": parent, "inspectorate": bool(inspectorate)}


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
    )
    session.add(staff)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Username {username!r} is taken")
    return {
        "staff_id": staff.id,
        "username": username,
        "role": role,
        "unit": unit,
        "password": password,
        "totp_secret": totp_secret,
        "otpauth_uri": auth.otpauth_uri(totp_secret, username),
    }


def get_recipient(session: Session, staff_id: str) -> dict | None:
    """Where to send a staff member content-free notices, or None if unknown or inactive."""
    try:
        staff_id = str(uuid.UUID(str(staff_id)))
    except ValueError:
        return None
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    return {"email": staff.email, "display_name": staff.display_name, "language": staff.language}


def staff_view(staff: Staff) -> dict:
    return {
        "staff_id": staff.id,
        "username": staff.username,
        "display_name": staff.display_name,
        "role": staff.role,
        "unit": staff.home_unit,
    }


DEMO_UNITS = (
    ("itjen", "Inspektorat Jenderal", None, True),
    ("dit-smp", "Direktorat Sekolah Menengah Pertama", "itjen", False),
    ("kpu-dki", "KPU Provinsi DKI Jakarta", "itjen", False),
)

# Fixed so `make run` can print a sign-in that works every time; used only in development.
DEMO_STAFF = {
    "inspector": dict(username="inspektur", email="inspektur@wbs.example.org", display_name="Inspektur Demo",
                      password="inspektur-demo-2026", totp_secret="WBSDEMOINSPEKTUR234567AB"),
    "supervisor": dict(username="supervisor", email="supervisor@wbs.example.org", display_name="Supervisor Demo",
                       password="supervisor-demo-2026", totp_secret="WBSDEMOSUPERVISOR234567A"),
}


def seed_demo(session: Session, passwords: auth.Passwords, *, development: bool) -> dict:
    """Create the demo directory once: units itjen > {dit-smp, kpu-dki}, an inspector and a
    supervisor homed at itjen. Idempotent.

    In development the sign-ins are fixed (and shown on every call); otherwise they are random
    and shown only on the call that created them (``password`` is None afterwards).
    """
    for code, name, parent, inspectorate in DEMO_UNITS:
        if session.get(Unit, code) is None:
            add_unit(session, code, name, parent, inspectorate)
    result = {}
    for role, spec in DEMO_STAFF.items():
        existing = session.scalar(select(Staff).where(Staff.username == spec["username"]))
        if existing is None:
            created = add_staff(
                session, passwords, spec["username"], spec["email"], "itjen", role,
                display_name=spec["display_name"],
                password=spec["password"] if development else None,
                totp_secret=spec["totp_secret"] if development else None,
            )
            result[role] = {k: created[k] for k in ("staff_id", "username", "password", "totp_secret", "otpauth_uri")}
            result[role]["created"] = True
        else:
            result[role] = {
                "staff_id": existing.id,
                "username": existing.username,
                "password": spec["password"] if development else None,
                "totp_secret": existing.totp_secret if development else None,
                "otpauth_uri": auth.otpauth_uri(existing.totp_secret, existing.username) if development else None,
                "created": False,
            }
    return result

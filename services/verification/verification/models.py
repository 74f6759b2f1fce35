"""The verification service's own tables: units, staff, sessions, cases and their history.

Only metadata lives here (docs/domain.md "Sensitivity"): unit, category, state, timestamps and who
handles a case. Narrative, parties, evidence and anything about the reporter stay in storage's
vault and are fetched per request, never copied into this database.

Timestamps are stored as UTC. SQLite (the embedded default) drops the timezone on the way back,
so code reading them goes through :func:`as_utc`.
"""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy import event, func, select, update
from sqlalchemy import text as _sql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from wbs_plumbing.clock import as_utc, utcnow  # noqa: F401 -- the services' one set; imported from here too
from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin

ROLES = ("inspector", "supervisor", "admin")
# The ``actor`` of history rows and audit entries that no staff member caused.
SYSTEM_ACTOR = "system"
REPORTER_ACTOR = "reporter"


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class Unit(Base):
    """A work unit (*unit kerja / satker*). Units form a tree through ``parent_code``.

    ``inspectorate`` marks the units whose inspectors verify reports about the units under
    them (routing walks up the tree to the nearest one).
    """

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("units.code"), nullable=True, index=True
    )
    inspectorate: Mapped[bool] = mapped_column(Boolean, default=False)
    # Deadline clocks of this unit (docs/domain.md "Deadlines"); working days skip Indonesian
    # holidays and the configured cuti bersama dates.
    ack_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    ack_working_days: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    verification_days: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    verification_working_days: Mapped[bool] = mapped_column(Boolean, default=True, server_default=_sql("true"))
    feedback_months: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # Where the unit's people read the time (WIB/WITA/WIT); the console shows its cases' times in it.
    timezone: Mapped[str] = mapped_column(String(32), default="Asia/Jakarta", server_default="Asia/Jakarta")
    # A disabled unit takes no new reports; a unit is never deleted (its cases keep naming it).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=_sql("true"))


class Staff(Base):
    """An inspectorate staff account. Passwords are Argon2id hashes; ``last_totp_step`` is the
    time step of the last accepted TOTP code, so a code seen once is refused ever after."""

    __tablename__ = "staff"
    __table_args__ = (CheckConstraint("role IN ('inspector', 'supervisor', 'admin')", name="staff_role"),)

    id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    home_unit: Mapped[str] = mapped_column(String(64), ForeignKey("units.code"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="id")
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str] = mapped_column(String(64))
    last_totp_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Civil-servant number (NIP), matched against the reported parties when routing.
    nip: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A supervisor in the escalation pool handles reports about an inspectorate (not their own).
    escalation_pool: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    # Sign-in throttling per account: consecutive failures and the lock they caused.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set by an administrator's password reset: the one-time password only opens the page that
    # chooses a new one.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))


class Supervision(Base):
    """A supervisor oversees a unit: they reach the cases about it and every unit below it."""

    __tablename__ = "supervisions"

    staff_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("staff.id"), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(64), ForeignKey("units.code"), primary_key=True)


class DeclaredConflict(Base):
    """A conflict of interest a staff member declared: a unit (e.g. a spouse works there) and/or
    a person (name, NIP). Routing excludes them from any case it touches."""

    __tablename__ = "declared_conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("staff.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    party_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    party_nip: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffSession(Base):
    """A signed-in staff session. Only the SHA-256 of the bearer token is kept, so a copy of
    this table does not let anyone act as the staff member."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("staff.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Case(Base):
    """A case opened for one submitted report. ``report_id`` is unique: a report opens a case
    exactly once however many times ``report_submitted`` is delivered."""

    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True, default=new_id)
    report_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The register number the reporter and staff quote, WBS/<INSPECTORATE>/<YEAR>/<NNNNN> (``register``).
    reference: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    # The earliest due time of the case's running clocks (None when all stopped), kept by
    # ``_keep_next_due`` below so the case list sorts by deadline through an index.
    next_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), index=True)
    assignee_id: Mapped[str | None] = mapped_column(
        Uuid(as_uuid=False), ForeignKey("staff.id"), nullable=True
    )
    routing_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    # A report about an inspectorate: handled by the escalation pool, never by the inspectorate.
    escalated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    on_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    conflict_flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    # storage shredded the report (retention): nothing left to read.
    content_destroyed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=_sql("false"))
    # The coded reason of the end state: not_actionable sub-reason, referred authority, closed outcome.
    end_detail: Mapped[str | None] = mapped_column(String(32), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    assignee: Mapped[Staff | None] = relationship(lazy="joined")
    # The reported unit's row, for its name and time zone (loaded in one query for a whole page).
    unit_row: Mapped[Unit | None] = relationship(
        Unit, primaryjoin="foreign(Case.unit) == Unit.code", lazy="selectin", viewonly=True)


class CaseHistory(Base):
    """Every state a case has been in, who moved it and why (``actor`` is a staff id or
    ``system``)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("cases.case_id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseExclusion(Base):
    """Why routing did not give a case to a candidate inspector (e.g. ``home_unit``: the
    inspector works in the unit reported on). Kept so a supervisor can see the decision."""

    __tablename__ = "case_exclusions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("cases.case_id"), index=True)
    candidate_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseMessage(Base):
    """A message on a case: to the reporter, from the reporter, or an internal note. The text is
    in storage's vault (sealed under the report's data key); this row is metadata only."""

    __tablename__ = "case_messages"

    message_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("cases.case_id"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseClock(Base):
    """One deadline clock of a case (acknowledge, verification, feedback).

    ``due_at`` already includes the time spent paused (awaiting the reporter); ``breached_at``
    is set once, when ``sla_breached`` is published, so a breach is announced exactly once.
    """

    __tablename__ = "case_clocks"

    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("cases.case_id"), primary_key=True)
    clock: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    paused_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    breached_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """One link of the hash chain: what a staff member did, never what the case says.

    ``entry_hash`` = SHA-256 over ``prev_hash`` and the canonical JSON of the other fields, so
    altering, removing or inserting a row breaks the chain at that row.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's tip (one row). Appending locks it, so entries get consecutive numbers, and
    verification compares against it, so cutting entries off the end is noticed too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))


class CaseRegister(Base):
    """The last register number given per inspectorate and year (``register``): one row each,
    incremented in the transaction that opens the case, so a number is never given twice."""

    __tablename__ = "case_register"

    inspectorate: Mapped[str] = mapped_column(String(64), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


Index("ix_cases_assignee_state", Case.assignee_id, Case.state)


@event.listens_for(Session, "after_flush")
def _keep_next_due(session: Session, _context) -> None:
    """Recompute ``cases.next_due_at`` for every case whose clocks this flush wrote.

    Clocks change in several places (opening, moves, pauses, reopening); recomputing here, in
    the same transaction, keeps the sort key right whichever code moved a clock. A paused
    clock's deadline moves on while it waits, so for those the stored value is the due time
    at the pause (the list shows the live one).
    """
    ids = {obj.case_id for obj in (*session.new, *session.dirty) if isinstance(obj, CaseClock)}
    # a case inserted by this flush together with its first clock was given its key already
    # (deadlines.on_transition): no UPDATE for it
    ids -= {obj.case_id for obj in session.new if isinstance(obj, Case) and obj.next_due_at is not None}
    if not ids:
        return
    earliest = (select(func.min(CaseClock.due_at))
                .where(CaseClock.case_id == Case.case_id, CaseClock.stopped_at.is_(None))
                .scalar_subquery())
    session.connection().execute(update(Case).where(Case.case_id.in_(sorted(ids))).values(next_due_at=earliest))
    for obj in session.identity_map.values():
        if isinstance(obj, Case) and obj.case_id in ids:
            session.expire(obj, ["next_due_at"])  # read again on next access, not the stale value
Index("ix_cases_created_at", Case.created_at)

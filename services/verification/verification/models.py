"""The verification service's own tables: units, staff, sessions, cases and their history.

Only metadata lives here (DOMAIN.md "Sensitivity"): unit, category, state, timestamps and who
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin

ROLES = ("inspector", "supervisor", "admin")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Give back an aware UTC datetime whatever the database driver returned."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


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
    unit: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), index=True)
    assignee_id: Mapped[str | None] = mapped_column(
        Uuid(as_uuid=False), ForeignKey("staff.id"), nullable=True
    )
    routing_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    assignee: Mapped[Staff | None] = relationship(lazy="joined")


class CaseHistory(Base):
    """Every state a case has been in, who moved it and why (``actor`` is a staff id or
    ``system``)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), ForeignKey("cases.case_id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
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


Index("ix_cases_assignee_state", Case.assignee_id, Case.state)

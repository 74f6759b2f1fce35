"""Tables owned by the notification service.

What is deliberately *not* stored: the recipient's email address, name or language (asked of
verification and held only in each process's memory, for at most ``NOTIFY_RECIPIENT_CACHE_SECONDS``
and never past a ``staff_changed`` about that person, which ``StaffChange`` notes by id and time:
a changed address or a disabled account is honoured and this database holds no personal data
beyond a staff id; a reporter's address is read from storage at each attempt and
never written here, in a log or in an event), and the email body (it is rendered from the kind and case id,
which is all it may ever contain).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import (Boolean, CheckConstraint, Date, DateTime, Index, Integer, String, Text, false,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class Notification(Base):
    """One email to one staff member about one event.

    ``UNIQUE(event_id, recipient_id)`` is the exactly-once guarantee for the *decision* to send:
    however often an event is delivered, and however many notification instances race on it,
    at most one row (and so one email) exists per (event, recipient).

    ``next_attempt_at`` doubles as a lease: a worker claims a pending row by moving it into the
    future before sending, so the retry sweep of another instance does not send it again.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient_id", name="uq_notifications_event_recipient"),
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_notifications_status"
        ),
        Index("ix_notifications_status_next_attempt", "status", "next_attempt_at"),
    )

    notification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    recipient_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    case_id: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Exception class name only (e.g. "SMTPServerDisconnected"): never a message text, which
    # may quote an address. ``key_expired``: held (no attempt) until the recipient registers a
    # usable key or removes theirs (``notification.domain.release_held_for_key``).
    last_error: Mapped[Optional[str]] = mapped_column(String(64))
    # "Daily" delivery: a case email to a staff member who chose it is recorded held (no
    # ``next_attempt_at``, so no attempt) and collected into that day's ``daily_bundle``, whose
    # id goes here; it is marked sent when the bundle is.
    held: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    bundle_id: Mapped[Optional[str]] = mapped_column(String(36), index=True)


class CaseAssignee(Base):
    """Who is currently assigned to a case, learned from ``case_assigned`` events.

    Kept so that ``sla_breached`` (which names only the case) can reach the assignee without a
    synchronous call. ``assigned_at`` is the event's ``occurred_at``: an older assignment
    delivered late never overwrites a newer one.
    """

    __tablename__ = "case_assignees"

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    inspector_id: Mapped[str] = mapped_column(String(64), nullable=False)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class CaseReference(Base):
    """A case's register reference (``WBS/ITJEN/2026/00042``), learned from ``case_opened``, for
    the subject of staff emails about the case. Never used for reporter notices."""

    __tablename__ = "case_references"

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), nullable=False)


class CaseReport(Base):
    """Which report a case was opened for, learned from ``case_opened``.

    Kept because ``case_message_posted`` names only the case, while the reporter's notice
    address is read from storage by report. Ids only; dropped when the report is shredded.
    """

    __tablename__ = "case_reports"

    case_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)


class ReporterNews(Base):
    """Whether a reporter has news waiting for a notice, and the day of the last notice.

    Never the address: that stays sealed in the report's content in storage and is read at send
    time (``storage.read_reporter_contact``). ``news_since`` is set by news and cleared when a
    notice is planned; ``last_notice_day`` (the deployment's local date) allows one notice a day,
    later news waiting for the next day's sweep. ``no_contact``: storage said the reporter gave
    no address, so further news is not even planned (and storage not asked again).
    """

    __tablename__ = "reporter_news"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), nullable=False)
    news_since: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), index=True)
    last_notice_day: Mapped[Optional[date]] = mapped_column(Date)
    no_contact: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class TemplateVersion(Base):
    """One administrator's version of one email template (kind, language); the highest version
    is in use. Never edited or deleted: the history is the audit trail of what was sent when.
    ``html`` is optional (the email is then text only)."""

    __tablename__ = "template_versions"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The signed command's issuer and token id (wbs.audit.commands has the same line).
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)


class StaffKey(Base):
    """A staff member's OpenPGP public key: their emails are encrypted to it (``notification.pgp``).

    Checked at upload (parses, public, self-signed, not expired or revoked, can encrypt). A
    public key is no secret; ``expires_at`` lets an administrator see which keys run out.
    """

    __tablename__ = "staff_keys"

    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    armored: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class StaffPreference(Base):
    """How a staff member wants their email: ``delivery`` ``immediate`` (default) or ``daily``
    (their case emails wait for the digest hour), and as a supervisor their digest ``period``
    ``daily`` (default) or ``weekly`` (Mondays). Settable over RPC (console or admin)."""

    __tablename__ = "staff_preferences"
    __table_args__ = (
        CheckConstraint("delivery IN ('immediate', 'daily')", name="ck_staff_preferences_delivery"),
        CheckConstraint("digest IN ('daily', 'weekly')", name="ck_staff_preferences_digest"),
    )

    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(16), nullable=False, default="immediate")
    digest: Mapped[str] = mapped_column(String(16), nullable=False, default="daily")


class DigestCounts(Base):
    """The counts a digest notification carries (codes of units and numbers, nothing else),
    kept with its row so a retry sends the same figures; for an OpenPGP key warning, the key's
    fingerprint, expiry and owner's staff id (``{"fingerprint", "expires_at", "staff_id"}``). The row's ``UNIQUE(event_id,
    recipient_id)``, with an event id derived from the period, is the one-digest-per-period rule."""

    __tablename__ = "digest_counts"

    notification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    units: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list


class StaffChange(Base):
    """When this service learned that verification changed a staff member (``staff_changed``):
    an address any replica remembers of them from before then is not used again
    (``notification.dependencies``). A staff id and a time, nothing else."""

    __tablename__ = "staff_changes"

    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

"""Intake's own tables: metadata only.

What is deliberately *not* here: narrative, parties, the reporter's identity or contact, file
names, and anything about the reporter's device or network. Those go sealed to storage (or
nowhere). `received_at` is kept to the minute: precise enough for every deadline (docs/domain.md
counts days), coarse enough not to line up a submission with a door log or a proxy log.
"""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class Report(Base):
    """One submitted report: what routing and statistics may know, and the receipt's hash."""

    __tablename__ = "reports"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: HMAC-SHA256 of the receipt under intake's receipt key (see intake.receipts), hex.
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    #: plaintext bytes of all its evidence, for the per-report limit across follow-ups
    evidence_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    language: Mapped[str] = mapped_column(String(8))


class SpentPowChallenge(Base):
    """A proof-of-work challenge already used (SHA-256 of it); purged after its expiry."""

    __tablename__ = "spent_pow_challenges"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReporterSession(Base):
    """A reporter's short-lived sign-in; the token is stored as its SHA-256 only."""

    __tablename__ = "reporter_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    report_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("reports.report_id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class PendingDiscard(Base):
    """A submission that failed after storage may have stored it, while storage could not be
    told to discard it (the broker was away): retried by the service's timer until storage
    confirms, so a refused report never stays sealed in the vault. The id only, no content."""

    __tablename__ = "pending_discards"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))

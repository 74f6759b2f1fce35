"""The storage service's own tables. Nothing here is plaintext content.

* ``data_keys`` -- one wrapped data key per report. Deleting a row crypto-shreds the report:
  every object encrypted under that key, in the store and in any backup, becomes noise.
* ``report_contents`` -- a report's sealed content (one per report).
* ``evidence`` -- evidence files: random object key, plaintext size and SHA-256 (the caller needs
  them to verify a download; they are in the public ``evidence_stored`` event too), and the file
  name and media type *sealed* under the report's data key (``sealed_meta``), because a file name
  can identify a reporter ("my_complaint_budi_finance.pdf").
* ``messages`` -- messages between reporter and inspectors (<= 64 KiB each), sealed under the
  report's data key, so shredding the report shreds them too.
* ``content_reads`` -- the read log: who (the grant's subject and case, and the grant's id) read
  which object of which report, when. Never what was read.
* ``retention`` -- the report's retention schedule, kept from verification's events: the end
  state it reached, when it may be shredded, whether a legal hold blocks that, when it was shredded.
* ``outbox`` / ``processed_events`` -- the shared reliability tables (wbs_plumbing.outbox).

``evidence`` and ``report_contents`` reference ``data_keys``: a row can never outlive (or be
committed after the shredding of) the key that makes its object readable.

Object keys are random and never derived from report ids, so the object store alone cannot be
joined to reports.
"""
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin, utcnow


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DataKeyRecord(Base):
    """A report's data key, wrapped under key-encryption key ``kek_id`` (see storage.crypto)."""

    __tablename__ = "data_keys"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(16))
    kek_id: Mapped[str] = mapped_column(String(100), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReportContent(Base):
    """The sealed report content (narrative, parties, identity: everything sensitive).

    The content is sealed in the object format (storage.crypto) and kept in ``sealed``, in this
    row, like a conversation's messages: it is small and bounded (intake's field limits), and a
    row costs no file, fsync or object request of its own. Rows written before 0003 hold the
    sealed bytes in an object instead (``object_key``, ``sealed`` NULL); reads serve both.
    """

    __tablename__ = "report_contents"

    report_id: Mapped[str] = mapped_column(String(36), ForeignKey("data_keys.report_id"),
                                           primary_key=True)
    object_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # SHA-256 of the plaintext, checked on every read; the object's header, so that an older
    # version of the object put back in place (replay) is refused. NULL only on rows from 0001.
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    header: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Evidence(Base):
    """One stored evidence file."""

    __tablename__ = "evidence"

    evidence_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36), ForeignKey("data_keys.report_id"),
                                           index=True)
    object_key: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sealed_meta: Mapped[bytes] = mapped_column(LargeBinary)
    header: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # see ReportContent
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ContentRead(Base):
    """One read of sealed content: who, which object, when. Never the content."""

    __tablename__ = "content_reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(String(36), index=True)
    object_id: Mapped[str] = mapped_column(String(64))  # evidence id, "content", "parties" or "evidence-list"
    chunk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    staff_id: Mapped[str] = mapped_column(String(100), index=True)  # the grant's sub
    case_id: Mapped[str] = mapped_column(String(100))
    grant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the grant's jti
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    """One message of a report's conversation, sealed under the report's data key."""

    __tablename__ = "messages"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(36), ForeignKey("data_keys.report_id"),
                                           index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RetentionRecord(Base):
    """A report's retention schedule (see storage.retention); metadata only.

    ``state_at`` and ``hold_at`` are the ``occurred_at`` of the last event applied, so an older
    event delivered late (retries, redelivery) never overrides a newer decision. The row outlives
    the shredding (``shredded_at``) as the record that it happened; it holds no key material.
    """

    __tablename__ = "retention"

    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    state: Mapped[str | None] = mapped_column(String(40), nullable=True)
    state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shred_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True,
                                                          index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

"""The storage service's own tables. Nothing here is plaintext content.

* ``data_keys`` -- one wrapped data key per report. Deleting a row crypto-shreds the report:
  every object encrypted under that key, in the store and in any backup, becomes noise.
* ``report_contents`` -- where a report's sealed content object is (one per report).
* ``evidence`` -- evidence files: random object key, plaintext size and SHA-256 (the caller needs
  them to verify a download; they are in the public ``evidence_stored`` event too), and the file
  name and media type *sealed* under the report's data key (``sealed_meta``), because a file name
  can identify a reporter ("my_complaint_budi_finance.pdf").
* ``content_reads`` -- the read log: who (staff id, case id) read which object of which report,
  when. Never what was read.
* ``outbox`` / ``processed_events`` -- the shared reliability tables (wbs_plumbing.outbox).

``evidence`` and ``report_contents`` reference ``data_keys``: a row can never outlive (or be
committed after the shredding of) the key that makes its object readable.

Object keys are random and never derived from report ids, so the object store alone cannot be
joined to reports.
"""
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String
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
    """The sealed report content object (narrative, parties, identity: everything sensitive)."""

    __tablename__ = "report_contents"

    report_id: Mapped[str] = mapped_column(String(36), ForeignKey("data_keys.report_id"),
                                           primary_key=True)
    object_key: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ContentRead(Base):
    """One read of sealed content: who, which object, when. Never the content."""

    __tablename__ = "content_reads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(String(36), index=True)
    object_id: Mapped[str] = mapped_column(String(64))  # evidence id, "content" or "evidence-list"
    chunk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    staff_id: Mapped[str] = mapped_column(String(100), index=True)
    case_id: Mapped[str] = mapped_column(String(100))
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

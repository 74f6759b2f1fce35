"""Submitting a report, and adding evidence to it later.

Functions take their collaborators as arguments (the vault, the unit directory, a
`transaction` factory, settings, the time) and never commit: the `transaction` factory given by
the service (`Database.transaction`) is the one place that does. No transaction is ever held
open across an RPC: storage is called first (one `store_report` call for a report whose files
are small, see `EvidenceUploader`), then one short transaction records the report and stages
`report_submitted` in the outbox.

Failure rule: once anything was sent to storage for a report, any failure before the report row
commits calls `vault.discard_report(report_id)`, or, when that cannot be done now, remembers the
report for `retry_discards` (a timer), so a half-submitted report leaves no sealed content or
evidence behind for long, and the reporter gets a clear 4xx/503.

Nothing here knows HTTP: the report arrives decoded and the files as streams of bytes
(`intake.forms` maps the request to both).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import uuid
from typing import Any, Callable, Iterable

from sqlalchemy import select

from wbs_plumbing.clock import iso, utcnow
from wbs_plumbing.db import insert_unless_present
from wbs_plumbing.deadline import Unavailable
from wbs_plumbing.outbox import add_event

from intake.errors import BadRequest
from intake.models import OutboxMessage, PendingDiscard, Report
from intake.receipts import hash_receipt, new_receipt
from intake.schemas import validate_report

log = logging.getLogger(__name__)

# A new report's small files travel with its content in one call (EvidenceUploader): at most this
# much in memory per submission in progress, and storage's limit on files per call.
HOLD_BYTES = 8 * 1024 * 1024
HOLD_FILES = 20


class EvidenceUploader:
    """Takes one report's evidence files and gets them to the vault.

    A new report's files of at most one chunk each (most reports: photos, scans, letters) are
    held in memory, at most ``hold_bytes`` in all, and go with the report's content in one
    ``store_report`` call: one RPC and one storage transaction for the whole report. A file
    larger than a chunk, or more than ``hold_bytes``, switches the report to streaming: the
    held files and every later one go chunk by chunk (``begin/append/finish_evidence``) and the
    content on its own (``store_report_content``). ``hold_bytes=0`` (evidence added to an
    existing report) always streams. A file's upload is begun lazily at its first byte, so an
    empty file (what a browser sends for a file input left empty) creates nothing.
    """

    def __init__(self, vault, report_id: str, chunk_bytes: int, hold_bytes: int = 0,
                 hold_files: int = HOLD_FILES):
        self.vault = vault
        self.report_id = report_id
        self.chunk_bytes = chunk_bytes
        self.hold_bytes = hold_bytes
        self.hold_files = hold_files
        self.streaming = hold_bytes <= 0
        self.held: list[dict] = []
        self.count = 0
        self.bytes = 0
        self.stored: list[dict] = []
        self.touched_storage = False
        self._upload: dict | None = None
        self._buffer = bytearray()

    def upload(self, file) -> None:
        """One file (`filename`, `media_type`, `chunks`), held or streamed as its bytes arrive."""
        chunks = iter(file.chunks)
        if not self.streaming:
            data = bytearray()
            for piece in chunks:
                data += piece
                if (len(data) > self.chunk_bytes or len(self.held) >= self.hold_files
                        or sum(len(f["data"]) for f in self.held) + len(data) > self.hold_bytes):
                    self._switch_to_streaming()
                    chunks = itertools.chain([bytes(data)], chunks)
                    break
            else:
                if data:
                    self.held.append({"filename": file.filename, "media_type": file.media_type,
                                      "data": bytes(data)})
                return
        self._stream(file.filename, file.media_type, chunks)

    def store_with_content(self, content: bytes) -> None:
        """The report's content, with the held files in one call unless the report streams."""
        self.touched_storage = True
        if self.streaming:
            self.vault.store_report_content(self.report_id, content)
            return
        results = self.vault.store_report(self.report_id, content, self.held)
        for held, result in zip(self.held, results):
            self._stored(result, len(held["data"]))
        self.held = []

    def abort(self) -> None:
        """Best effort: free the storage instance's state for an upload in progress."""
        self.held = []
        if self._upload is not None:
            try:
                self.vault.abort_evidence(self._upload["route"], self._upload["upload_id"])
            except Exception:
                log.warning("abort_evidence failed; discard_report follows")
            self._upload = None
        self._buffer = bytearray()

    def _switch_to_streaming(self) -> None:
        self.streaming = True
        held, self.held = self.held, []
        for item in held:
            self._stream(item["filename"], item["media_type"], [item["data"]])

    def _stream(self, filename, media_type, chunks) -> None:
        self._upload, self._buffer = None, bytearray()
        size = 0
        for data in chunks:
            if self._upload is None:
                self.touched_storage = True
                self._upload = self.vault.begin_evidence(self.report_id, filename, media_type)
            size += len(data)
            self._buffer += data
            while len(self._buffer) >= self.chunk_bytes:
                self._send(bytes(self._buffer[:self.chunk_bytes]))
                del self._buffer[:self.chunk_bytes]
        if self._upload is not None:
            if self._buffer:
                self._send(bytes(self._buffer))
            self._stored(self.vault.finish_evidence(self._upload["route"], self._upload["upload_id"]), size)
        self._upload, self._buffer = None, bytearray()

    def _stored(self, done: dict, size: int) -> None:
        self.stored.append({"evidence_id": done.get("evidence_id"), "size_bytes": done.get("size_bytes")})
        self.count += 1
        self.bytes += size

    def _send(self, chunk: bytes) -> None:
        self.vault.append_evidence(self._upload["route"], self._upload["upload_id"], chunk)


def submit_report(
    data: Any,
    files: Iterable,
    *,
    units,
    vault,
    transaction: Callable,
    settings,
    now: dt.datetime | None = None,
) -> dict:
    """Accept one report: validate, stream evidence and content to the vault, record, announce.

    `data` is the decoded report (docs/interface.md §2); `files` its evidence files
    (`intake.forms.EvidenceFile`: name, media type, bytes in order), read only after `data` was
    validated, so nothing is sent anywhere for a report that is refused.

    Emits `report_submitted` (via the outbox). Raises ReportInvalid (422), BadRequest (400),
    UploadTooLarge (413), MalformedUpload (400), Unavailable (503).
    """
    report = validate_report(data, units.codes())
    del data

    report_id = str(uuid.uuid4())
    uploader = EvidenceUploader(vault, report_id, settings.evidence_chunk_bytes, hold_bytes=HOLD_BYTES)
    try:
        for file in files:
            uploader.upload(file)
        content = json.dumps(report.content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        uploader.store_with_content(content)
        del content

        receipt = new_receipt()
        received_at = (now or utcnow()).replace(second=0, microsecond=0)
        with transaction() as session:
            record_report(session, report_id, report.unit, report.category, report.language,
                          hash_receipt(settings.receipt_key, receipt), received_at, uploader.count,
                          uploader.bytes)
    except Exception as exc:
        # With the broker away neither the abort nor the discard can go now: trying would only
        # make the reporter wait another send deadline for the 503. storage's reaper removes an
        # upload left idle; what storage may have stored is discarded later (PendingDiscard).
        if not _broker_away(exc):
            uploader.abort()
        if uploader.touched_storage:
            discard_or_remember(report_id, vault=vault, transaction=transaction,
                                now=now, try_now=not _broker_away(exc))
        raise
    return {"report_id": report_id, "receipt": receipt, "received_at": iso(received_at),
            "evidence_count": uploader.count}


def record_report(session, report_id, unit, category, language, receipt_hash, received_at,
                  evidence_count, evidence_bytes=0) -> dict:
    """Insert the report's metadata row and stage `report_submitted` in the same transaction."""
    session.add(Report(
        report_id=report_id, unit=unit, category=category, received_at=received_at,
        receipt_hash=receipt_hash, evidence_count=evidence_count, language=language,
        evidence_bytes=evidence_bytes,
    ))
    return add_event(session, OutboxMessage, "report_submitted", {
        "report_id": report_id, "unit": unit, "category": category,
        "evidence_count": evidence_count,
        "occurred_at": iso(received_at),  # to the minute, as kept: an exact time would fingerprint
    })


def add_evidence(files: Iterable, report_id: str, *, vault, transaction: Callable, settings) -> dict:
    """More evidence from a signed-in reporter, streamed as above.

    Emits nothing itself (storage publishes `evidence_stored` per file). Raises BadRequest (a
    non-file field or wrong part name), UploadTooLarge, MalformedUpload, Unavailable. A failure
    aborts the file in progress; files finished earlier in the same request stay stored
    (storage has no per-file delete yet) and are counted.
    """
    uploader = EvidenceUploader(vault, report_id, settings.evidence_chunk_bytes)
    try:
        for file in files:
            uploader.upload(file)
    except Exception:
        uploader.abort()
        raise
    finally:
        if uploader.count:
            with transaction() as session:
                report = session.get(Report, report_id)
                if report is not None:
                    report.evidence_count = (report.evidence_count or 0) + uploader.count
                    report.evidence_bytes = (report.evidence_bytes or 0) + uploader.bytes
    if not uploader.count:
        raise BadRequest("no_evidence", "Attach at least one non-empty file part named 'evidence'.")
    return {"evidence": uploader.stored}


def discard_or_remember(report_id: str, *, vault, transaction: Callable, now=None, try_now=True) -> None:
    """Tell storage to discard a report that was not accepted; if that cannot be done now,
    remember it (`PendingDiscard`) for `retry_discards`. Why: a reply lost with the broker may
    hide that storage did store the report, and nothing else would ever shred it."""
    if try_now:
        try:
            vault.discard_report(report_id)
            return
        except Exception:
            log.warning("discard_report failed for a report that was not accepted; will retry")
    try:
        with transaction() as session:  # to the minute, like every time intake keeps
            insert_unless_present(session, PendingDiscard, report_id=report_id,
                                  since=(now or utcnow()).replace(second=0, microsecond=0))
    except Exception:
        log.error("could not remember report %s for a later discard", report_id)


def retry_discards(*, vault, transaction: Callable, limit: int = 100) -> int:
    """Discard the remembered reports storage has not confirmed yet; returns how many went.
    Stops at the first failure (storage or the broker still away): the next tick tries again."""
    with transaction() as session:
        pending = [row.report_id for row in session.scalars(
            select(PendingDiscard).order_by(PendingDiscard.since).limit(limit))]
    done = 0
    for report_id in pending:
        try:
            vault.discard_report(report_id)
        except Exception as exc:
            log.warning("discard of a refused report still fails (%s); retrying later", type(exc).__name__)
            break
        with transaction() as session:
            row = session.get(PendingDiscard, report_id)
            if row is not None:
                session.delete(row)
        done += 1
    return done


def _broker_away(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable) and exc.reason == "broker"

"""The registry of this process's evidence uploads in progress.

An upload is a conversation held in one storage instance's memory (encryptor, running SHA-256,
object-store writer): the chunks reach that instance through its own RPC route
(wbs_plumbing.rpc). This module keeps those conversations (bounded in number), closes them
(abort, idle reaping, shutdown) and knows nothing of reports, keys or the database; beginning,
appending and finishing an upload are use cases in :mod:`storage.domain`.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

from wbs_contracts.errors import Conflict, NotFound

from storage import crypto

log = logging.getLogger(__name__)


@dataclass
class Upload:
    """An evidence upload in progress: encryptor, running hash and store writer, in memory only."""

    upload_id: str
    report_id: str
    evidence_id: str
    object_key: str
    sealed_meta: bytes
    key_id: bytes  # the data key it is sealed under; finish checks that key is still the report's
    encryptor: crypto.SegmentEncryptor
    store: object
    writer: object = None
    sender_key: bytes | None = None  # chunks arrive sealed in transit from this sender
    sha256: object = field(default_factory=hashlib.sha256)
    size_bytes: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    def __repr__(self):  # keep sealed metadata, keys and hashes out of logs
        return f"Upload({self.upload_id}, size={self.size_bytes})"


class Uploads:
    """Registry of this process's uploads in progress, bounded in number."""

    def __init__(self, max_uploads: int = 64):
        self.max_uploads = max_uploads
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._uploads)

    def add(self, upload: Upload) -> None:
        with self._lock:
            if len(self._uploads) >= self.max_uploads:
                raise Conflict("too many uploads in progress; try again later")
            self._uploads[upload.upload_id] = upload

    def get(self, upload_id) -> Upload:
        upload = self._uploads.get(upload_id) if isinstance(upload_id, str) else None
        if upload is None:
            raise NotFound("no such upload (finished, aborted, expired, or on another instance)")
        return upload

    def pop(self, upload_id) -> Upload | None:
        with self._lock:
            return self._uploads.pop(upload_id, None) if isinstance(upload_id, str) else None

    def idle(self, now: float, idle_seconds: float) -> list[str]:
        return [u.upload_id for u in list(self._uploads.values())
                if now - u.last_activity >= idle_seconds]

    def for_report(self, report_id: str) -> list[str]:
        return [u.upload_id for u in list(self._uploads.values()) if u.report_id == report_id]

    def all_ids(self) -> list[str]:
        return list(self._uploads)


def abort_upload(uploads: Uploads, upload_id) -> None:
    """Drop an upload: its partial object is removed. Aborting an unknown upload is a no-op."""
    upload = uploads.pop(upload_id)
    if upload is None:
        return
    with upload.lock:
        abort_locked(uploads, upload)


def abort_locked(uploads: Uploads, upload: Upload) -> None:
    """Close and drop ``upload`` (its lock held by the caller); its partial object goes."""
    upload.closed = True
    uploads.pop(upload.upload_id)
    if upload.writer is not None:
        try:
            upload.writer.abort()
        except Exception:  # noqa: BLE001 -- nothing more to do; the data key still guards it
            log.warning("could not abort an upload's object writer")


def reap_idle_uploads(uploads: Uploads, idle_seconds: float, now: float | None = None) -> int:
    """Abort uploads that received nothing for ``idle_seconds`` (the client went away)."""
    now = time.monotonic() if now is None else now
    reaped = 0
    for upload_id in uploads.idle(now, idle_seconds):
        try:
            upload = uploads.get(upload_id)
        except NotFound:
            continue
        if not upload.lock.acquire(blocking=False):
            continue  # a chunk is being written right now: not idle
        try:
            if not upload.closed and now - upload.last_activity >= idle_seconds:
                abort_locked(uploads, upload)
                reaped += 1
        finally:
            upload.lock.release()
    if reaped:
        log.info("aborted %d idle upload(s)", reaped)
    return reaped


def abort_all_uploads(uploads: Uploads) -> int:
    """At shutdown: this instance's route disappears with it, so its uploads can never finish."""
    count = 0
    for upload_id in uploads.all_ids():
        abort_upload(uploads, upload_id)
        count += 1
    return count

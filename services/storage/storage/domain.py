"""What the vault does, as plain functions over their collaborators.

Collaborators are passed in, never looked up: ``transaction`` (a context-manager factory yielding
a SQLAlchemy session that commits when the block succeeds -- ``Database.transaction`` in the
service, a plain session factory in tests), ``keyring`` (:class:`storage.crypto.KeyRing`),
``store`` (an object store from :mod:`storage.objectstore`) and ``uploads`` (the in-process
:class:`storage.uploads.Uploads` registry). No function here commits by itself.

Why these functions take ``transaction`` rather than a session: object-store I/O (megabytes, maybe
seconds) must never run inside a database transaction (docs/architecture.md: transactions stay short), and
the order of the two matters for what a crash leaves behind. The rule throughout:

* **write the object first, then commit the row** that points at it. A crash in between leaves an
  unreferenced ciphertext object (harmless, swept later), never a row pointing at nothing;
* **commit the row deletion first, then delete the object.** Once the data-key row is gone the
  objects are unreadable anyway (crypto-shredding), so a failed object delete loses no secrecy.

Every read of sealed content is recorded (``content_reads``) in the same transaction that loads
the key, *before* any plaintext is returned: a read that is not logged does not happen.
Nothing here logs content, file names or keys.

Why one module of some 600 lines: every use case here (content, messages, evidence in and out,
discarding) shares the same few checks and the same object-then-row ordering, and reading them
side by side is how that ordering is reviewed; the in-process upload registry, which shares
neither, lives in :mod:`storage.uploads`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from wbs_contracts import report_content
from wbs_contracts.errors import Conflict, Forbidden, Invalid, NotFound
from wbs_plumbing.grants import GrantError
from wbs_plumbing.outbox import add_event, utcnow

from storage import crypto, transit as sealed_transit
from storage.models import (ContentRead, DataKeyRecord, Evidence, Message, OutboxMessage,
                            ReportContent)
from storage.objectstore import ObjectNotFound, ObjectStoreError, new_object_key
from storage.settings import CHUNK_SIZE
from storage.uploads import (Upload, Uploads, abort_all_uploads, abort_locked,  # noqa: F401
                             abort_upload, reap_idle_uploads)

log = logging.getLogger(__name__)

CONTENT_OBJECT_ID = "content"
PARTIES_OBJECT_ID = "parties"  # a read of the content that showed only its parties
EVIDENCE_LIST_OBJECT_ID = "evidence-list"
MAX_NAME_LENGTH = 1024
MAX_READER_ID_LENGTH = 100
MAX_MESSAGE_BYTES = 64 * 1024
MAX_MESSAGES_PER_READ = 1000


# ---------------------------------------------------------------------------------------------
# Input checks (messages name the field, never echo the value)
# ---------------------------------------------------------------------------------------------

def check_uuid(value, field_name: str) -> str:
    """Report and evidence ids are canonical lowercase UUIDs (the event contract requires it)."""
    try:
        if isinstance(value, str) and str(uuid.UUID(value)) == value:
            return value
    except ValueError:
        pass
    raise Invalid(f"{field_name} must be a lowercase UUID")


@dataclass(frozen=True)
class Reader:
    """Who reads, from a verified grant: the grant's subject, case and id (for the read log)."""

    sub: str
    case_id: str
    grant_id: str


def authorise(grants, grant, report_id: str, scope: str, message_id: str | None = None) -> Reader:
    """Check verification's signed read grant for a ``scope`` read of ``report_id``.

    storage does not decide who may read a case (verification does: assignment, supervision,
    conflicts); it checks that verification decided so, recently, for this report and this kind
    of read. Anything else is ``Forbidden`` before a key is unwrapped or a byte is read. The
    warning names the rule that failed, never the token.
    """
    try:
        claims = grants.check(grant, report_id=report_id, scope=scope, message_id=message_id)
    except GrantError as exc:
        log.warning("refused a %s read: %s", scope, exc)
        raise Forbidden(f"read refused: {exc}") from None
    sub, case_id = str(claims.get("sub") or ""), str(claims.get("case_id") or "")
    if not sub or len(sub) > MAX_READER_ID_LENGTH or len(case_id) > MAX_READER_ID_LENGTH:
        log.warning("refused a %s read: grant names no valid reader", scope)
        raise Forbidden("read refused: grant names no valid reader")
    return Reader(sub=sub, case_id=case_id, grant_id=str(claims.get("jti") or "")[:64])


def _check_text(value, field_name: str, allow_empty: bool = False) -> str:
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or (not value and not allow_empty):
        raise Invalid(f"{field_name} must be a string of at most {MAX_NAME_LENGTH} characters")
    return value


def _check_bytes(value, field_name: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise Invalid(f"{field_name} must be bytes")


def _unseal_text(transit, context: str, sender_key, value, field_name: str) -> str:
    """A text field that crossed RabbitMQ sealed (see storage.transit)."""
    raw = transit.open(context, sender_key, value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{field_name} must be UTF-8 text") from None


def _answer(reader_key, context: str, value):
    """Plain answer, or sealed to the reader's transit key when the reader gave one."""
    if reader_key is None:
        return value
    raw = value if isinstance(value, bytes) else json.dumps(value).encode("utf-8")
    return sealed_transit.seal_for_reader(reader_key, context, raw)


def _check_reader_key(reader_key, transit=None):
    _require_sealed(transit, reader_key, "reader_key")
    if reader_key is not None:
        sealed_transit._check_key(reader_key, "reader_key")


def _require_sealed(transit, key, field_name: str) -> None:
    """With REQUIRE_SEALED_TRANSIT, content never crosses RabbitMQ in plaintext: refuse."""
    if key is None and transit is not None and getattr(transit, "required", False):
        raise Invalid(f"sealed transit is required: pass {field_name}")


# ---------------------------------------------------------------------------------------------
# Data keys
# ---------------------------------------------------------------------------------------------

def ensure_data_key(session, keyring: crypto.KeyRing, report_id: str) -> crypto.DataKey:
    """The report's data key, created (and wrapped) on first use.

    Two first uses racing (content and evidence of a new report arrive together) collide on the
    primary key inside a savepoint; the loser reads the winner's key.
    """
    record = session.get(DataKeyRecord, report_id)
    if record is None:
        data_key = crypto.DataKey.generate()
        wrapped = keyring.wrap(report_id, data_key)
        try:
            with session.begin_nested():
                session.add(DataKeyRecord(report_id=report_id, key_id=data_key.key_id,
                                          kek_id=wrapped.kek_id, wrapped=wrapped.wrapped))
            return data_key
        except DBIntegrityError:
            record = session.get(DataKeyRecord, report_id, populate_existing=True)
            if record is None:
                raise
    return keyring.unwrap(report_id, record.key_id, record.kek_id, record.wrapped)


def load_data_key(session, keyring: crypto.KeyRing, report_id: str) -> crypto.DataKey:
    return _unwrapped(keyring, report_id, session.get(DataKeyRecord, report_id))


def _unwrapped(keyring: crypto.KeyRing, report_id: str, record) -> crypto.DataKey:
    if record is None:
        raise NotFound("no such report")
    with integrity_logged(report_id, "data-key"):
        return keyring.unwrap(report_id, record.key_id, record.kek_id, record.wrapped)


def rewrap_data_keys(session, keyring: crypto.KeyRing, limit: int | None = None) -> int:
    """Key rotation: move every data key not under the active KEK to it. Objects are untouched.

    Run after adding a KEK to the key file (``crypto.add_kek``); the old KEK can be removed from
    the file once this returns 0 for every storage database.
    """
    query = select(DataKeyRecord).where(DataKeyRecord.kek_id != keyring.active_id)
    if limit:
        query = query.limit(limit)
    count = 0
    for record in session.scalars(query):
        moved = keyring.rewrap(record.report_id, record.key_id, record.kek_id, record.wrapped)
        record.kek_id, record.wrapped, record.rewrapped_at = moved.kek_id, moved.wrapped, utcnow()
        count += 1
    return count


def _record_read(session, report_id: str, object_id: str, reader: Reader,
                 chunk_index: int | None = None) -> None:
    session.add(ContentRead(report_id=report_id, object_id=object_id, chunk_index=chunk_index,
                            staff_id=reader.sub, case_id=reader.case_id,
                            grant_id=reader.grant_id or None))


@contextmanager
def integrity_logged(report_id: str, object_id: str):
    """Log a failed integrity check loudly (ids and the rule only, never content), re-raise.

    A tampered, truncated, swapped or replayed object is a security event an operator must see;
    the caller gets ``IntegrityError`` and no plaintext.
    """
    try:
        yield
    except crypto.IntegrityError as exc:
        log.error("INTEGRITY FAILURE reading object %s of report %s: %s", object_id, report_id,
                  exc)
        raise


def _read_stream(store, object_key: str):
    try:
        yield from store.read_stream(object_key)
    except ObjectNotFound:
        raise crypto.IntegrityError("object is missing from the store") from None


def _write_object(store, pieces) -> str:
    key = new_object_key()
    writer = store.open_writer(key)
    try:
        for piece in pieces:
            writer.write(piece)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return key


def _delete_objects(store, keys) -> None:
    """Best effort: the rows are gone and the data key with them, so leftovers are noise."""
    failed = 0
    for key in keys:
        try:
            store.delete(key)
        except ObjectStoreError:
            failed += 1
    if failed:
        log.warning("could not delete %d shredded object(s); they stay unreadable", failed)


# ---------------------------------------------------------------------------------------------
# Report content
# ---------------------------------------------------------------------------------------------

def store_report_content(transaction, keyring, store, report_id, content, transit=None,
                         sender_key=None) -> None:
    """Seal ``content`` (the report's sensitive JSON, as bytes) under the report's data key.

    With ``sender_key``, ``content`` arrived sealed in transit and is opened first. Storing again
    replaces the previous content (an intake retry must not fail); a content object from before
    contents were kept in their row is deleted after the new row commits.
    """
    report_id = check_uuid(report_id, "report_id")
    content = _check_bytes(content, "content")
    _require_sealed(transit, sender_key, "sender_key")
    if sender_key is not None:
        content = transit.open(report_id, sender_key, content)
    old_key = None
    with transaction() as session:
        fields = _sealed_content(ensure_data_key(session, keyring, report_id), report_id, content)
        row = session.get(ReportContent, report_id)
        if row is None:
            session.add(ReportContent(report_id=report_id, **fields))
        else:
            old_key = row.object_key
            for name, value in fields.items():
                setattr(row, name, value)
            row.created_at = utcnow()
    if old_key:
        _delete_objects(store, [old_key])


def _sealed_content(data_key, report_id: str, content: bytes) -> dict:
    """The columns of a ``report_contents`` row: the content sealed in the object format, kept in
    the row (models.ReportContent says why), with its length, SHA-256 and header for the reads'
    checks."""
    enc = crypto.SegmentEncryptor(data_key, report_id, CONTENT_OBJECT_ID)
    return {"object_key": None, "sealed": b"".join(_encrypt_in_pieces(enc, content)),
            "size_bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(),
            "header": enc.header}


MAX_SMALL_FILES = 20  # intake's INTAKE_MAX_FILES default; a larger report streams instead


def store_report(transaction, keyring, store, report_id, content, files, transit=None,
                 sender_key=None) -> list[dict]:
    """A new report in one call: its content and every evidence file (each at most one chunk).

    Why: a report with small evidence is most reports, and each RPC and transaction costs more
    CPU than the encryption (docs/architecture.md §8). ``files`` is ``[{"filename",
    "media_type", "data"}]``, sealed in transit like ``content`` when ``sender_key`` is given.
    The data key is made here, the evidence objects are written with it, and one transaction
    records the key, the content (sealed, in its row) and the evidence rows with their
    ``evidence_stored`` events (object first, then row: a crash in between leaves only
    unreadable objects). A report that already has a key (a repeated call) is refused with
    ``Conflict`` and this call's objects deleted. Returns ``[{"evidence_id", "size_bytes",
    "sha256"}]`` in the order given.
    """
    report_id = check_uuid(report_id, "report_id")
    _require_sealed(transit, sender_key, "sender_key")
    if not isinstance(files, (list, tuple)) or len(files) > MAX_SMALL_FILES:
        raise Invalid(f"files must be a list of at most {MAX_SMALL_FILES}")

    def opened(value, field_name):
        value = _check_bytes(value, field_name)
        return transit.open(report_id, sender_key, value) if sender_key is not None else value

    def text(value, field_name):
        try:
            return opened(value, field_name).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"{field_name} must be UTF-8 text") from None

    content = opened(content, "content")
    plain_files = []
    for item in files:
        if not isinstance(item, dict):
            raise Invalid("files must be objects")
        # in the order the client sealed them (transit refuses a sealed value out of order)
        filename = _check_text(text(item.get("filename"), "filename"), "filename")
        media_type = _check_text(text(item.get("media_type"), "media_type"), "media_type",
                                 allow_empty=True) or "application/octet-stream"
        data = opened(item.get("data"), "data")
        if len(data) > CHUNK_SIZE:
            raise Invalid(f"a file sent with the report must be at most {CHUNK_SIZE} bytes")
        plain_files.append((filename, media_type, data))

    data_key = crypto.DataKey.generate()
    wrapped = keyring.wrap(report_id, data_key)
    written, evidence = [], []
    try:
        content_row = ReportContent(report_id=report_id, **_sealed_content(data_key, report_id, content))
        for filename, media_type, data in plain_files:
            evidence_id = str(uuid.uuid4())
            file_enc = crypto.SegmentEncryptor(data_key, report_id, evidence_id)
            object_key = _write_object(store, [file_enc.update(data), file_enc.finalize()])
            written.append(object_key)
            evidence.append(({"evidence_id": evidence_id, "size_bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()}, object_key,
                             _sealed_meta(data_key, report_id, evidence_id, filename, media_type),
                             file_enc.header))
        with transaction() as session:
            session.add(DataKeyRecord(report_id=report_id, key_id=data_key.key_id,
                                      kek_id=wrapped.kek_id, wrapped=wrapped.wrapped))
            session.flush()  # a report that has a key already fails here, before anything else
            session.add(content_row)
            for result, object_key, sealed_meta, header in evidence:
                _record_evidence(session, report_id, result, object_key, sealed_meta, header)
    except DBIntegrityError:
        _delete_objects(store, written)
        raise Conflict("this report is stored already") from None
    except BaseException:
        _delete_objects(store, written)
        raise
    return [result for result, *_ in evidence]


def _sealed_meta(data_key, report_id: str, evidence_id: str, filename: str, media_type: str) -> bytes:
    """A file's name and media type, sealed under the report's data key (kept only that way)."""
    meta = json.dumps({"filename": filename, "media_type": media_type}).encode("utf-8")
    return crypto.seal(data_key, report_id, f"meta:{evidence_id}", meta)


def _record_evidence(session, report_id: str, result: dict, object_key: str, sealed_meta: bytes,
                     header: bytes) -> None:
    """The evidence row and its ``evidence_stored`` event, in the caller's transaction."""
    session.add(Evidence(evidence_id=result["evidence_id"], report_id=report_id, object_key=object_key,
                         size_bytes=result["size_bytes"], sha256=result["sha256"], sealed_meta=sealed_meta,
                         header=header))
    add_event(session, OutboxMessage, "evidence_stored", {"report_id": report_id, **result})


def _encrypt_in_pieces(enc: crypto.SegmentEncryptor, data: bytes):
    view = memoryview(data)
    for offset in range(0, len(view), CHUNK_SIZE):
        yield enc.update(view[offset:offset + CHUNK_SIZE])
    yield enc.finalize()


def read_report_content(transaction, keyring, store, grants, report_id, grant, reader_key=None,
                        transit=None):
    """Decrypt the report content for the holder of ``grant`` (scope ``content``); the read is
    recorded first.

    Returns bytes, or ``{"sender_key", "sealed"}`` sealed to ``reader_key`` (context: report id).
    """
    report_id = check_uuid(report_id, "report_id")
    _check_reader_key(reader_key, transit)
    who = authorise(grants, grant, report_id, "content")
    return _answer(reader_key, report_id, _decrypted_content(transaction, keyring, store, report_id, who,
                                                             CONTENT_OBJECT_ID))


def read_report_parties(transaction, keyring, store, grants, report_id, grant, reader_key=None,
                        transit=None):
    """Only the people a report names, for the holder of ``grant`` (scope ``parties``): routing
    needs them before a case opens, and nothing else of the report. The read is recorded first
    (object ``parties``).

    Returns ``wbs_contracts.report_content.parties_view``'s JSON (bytes), or sealed to
    ``reader_key`` as ``read_report_content`` does.
    """
    report_id = check_uuid(report_id, "report_id")
    _check_reader_key(reader_key, transit)
    who = authorise(grants, grant, report_id, "parties")
    content = _decrypted_content(transaction, keyring, store, report_id, who, PARTIES_OBJECT_ID)
    return _answer(reader_key, report_id, json.dumps(report_content.parties_view(content)).encode("utf-8"))


def _decrypted_content(transaction, keyring, store, report_id: str, who: Reader, recorded_as: str) -> bytes:
    """The report's content in plaintext (SHA-256 checked), its read recorded as ``recorded_as``
    in the same transaction that unwraps the key."""
    with transaction() as session:
        found = session.execute(select(ReportContent, DataKeyRecord).join(
            DataKeyRecord, DataKeyRecord.report_id == ReportContent.report_id).where(
            ReportContent.report_id == report_id)).first()  # the row and its key: one round trip
        if found is None:
            raise NotFound("no content stored for this report")
        row, record = found
        data_key = _unwrapped(keyring, report_id, record)
        object_key, sealed, header, digest = row.object_key, row.sealed, row.header, row.sha256
        _record_read(session, report_id, recorded_as, who)
    with integrity_logged(report_id, CONTENT_OBJECT_ID):
        dec = crypto.SegmentDecryptor(data_key, report_id, CONTENT_OBJECT_ID,
                                      expected_header=header)
        pieces = [sealed] if sealed is not None else _read_stream(store, object_key)
        out = [dec.update(piece) for piece in pieces]
        out.append(dec.finalize())
        content = b"".join(out)
        if digest is not None and hashlib.sha256(content).hexdigest() != digest:
            raise crypto.IntegrityError("content does not match its recorded SHA-256")
    return content


# ---------------------------------------------------------------------------------------------
# Messages (reporter <-> inspectors), sealed under the report's data key
# ---------------------------------------------------------------------------------------------

def _message_object_id(message_id: str) -> str:
    return f"message:{message_id}"


def store_message(transaction, keyring, report_id, message_id, text, transit=None,
                  sender_key=None) -> None:
    """Seal one message (UTF-8 bytes, at most ``MAX_MESSAGE_BYTES``) under the report's data key.

    Messages live in the database, not the object store: they are small, and sealing them under
    the data key means shredding the report shreds its conversation with it. Idempotent per
    ``message_id`` (a retried call stores nothing twice); the same id for another report is a
    ``Conflict``.
    """
    report_id = check_uuid(report_id, "report_id")
    message_id = check_uuid(message_id, "message_id")
    text = _check_bytes(text, "text")
    _require_sealed(transit, sender_key, "sender_key")
    if sender_key is not None:
        text = transit.open(report_id, sender_key, text)
    if len(text) > MAX_MESSAGE_BYTES:
        raise Invalid(f"text must be at most {MAX_MESSAGE_BYTES} bytes")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("text must be UTF-8") from None
    with transaction() as session:
        existing = session.get(Message, message_id)
        if existing is not None:
            if existing.report_id != report_id:
                raise Conflict("message_id is already used by another report")
            return
        data_key = ensure_data_key(session, keyring, report_id)
        session.add(Message(message_id=message_id, report_id=report_id,
                            sealed=crypto.seal(data_key, report_id,
                                               _message_object_id(message_id), text)))


def read_messages(transaction, keyring, grants, report_id, message_ids, grant, reader_key=None,
                  transit=None):
    """The asked messages of a report, in the order asked: ``[{"message_id", "text"}]``.

    The grant must cover ``messages`` reads of the report and, when it lists message ids (a
    reporter's grant never lists internal notes), every id asked. Each message read is recorded
    before any plaintext leaves. With ``reader_key`` the list comes back sealed as JSON
    (``{"sender_key", "sealed"}``, context: report id).
    """
    report_id = check_uuid(report_id, "report_id")
    if not isinstance(message_ids, (list, tuple)) or len(message_ids) > MAX_MESSAGES_PER_READ:
        raise Invalid(f"message_ids must be a list of at most {MAX_MESSAGES_PER_READ} ids")
    message_ids = [check_uuid(m, "message_ids[]") for m in message_ids]
    _check_reader_key(reader_key, transit)
    who = authorise(grants, grant, report_id, "messages")
    for message_id in message_ids:
        authorise(grants, grant, report_id, "messages", message_id=message_id)
    if not message_ids:
        return _answer(reader_key, report_id, [])
    with transaction() as session:
        rows = {row.message_id: row for row in session.scalars(
            select(Message).where(Message.message_id.in_(message_ids)))}
        if any(m not in rows or rows[m].report_id != report_id for m in message_ids):
            raise NotFound("no such message for this report")
        data_key = load_data_key(session, keyring, report_id)
        for message_id in dict.fromkeys(message_ids):
            _record_read(session, report_id, _message_object_id(message_id), who)
        sealed = {m: rows[m].sealed for m in message_ids}
    out = []
    for m in message_ids:
        with integrity_logged(report_id, _message_object_id(m)):
            text = crypto.open_sealed(data_key, report_id, _message_object_id(m), sealed[m])
        out.append({"message_id": m, "text": text.decode("utf-8")})
    return _answer(reader_key, report_id, out)


# ---------------------------------------------------------------------------------------------
# Evidence uploads (sessions live in this process; chunks reach it through the sticky route)
# ---------------------------------------------------------------------------------------------

def begin_upload(transaction, keyring, store, uploads: Uploads, report_id, filename,
                 media_type, transit=None, sender_key=None) -> str:
    """Start an evidence upload for ``report_id``; returns the upload id.

    The file name and media type are sealed at once under the report's data key and kept only in
    that form. With ``sender_key`` they (and later every chunk) arrive sealed in transit.
    """
    report_id = check_uuid(report_id, "report_id")
    _require_sealed(transit, sender_key, "sender_key")
    if sender_key is not None:
        filename = _unseal_text(transit, report_id, sender_key, filename, "filename")
        media_type = _unseal_text(transit, report_id, sender_key, media_type, "media_type")
    filename = _check_text(filename, "filename")
    media_type = _check_text(media_type, "media_type", allow_empty=True) or "application/octet-stream"
    with transaction() as session:
        data_key = ensure_data_key(session, keyring, report_id)
    evidence_id = str(uuid.uuid4())
    sealed_meta = _sealed_meta(data_key, report_id, evidence_id, filename, media_type)
    object_key = new_object_key()
    upload = Upload(
        upload_id=uuid.uuid4().hex, report_id=report_id, evidence_id=evidence_id,
        object_key=object_key, sealed_meta=sealed_meta, key_id=data_key.key_id,
        encryptor=crypto.SegmentEncryptor(data_key, report_id, evidence_id),
        store=store, sender_key=bytes(sender_key) if sender_key is not None else None)
    uploads.add(upload)
    try:
        upload.writer = store.open_writer(object_key)
    except BaseException:
        uploads.pop(upload.upload_id)
        raise
    return upload.upload_id


def append_upload(uploads: Uploads, upload_id, chunk, max_chunk: int = CHUNK_SIZE,
                  transit=None) -> int:
    """Encrypt and store the next chunk (<= 1 MiB) of an upload; returns the size so far.

    Chunks of one upload are applied one at a time, in the order they arrive (an upload begun
    with a transit ``sender_key`` takes sealed chunks). If the store fails, the upload is aborted
    (nothing half-written stays) and the caller must start over.
    """
    chunk = _check_bytes(chunk, "chunk")
    if len(chunk) > max_chunk + sealed_transit.SEAL_OVERHEAD:
        raise Invalid(f"chunk must be at most {max_chunk} bytes")
    upload = uploads.get(upload_id)
    with upload.lock:
        if upload.closed:
            raise NotFound("no such upload (finished or aborted)")
        if upload.sender_key is not None:
            chunk = transit.open(upload.report_id, upload.sender_key, chunk)
        if len(chunk) > max_chunk:
            raise Invalid(f"chunk must be at most {max_chunk} bytes")
        try:
            ciphertext = upload.encryptor.update(chunk)
            upload.writer.write(ciphertext)
        except BaseException:
            abort_locked(uploads, upload)
            raise
        upload.sha256.update(chunk)
        upload.size_bytes += len(chunk)
        upload.last_activity = time.monotonic()
        return upload.size_bytes


def finish_upload(transaction, uploads: Uploads, upload_id) -> dict:
    """Seal the last segment, make the object durable, record it and announce it.

    The evidence row and the ``evidence_stored`` event commit together (outbox); if that commit
    fails, the object is deleted again.
    """
    upload = uploads.get(upload_id)
    with upload.lock:
        if upload.closed:
            raise NotFound("no such upload (finished or aborted)")
        upload.closed = True
        uploads.pop(upload.upload_id)
        try:
            upload.writer.write(upload.encryptor.finalize())
        except BaseException:
            upload.writer.abort()
            raise
        upload.writer.close()
    result = {"evidence_id": upload.evidence_id, "size_bytes": upload.size_bytes,
              "sha256": upload.sha256.hexdigest()}
    try:
        with transaction() as session:
            record = session.get(DataKeyRecord, upload.report_id)
            if record is None or record.key_id != upload.key_id:
                raise NotFound("report was discarded during the upload")
            _record_evidence(session, upload.report_id, result, upload.object_key, upload.sealed_meta,
                             upload.encryptor.header)
    except BaseException:
        _delete_objects(upload.store, [upload.object_key])
        raise
    return result


# ---------------------------------------------------------------------------------------------
# Evidence reads
# ---------------------------------------------------------------------------------------------

def list_evidence(transaction, keyring, grants, report_id, grant, reader_key=None, transit=None):
    """The report's evidence with file names unsealed, oldest first; the listing is recorded.

    With ``reader_key`` the list comes back as ``{"sender_key", "sealed"}`` (sealed JSON,
    context: report id).
    """
    report_id = check_uuid(report_id, "report_id")
    _check_reader_key(reader_key, transit)
    who = authorise(grants, grant, report_id, "evidence")
    with transaction() as session:
        rows = list(session.scalars(select(Evidence).where(Evidence.report_id == report_id)
                                    .order_by(Evidence.created_at, Evidence.evidence_id)))
        if not rows:
            if session.get(DataKeyRecord, report_id) is None:
                raise NotFound("no such report")
            return _answer(reader_key, report_id, [])
        data_key = load_data_key(session, keyring, report_id)
        _record_read(session, report_id, EVIDENCE_LIST_OBJECT_ID, who)
    out = []
    for row in rows:
        with integrity_logged(report_id, f"meta:{row.evidence_id}"):
            meta = json.loads(crypto.open_sealed(data_key, report_id,
                                                 f"meta:{row.evidence_id}", row.sealed_meta))
        out.append({"evidence_id": row.evidence_id, "size_bytes": row.size_bytes,
                    "sha256": row.sha256, "filename": meta["filename"],
                    "media_type": meta["media_type"]})
    return _answer(reader_key, report_id, out)


def read_evidence_chunk(transaction, keyring, store, grants, evidence_id, index, grant,
                        chunk_size: int = CHUNK_SIZE, reader_key=None, transit=None) -> dict:
    """The ``index``-th ``chunk_size`` bytes of an evidence file's plaintext, authenticated.

    ``last`` is true on the final chunk; that chunk includes the object's final segment, so a
    truncated object fails there instead of looking complete. An empty file is one empty chunk.
    Returns ``{"data", "last"}``, or with ``reader_key`` ``{"sender_key", "sealed", "last"}``
    (context: ``"<evidence_id>:<index>"``).
    """
    evidence_id = check_uuid(evidence_id, "evidence_id")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Invalid("index must be a non-negative integer")
    _check_reader_key(reader_key, transit)
    with transaction() as session:
        row = session.get(Evidence, evidence_id)
        if row is None:
            raise NotFound("no such evidence")
        who = authorise(grants, grant, row.report_id, "evidence")
        try:
            plan = crypto.plan_chunk(row.size_bytes, index, chunk_size)
        except IndexError:
            raise Invalid("index is past the end of the file") from None
        report_id, object_key, recorded = row.report_id, row.object_key, row.header
        size_bytes = row.size_bytes
        data_key = load_data_key(session, keyring, report_id)
        _record_read(session, report_id, evidence_id, who, chunk_index=index)
    with integrity_logged(report_id, evidence_id):
        try:
            if plan.first_segment == 0:  # header and chunk are adjacent: one ranged read
                blob = store.read_range(object_key, 0,
                                        crypto.HEADER_SIZE + plan.ciphertext_length)
                header, body = blob[:crypto.HEADER_SIZE], blob[crypto.HEADER_SIZE:]
            else:
                header = store.read_range(object_key, 0, crypto.HEADER_SIZE)
                body = store.read_range(object_key, plan.ciphertext_offset,
                                        plan.ciphertext_length)
        except ObjectNotFound:
            raise crypto.IntegrityError("object is missing from the store") from None
        data = crypto.decrypt_segments(data_key, header, report_id, evidence_id,
                                       plan.first_segment, body, plan.last,
                                       expected_header=recorded)
        if plan.last and store.size(object_key) != crypto.ciphertext_size(size_bytes):
            raise crypto.IntegrityError("object has data after its final segment")
    if reader_key is not None:
        return {**sealed_transit.seal_for_reader(reader_key, f"{evidence_id}:{index}", data),
                "last": plan.last}
    return {"data": data, "last": plan.last}


# ---------------------------------------------------------------------------------------------
# Discarding (intake failed half-way; also what retention shredding does)
# ---------------------------------------------------------------------------------------------

def discard_report(transaction, store, uploads: Uploads, report_id) -> int:
    """Destroy the report's data key, rows and objects; returns how many objects were removed.

    The data-key row goes in the same transaction as the object rows, so from the moment it
    commits nothing of the report can be decrypted again (backups of the store included).
    Idempotent: discarding an unknown or already discarded report does nothing.
    """
    report_id = check_uuid(report_id, "report_id")
    for upload_id in uploads.for_report(report_id):
        abort_upload(uploads, upload_id)
    with transaction() as session:
        keys = delete_report_rows(session, report_id)
    _delete_objects(store, keys)
    return len(keys)


def delete_report_rows(session, report_id: str) -> list[str]:
    """Delete the report's data key and every row sealed under it, in the caller's transaction;
    returns the keys of the objects those rows pointed at, for the caller to delete after commit."""
    keys = list(session.scalars(select(Evidence.object_key).where(Evidence.report_id == report_id)))
    keys += session.scalars(select(ReportContent.object_key).where(
        ReportContent.report_id == report_id, ReportContent.object_key.is_not(None)))
    session.execute(delete(Evidence).where(Evidence.report_id == report_id))
    session.execute(delete(Message).where(Message.report_id == report_id))
    session.execute(delete(ReportContent).where(ReportContent.report_id == report_id))
    session.execute(delete(DataKeyRecord).where(DataKeyRecord.report_id == report_id))
    return keys


def delete_objects(store, keys) -> None:
    """Delete objects (every version) after their rows are gone; failures only log."""
    _delete_objects(store, keys)

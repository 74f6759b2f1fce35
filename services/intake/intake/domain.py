"""Intake's domain: accept a report, hand its content to the vault, keep only metadata.

Functions take their collaborators as arguments (the vault, the unit directory, a
`transaction` factory, settings, the time) and never commit: the `transaction` factory given by
the service (`Database.transaction`) is the one place that does. No transaction is ever held
open across an RPC: storage is called first, then one short transaction records the report and
stages `report_submitted` in the outbox.

Failure rule: once anything was sent to storage for a report, any failure before the report row
commits calls `vault.discard_report(report_id)` (best effort), so a half-submitted report
leaves no sealed content or evidence behind, and the reporter gets a clear 4xx/503.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
import uuid
from typing import Any, Callable, Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from wbs_contracts.vocabulary import RECEIVED, reporter_state_label
from wbs_plumbing.clock import as_utc, iso, utcnow
from wbs_plumbing.outbox import add_event

from intake import pow as powmod
from intake.errors import BadRequest, Unauthorized
from intake.models import OutboxMessage, Report, ReporterSession, SpentPowChallenge
from intake.receipts import hash_receipt, new_receipt, normalise_receipt
from intake.schemas import validate_report
from intake.uploads import FieldPart, FileChunk, FileEnd, FileStart, UploadTooLarge

log = logging.getLogger(__name__)

# -- proof of work ---------------------------------------------------------------------------

def issue_pow(settings, now: float | None = None) -> dict:
    """A fresh challenge (nothing is stored: see intake.pow)."""
    now = time.time() if now is None else now
    challenge, expires_at = powmod.issue_challenge(settings.pow_key, now, settings.pow_ttl_seconds)
    return {
        "challenge": challenge,
        "bits": settings.pow_bits,
        "expires_at": iso(dt.datetime.fromtimestamp(expires_at, dt.timezone.utc)),
        "algorithm": "sha256-leading-zero-bits",
    }


def require_pow(transaction: Callable, settings, header: str | None, now: float | None = None) -> None:
    """Verify a proof and mark its challenge spent, before any of the request body is read.

    `WBS_POW_BITS=0` turns the check off entirely. Raises `PowRejected`.
    """
    if settings.pow_bits <= 0:
        return
    now = time.time() if now is None else now
    proof = powmod.check_proof(header, settings.pow_key, settings.pow_bits, now)
    with transaction() as session:
        spend_pow(session, proof, now)


def spend_pow(session, proof: powmod.Proof, now: float) -> None:
    """Record a challenge as used; a second use collides on the primary key -> 'reused'."""
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    session.execute(delete(SpentPowChallenge).where(SpentPowChallenge.expires_at < moment))
    session.add(SpentPowChallenge(
        digest=proof.digest,
        expires_at=dt.datetime.fromtimestamp(proof.expires_at, dt.timezone.utc),
    ))
    try:
        session.flush()
    except IntegrityError:
        raise powmod.PowRejected("reused") from None


# -- submitting a report ---------------------------------------------------------------------

class EvidenceUploader:
    """Streams one report's evidence files to the vault in chunks of at most `chunk_bytes`.

    A file's upload is begun lazily at its first byte, so an empty file part (what a browser
    sends for a file input left empty) creates nothing.
    """

    def __init__(self, vault, report_id: str, chunk_bytes: int):
        self.vault = vault
        self.report_id = report_id
        self.chunk_bytes = chunk_bytes
        self.count = 0
        self.bytes = 0
        self.stored: list[dict] = []
        self.touched_storage = False
        self._file: FileStart | None = None
        self._upload: dict | None = None
        self._buffer = bytearray()

    def start(self, part: FileStart) -> None:
        if part.name != "evidence":
            raise BadRequest("unexpected_part", "File parts must be named 'evidence'.")
        self._file, self._upload, self._buffer = part, None, bytearray()

    def write(self, data: bytes) -> None:
        if self._upload is None:
            self.touched_storage = True
            self._upload = self.vault.begin_evidence(
                self.report_id, self._file.filename, self._file.media_type
            )
        self.bytes += len(data)
        self._buffer += data
        while len(self._buffer) >= self.chunk_bytes:
            self._send(bytes(self._buffer[:self.chunk_bytes]))
            del self._buffer[:self.chunk_bytes]

    def end(self) -> None:
        if self._upload is not None:
            if self._buffer:
                self._send(bytes(self._buffer))
            done = self.vault.finish_evidence(self._upload["route"], self._upload["upload_id"])
            self.stored.append({"evidence_id": done.get("evidence_id"),
                                "size_bytes": done.get("size_bytes")})
            self.count += 1
        self._file, self._upload, self._buffer = None, None, bytearray()

    def feed(self, event) -> bool:
        """Hand one multipart event of a file to the upload; False for a form field, which
        each caller refuses with its own reason."""
        if isinstance(event, FileStart):
            self.start(event)
        elif isinstance(event, FileChunk):
            self.write(event.data)
        elif isinstance(event, FileEnd):
            self.end()
        else:
            return False
        return True

    def abort(self) -> None:
        """Best effort: free the storage instance's state for an upload in progress."""
        if self._upload is not None:
            try:
                self.vault.abort_evidence(self._upload["route"], self._upload["upload_id"])
            except Exception:
                log.warning("abort_evidence failed; discard_report follows")
            self._upload = None
        self._buffer = bytearray()

    def _send(self, chunk: bytes) -> None:
        self.vault.append_evidence(self._upload["route"], self._upload["upload_id"], chunk)


def submit_report(
    parts: Iterable,
    to_report: Callable[[dict[str, bytes]], Any],
    *,
    units,
    vault,
    transaction: Callable,
    settings,
    now: dt.datetime | None = None,
) -> dict:
    """Accept one report: validate, stream evidence and content to the vault, record, announce.

    `parts` are events from `intake.uploads.iter_multipart` (or a single `FieldPart` for a
    JSON body). Non-file fields must come before the first file: the report is validated before
    a single byte of evidence is sent anywhere. `to_report` turns the fields into the report
    dict (JSON part for the API, form fields for the HTML page).

    Emits `report_submitted` (via the outbox). Raises ReportInvalid (422), BadRequest (400),
    UploadTooLarge (413), MalformedUpload (400), Unavailable (503).
    """
    events = iter(parts)
    fields: dict[str, bytes] = {}
    first_file: FileStart | None = None
    for event in events:
        if isinstance(event, FieldPart):
            if event.name in fields:
                raise BadRequest("duplicate_field", "A form field was sent twice.")
            fields[event.name] = event.value
        elif isinstance(event, FileStart):
            first_file = event
            break
    report = validate_report(to_report(fields), units.codes())
    del fields

    report_id = str(uuid.uuid4())
    uploader = EvidenceUploader(vault, report_id, settings.evidence_chunk_bytes)
    try:
        if first_file is not None:
            uploader.start(first_file)
            for event in events:
                if not uploader.feed(event):
                    raise BadRequest("field_after_file",
                                     "Form fields must come before the evidence files.")
        content = json.dumps(report.content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        uploader.touched_storage = True
        vault.store_report_content(report_id, content)
        del content

        receipt = new_receipt()
        received_at = (now or utcnow()).replace(second=0, microsecond=0)
        with transaction() as session:
            record_report(session, report_id, report.unit, report.category, report.language,
                          hash_receipt(settings.receipt_key, receipt), received_at, uploader.count,
                          uploader.bytes)
    except Exception:
        uploader.abort()
        if uploader.touched_storage:
            try:
                vault.discard_report(report_id)
            except Exception:
                # storage down as well: its sweep of reports without a case removes the rest
                log.warning("discard_report failed for a report that was not accepted")
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


def report_from_json_part(fields: dict[str, bytes]) -> Any:
    """The API's multipart form: exactly one field, `report`, holding the JSON."""
    if set(fields) - {"report"}:
        raise BadRequest("unexpected_part", "The only form field allowed is 'report'.")
    if "report" not in fields:
        raise BadRequest("missing_report", "The 'report' part (JSON) must come before the files.")
    return parse_json(fields["report"])


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_json", "The report is not valid UTF-8 JSON.") from None


#: How the page's "how" answer is joined to the narrative (the report has one narrative field).
HOW_HEADING = {"id": "Bagaimana (modus):", "en": "How it was done:"}


def report_from_form(fields: dict[str, bytes]) -> dict:
    """The reporter web page's fields (the guided 4W1H form) -> the report dict of docs/interface.md §2.

    The page asks "what happened" and "how was it done" separately, because a frightened
    reporter answers a small question more easily than a blank page; the report keeps one
    narrative (`description`), so "how" is appended under a heading in the report's language.
    """
    try:
        f = {k: v.decode("utf-8").strip() for k, v in fields.items()}
    except UnicodeDecodeError:
        raise BadRequest("invalid_encoding", "The form is not UTF-8.") from None

    def opt(name):
        return f.get(name) or None

    language = opt("language") or "id"
    involved = {"yes": True, "no": False}.get(f.get("involved", ""))
    identity = {k: opt(f"identity_{k}") for k in ("name", "email", "phone")}
    description = opt("description")
    if description and opt("how"):
        description = f"{description}\n\n{HOW_HEADING.get(language, HOW_HEADING['id'])}\n{opt('how')}"
    parties = [{"name": opt(f"{prefix}_name"), "position": opt(f"{prefix}_position"),
                "unit": opt(f"{prefix}_unit"), "nip": opt(f"{prefix}_nip")}
               for prefix in ("party", "party2")]
    report: dict[str, Any] = {
        "unit": opt("unit"),
        "category": opt("category"),
        "title": opt("title"),
        "description": description,
        "location": opt("location"),
        "parties": [p for p in parties if any(p.values())],
        "reporter": {
            "relationship": opt("relationship"),
            "involved": involved,
            "identity": identity if any(identity.values()) else None,
            "contact_email": opt("contact_email"),
        },
        "language": language,
        # an unchecked checkbox is simply absent: that is a refusal, not an omission
        "good_faith": f.get("good_faith") in ("on", "yes", "true"),
    }
    if opt("occurred_from") or opt("occurred_to") or opt("ongoing"):
        report["occurred"] = {"from": opt("occurred_from"), "to": opt("occurred_to"),
                              "ongoing": True if opt("ongoing") else None}
    return report


def add_evidence(parts: Iterable, report_id: str, *, vault, transaction: Callable, settings) -> dict:
    """More evidence from a signed-in reporter: file parts `evidence` only, streamed as above.

    Emits nothing itself (storage publishes `evidence_stored` per file). Raises BadRequest (a
    non-file field or wrong part name), UploadTooLarge, MalformedUpload, Unavailable. A failure
    aborts the file in progress; files finished earlier in the same request stay stored
    (storage has no per-file delete yet) and are counted.
    """
    uploader = EvidenceUploader(vault, report_id, settings.evidence_chunk_bytes)
    try:
        for event in parts:
            if not uploader.feed(event):
                raise BadRequest("unexpected_part", "Only file parts named 'evidence' are accepted.")
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


# -- the reporter coming back ----------------------------------------------------------------

def token_hash(token: str) -> str:
    """Tokens are 256-bit random: an unkeyed SHA-256 is enough to make a stolen table useless."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


#: What a malformed receipt is hashed as, so it costs the same HMAC and indexed lookup as a
#: well-formed wrong one (it cannot match: the hash of a real receipt never equals it).
_NOT_A_RECEIPT = "A" * 20


def open_reporter_session(session, receipt: Any, settings, now: dt.datetime | None = None) -> dict:
    """Receipt -> short-lived bearer token. Raises Unauthorized, identically for every failure.

    Every wrong receipt, malformed or well-formed, takes the same path: one HMAC and one
    indexed lookup that finds nothing (a malformed one is replaced by a fixed stand-in first,
    and the stand-in's own row, should anyone ever draw that receipt, is never returned), so
    neither the answer nor the work done tells a guesser which kind of wrong it was.
    """
    now = now or utcnow()
    well_formed = isinstance(receipt, str) and normalise_receipt(receipt) is not None
    digest = hash_receipt(settings.receipt_key, receipt if well_formed else _NOT_A_RECEIPT)
    report = session.scalars(select(Report).where(Report.receipt_hash == digest)).first()
    if report is None or not well_formed:
        raise Unauthorized()
    session.execute(delete(ReporterSession).where(ReporterSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(seconds=settings.session_ttl_seconds)
    session.add(ReporterSession(token_hash=token_hash(token), report_id=report.report_id,
                                expires_at=expires_at))
    return {"token": token, "expires_at": iso(expires_at)}


def report_for_token(session, authorization: str | None, now: dt.datetime | None = None) -> Report:
    now = now or utcnow()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise Unauthorized()
    row = session.get(ReporterSession, token_hash(token.strip()))
    if row is None or as_utc(row.expires_at) <= now:
        raise Unauthorized()
    report = session.get(Report, row.report_id)
    if report is None:  # forgotten (shredded) since the sign-in
        raise Unauthorized()
    return report


def no_budget(limits):
    """Limits that admit nothing (the report has used its whole evidence budget)."""
    return dataclasses.replace(limits, max_files=0, max_report_bytes=0)


def evidence_budget(report: Report, limits):
    """The upload limits for more evidence on `report`: what the per-report file count and byte
    budget have left. Raises UploadTooLarge("files") when no file may be added at all."""
    files_left = limits.max_files - (report.evidence_count or 0)
    if files_left <= 0:
        raise UploadTooLarge("files")
    total = limits.max_report_bytes if limits.max_report_bytes is not None else limits.max_request_bytes
    return dataclasses.replace(limits, max_files=files_left,
                               max_report_bytes=max(0, total - (report.evidence_bytes or 0)))


def reporter_language(report: Report, asked: str | None) -> str:
    """The language of the reporter's view: what they asked for on this page, else the report's."""
    if asked in ("id", "en"):
        return asked
    return report.language if report.language in ("id", "en") else "id"


def reporter_view(report: Report, status: dict | None = None, texts: dict | None = None,
                  language: str | None = None) -> dict:
    """What the reporter may see: state with its reporter label, history, messages.

    `status` is verification's `get_report_status` answer (None until the case is opened: the
    report is then, for certain, "received"); `texts` maps message ids to their text, read
    from storage with the grant verification issued. Internal notes never reach this function:
    verification lists only messages to and from the reporter.
    """
    language = reporter_language(report, language)
    if status is None:
        state = {"code": RECEIVED, "label": reporter_state_label(RECEIVED, language)}
        history = [{"code": "received", "label": state["label"], "at": iso(report.received_at)}]
        messages = []
    else:
        state = {"code": status["state"]["code"], "label": status["state"]["label"]}
        history = [{"code": h["code"], "label": h["label"], "at": h.get("at")}
                   for h in status.get("history") or []]
        texts = texts or {}
        messages = [{"direction": m["direction"], "text": texts.get(m["message_id"]), "at": m.get("at")}
                    for m in status.get("messages") or []]
    return {
        "report_id": report.report_id,
        "received_at": iso(report.received_at),
        "language": language,
        "state": state,
        "history": history,
        "messages": messages,
        "evidence_count": report.evidence_count,
    }


def follow_up(report: Report, *, casework, vault, language: str | None = None) -> dict:
    """The reporter's follow-up view, assembled from verification (state, history, which
    messages) and storage (their texts, opened with verification's reporter grant).

    Emits nothing. Raises Unavailable when either service does not answer: a view without its
    messages would tell the reporter "nobody asked you anything", which may be false.
    """
    language = reporter_language(report, language)
    status = casework.report_status(report.report_id, language)
    texts = {}
    if status is not None:
        wanted = [m["message_id"] for m in status.get("messages") or []]
        if wanted and status.get("grant"):
            for item in vault.read_messages(report.report_id, wanted, status["grant"]):
                texts[item["message_id"]] = item["text"]
    return reporter_view(report, status, texts, language)


#: A message is what fits on a few screens; storage takes at most 64 KiB of UTF-8.
MAX_MESSAGE_CHARS = 10_000
MAX_MESSAGE_BYTES = 64 * 1024


def validate_message(text: Any) -> str:
    """The reporter's message text, normalised, or BadRequest/ReportInvalid with a reason."""
    from intake.schemas import ReportInvalid, _has_forbidden_chars
    import unicodedata

    if not isinstance(text, str):
        raise ReportInvalid({"text": "required" if text is None else "invalid_type"})
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise ReportInvalid({"text": "required"})
    if len(text) > MAX_MESSAGE_CHARS or len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ReportInvalid({"text": "too_long"})
    if _has_forbidden_chars(text, multiline=True):
        raise ReportInvalid({"text": "invalid_characters"})
    return text


def post_reporter_message(report_id: str, text: Any, *, vault, transaction: Callable) -> dict:
    """A signed-in reporter answers: the text goes sealed to storage, then one short transaction
    stages `reporter_message_posted` {report_id, message_id} (never the text) in the outbox.

    Order: storage first, event second, so verification is never told of a message storage
    does not hold. If the transaction fails after storage kept the text, the reporter gets a
    503 and the stored text has no event: it is never shown to anyone, and retention removes it
    with the report. Emits `reporter_message_posted`. Raises ReportInvalid (422), Unavailable.
    """
    text = validate_message(text)
    message_id = str(uuid.uuid4())
    vault.store_message(report_id, message_id, text)
    with transaction() as session:
        add_event(session, OutboxMessage, "reporter_message_posted",
                  {"report_id": report_id, "message_id": message_id,
                   "occurred_at": iso(utcnow().replace(second=0, microsecond=0))})  # like received_at
    return {"message_id": message_id}


def forget_report(session, report_id: str) -> bool:
    """storage shredded the report: drop intake's row and sessions, so its receipt answers 401
    like any wrong receipt. Idempotent. Returns whether there was anything to forget."""
    session.execute(delete(ReporterSession).where(ReporterSession.report_id == report_id))
    deleted = session.execute(delete(Report).where(Report.report_id == report_id))
    return bool(deleted.rowcount)


def close_reporter_session(session, authorization: str | None) -> None:
    """Sign out: the token stops working at once (idempotent, never an error)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token and len(token) <= 200:
        session.execute(delete(ReporterSession).where(ReporterSession.token_hash == token_hash(token.strip())))

"""The reporter coming back: signing in with the receipt, the follow-up view, answering the
inspector, and forgetting a report storage has shredded.

The reporter is known only by the receipt (hashed with a key, never stored in clear) and, once
signed in, by a short-lived random token (stored hashed). Every wrong receipt takes the same
path and gets the same answer. Nothing here knows HTTP; `intake.errors` maps the errors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import unicodedata
import uuid
from typing import Any, Callable

from sqlalchemy import delete, select

from wbs_contracts.vocabulary import RECEIVED, reporter_state_label
from wbs_plumbing.clock import as_utc, iso, utcnow
from wbs_plumbing.outbox import add_event

from intake.errors import Unauthorized
from intake.models import OutboxMessage, Report, ReporterSession
from intake.receipts import hash_receipt, normalise_receipt
from intake.schemas import ReportInvalid, has_forbidden_chars
from intake.uploads import UploadTooLarge


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
        # The case's register number (WBS/ITJEN/2026/00042) the reporter can quote; None until opened.
        "reference": (status or {}).get("reference"),
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
    if not isinstance(text, str):
        raise ReportInvalid({"text": "required" if text is None else "invalid_type"})
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise ReportInvalid({"text": "required"})
    if len(text) > MAX_MESSAGE_CHARS or len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ReportInvalid({"text": "too_long"})
    if has_forbidden_chars(text, multiline=True):
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

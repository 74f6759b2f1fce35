"""The inspector's use cases that span the database and storage's vault.

Both the JSON API and the HTML console call these, so the two surfaces cannot drift apart.
Each function takes its collaborators (``db`` with ``transaction()``, ``vault`` with storage's
verbs, ``passwords``, ``settings``) and owns the order of things: the database transaction is
always closed before storage is asked for anything (docs/architecture.md: never RPC inside a
transaction), and reach is checked in the database *before* any content is requested, so storage
only ever sees reads by the case's own inspectors or supervisors.

Every staff use case starts with :func:`signed_in` (a transaction and the authenticated staff
member); :func:`as_staff` and :func:`with_viewer` run one domain function inside it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from contextlib import contextmanager
from typing import Iterator

from wbs_contracts import report_content
from wbs_contracts.errors import remote_error_type

from . import assignment, audit, auth, cases, directory, export, routing, statistics, views
from .dependencies import Reader
from .errors import (AuthenticationFailed, DomainError, InvalidInput, NotFound, VaultError,
                     VaultUnavailable)

log = logging.getLogger(__name__)


@contextmanager
def signed_in(db, token: str | None):
    """Open a transaction and authenticate ``token`` in it: yields (session, staff). Every
    staff use case starts here, so a disabled or signed-out account is refused everywhere."""
    with db.transaction() as session:
        yield session, auth.authenticate(session, token)


def as_staff(db, token: str | None, use_case, *args, **kwargs):
    """``use_case(session, staff, *args, **kwargs)`` for the signed-in staff member."""
    with signed_in(db, token) as (session, staff):
        return use_case(session, staff, *args, **kwargs)


def with_viewer(db, token: str | None, use_case, *args, **kwargs) -> tuple[dict, object]:
    """(the signed-in staff member, ``use_case(session, staff, ...)``), for pages that show both."""
    with signed_in(db, token) as (session, staff):
        return views.staff_view(staff), use_case(session, staff, *args, **kwargs)


def case_shown(db, token: str | None, use_case, *args, now: dt.datetime | None = None, **kwargs) -> dict:
    """``use_case(session, staff, ...)`` changes a case and gives it back; the caller gets it as
    the API and the pages show it (``views.case_detail``), read in the same transaction."""
    with signed_in(db, token) as (session, staff):
        case = use_case(session, staff, *args, now=now, **kwargs)
        return views.case_detail(session, case, staff, now=now)


def _case_list(session, staff, now, **filters) -> list[dict]:
    return views.case_list(session, cases.list_cases(session, staff, **filters), staff, now)


ROUTING_READER = "verification"


def sign_in(db, passwords, settings, username: str, password: str, otp: str,
            now: dt.datetime | None = None) -> auth.SignedIn:
    """Check the three factors and open a session. Raises AuthenticationFailed after committing
    the failure (throttling counts it, the audit chain records it)."""
    with db.transaction() as session:
        result = auth.login(session, passwords, username, password, otp,
                            ttl=dt.timedelta(minutes=settings.session_minutes), now=now,
                            throttle=settings.throttle)
    if result is None:
        raise AuthenticationFailed()
    return result


def sign_out(db, token: str | None) -> None:
    with db.transaction() as session:
        auth.logout(session, token)


def whoami(db, token: str | None) -> dict:
    with signed_in(db, token) as (_, staff):
        return views.staff_view(staff)


def list_cases(db, token: str | None, now: dt.datetime | None = None, **filters) -> tuple[dict, list[dict]]:
    """(the signed-in staff member, the cases in their reach)."""
    return with_viewer(db, token, _case_list, now, **filters)


def supervision(db, token: str | None, now: dt.datetime | None = None) -> tuple[dict, list[dict], list[dict]]:
    """(the signed-in staff member, every case in their reach, those that failed routing)."""
    with signed_in(db, token) as (session, staff):
        return (views.staff_view(staff), _case_list(session, staff, now),
                _case_list(session, staff, now, unassigned=True))


def transition(db, token: str | None, case_id: str, to_state: str, reason: str | None,
               detail: str | None = None, *, calendar=None, now: dt.datetime | None = None) -> dict:
    """Move a case (see cases.transition_case); gives back the case's metadata and history."""
    return case_shown(db, token, cases.transition_case, case_id, to_state, reason, detail=detail,
                      now=now, calendar=calendar)


def set_flags(db, token: str | None, case_id: str, **flags) -> dict:
    return case_shown(db, token, cases.set_flags, case_id, **flags)


def set_legal_hold(db, token: str | None, case_id: str, legal_hold: bool, reason: str | None) -> dict:
    return case_shown(db, token, cases.set_legal_hold, case_id, legal_hold, reason)


def declare_conflict(db, token: str | None, **declared) -> dict:
    return as_staff(db, token, directory.declare_conflict, **declared)


def my_conflicts(db, token: str | None) -> tuple[dict, list[dict]]:
    return with_viewer(db, token, directory.list_declared_conflicts)


def _vault_call(fn, *args):
    try:
        return fn(*args)
    except DomainError:
        raise
    except Exception as exc:
        kind = remote_error_type(exc)
        if kind == "NotFound":
            raise NotFound("No such content") from None
        if kind == "Forbidden":
            raise VaultError("The content store refused the read") from None
        raise VaultUnavailable("The content store did not answer; please try again") from None


PARTIES_UNAVAILABLE = "parties_unavailable"
CONTENT_INVALID = "report_content_invalid"


def named_parties(vault, report_id: str, reader: Reader) -> tuple[list[routing.Party], str | None]:
    """(the people a report names, a note for the case or None), read with a grant for the
    parties alone (storage's ``read_report_parties``): routing sees no narrative. A document
    that does not match ``wbs.report-content/1`` still gives every party it lists, because
    routing with fewer exclusions is the worse mistake, and the case is noted for the
    supervisors."""
    view = _vault_call(vault.read_report_parties, report_id, reader)
    parties = routing.parties_from_report({"parties": view.get("parties") or []})
    if not view.get("valid"):
        log.warning("routing: %s", view.get("problem") or f"report content does not match {report_content.FORMAT}")
        return parties, CONTENT_INVALID
    return parties, None


def routing_parties(vault, report_id: str) -> tuple[list[routing.Party], str | None]:
    """The people a report names, read for routing before its case opens (grant subject
    ``verification``, the case id the report will get). A report storage does not know opens
    without parties, noted on the case; storage being away (down, or not started yet) raises
    VaultUnavailable and the event waits for it: routing without the parties could hand the case
    to a named person."""
    reader = Reader(ROUTING_READER, cases.case_id_for(report_id))
    try:
        return named_parties(vault, report_id, reader)
    except NotFound:
        return [], PARTIES_UNAVAILABLE


def read_case_file(db, vault, token: str | None, case_id: str) -> tuple[dict, dict]:
    """(the signed-in staff member, the case with narrative, parties, evidence and messages).

    The read is written into the audit chain (committed) before storage is asked, so no
    content leaves the vault unrecorded. Raises AuthenticationFailed, NotFound (missing or out
    of reach) or VaultError.
    """
    with signed_in(db, token) as (session, staff):
        case = views.case_detail(session, cases.get_case(session, staff, case_id), staff)
        viewer = views.staff_view(staff)
        if not case["flags"]["content_destroyed"]:
            cases.audit_read(session, staff, case["case_id"], audit.CONTENT_READ)
    if case["flags"]["content_destroyed"]:
        return viewer, views.attach_content(case, None, [])
    reader = Reader(staff_id(viewer), case["case_id"])
    content = _vault_call(vault.read_report_content, case["report_id"], reader)
    evidence = _vault_call(vault.list_evidence, case["report_id"], reader)
    message_ids = [m["message_id"] for m in case.get("messages", [])]
    texts = _vault_call(vault.read_messages, case["report_id"], message_ids, reader) if message_ids else {}
    return viewer, views.attach_content(case, content, evidence, texts)


def staff_id(viewer: dict) -> str:
    return viewer["staff_id"]


def open_evidence(db, vault, token: str | None, case_id: str, evidence_id: str) -> tuple[dict, Iterator[bytes]]:
    """(the evidence item's metadata, an iterator of its plaintext in <= 1 MiB chunks).

    The download is audited first. The first chunk is fetched before returning, so a refusal
    becomes a proper error status instead of a broken download; the rest is fetched one chunk
    at a time as the client reads, so the whole file is never in this process's memory.
    """
    with signed_in(db, token) as (session, staff):
        case = cases.get_case(session, staff, case_id)
        if case.content_destroyed:
            raise NotFound("No such evidence")
        cases.audit_read(session, staff, case.case_id, audit.EVIDENCE_DOWNLOAD, evidence_id=str(evidence_id)[:64])
        report_id, reader = case.report_id, Reader(staff.id, case.case_id)
    items = _vault_call(vault.list_evidence, report_id, reader) or []
    item = next((e for e in items if e.get("evidence_id") == evidence_id), None)
    if item is None:
        raise NotFound("No such evidence")
    first = _vault_call(vault.read_evidence_chunk, report_id, evidence_id, 0, reader)
    return item, verified_chunks(first, item.get("sha256"), evidence_id,
                                 lambda index: _vault_call(vault.read_evidence_chunk, report_id,
                                                           evidence_id, index, reader))


def _evidence_chunks(vault, report_id: str, item: dict, reader: Reader) -> Iterator[bytes]:
    """One evidence file's checked plaintext, fetched chunk by chunk only as it is read."""
    evidence_id = item["evidence_id"]

    def fetch(index):
        return _vault_call(vault.read_evidence_chunk, report_id, evidence_id, index, reader)

    yield from verified_chunks(fetch(0), item.get("sha256"), evidence_id, fetch)


def export_case(db, vault, token: str | None, case_id: str, *, render,
                now: dt.datetime | None = None) -> tuple[str, Iterator[bytes]]:
    """(the ZIP's file name, its bytes as an iterator): the case exported for referral (``export``).

    Anyone who reaches the case may export it (its assignee, the supervisors overseeing it); for
    everyone else it is NotFound, like any case out of reach. The export is audited and
    ``case_exported`` staged in one committed transaction *before* storage is asked, so no
    content leaves the vault unrecorded. The report's content and evidence list are read before
    returning (a refusal or an absent storage is a proper 404/503); each evidence file is read
    chunk by chunk, with its recorded SHA-256 checked, only as the client downloads it.
    ``render(template, **context)`` renders the HTML summary. Raises AuthenticationFailed,
    NotFound, Conflict (the report was shredded) or VaultError.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    with signed_in(db, token) as (session, staff):
        row = cases.get_case(session, staff, case_id)
        cases.record_export(session, staff, row, now=now)
        case = views.case_detail(session, row, staff, now=now)
        exporter = {k: views.staff_view(staff)[k] for k in ("staff_id", "username", "display_name")}
        report_id, reader = row.report_id, Reader(staff.id, row.case_id)
    content = _vault_call(vault.read_report_content, report_id, reader)
    items = _vault_call(vault.list_evidence, report_id, reader) or []
    case = views.attach_content(case, content, items)
    evidence = [(item, _evidence_chunks(vault, report_id, item, reader)) for item in items]
    return export.filename(case), export.archive(case, exporter, evidence, now, render)


class EvidenceIntegrityError(Exception):
    """A downloaded evidence file's plaintext does not match the SHA-256 recorded at upload."""


def verified_chunks(first: dict, sha256: str | None, evidence_id: str, fetch) -> Iterator[bytes]:
    """Yield an evidence file's chunks, checking the SHA-256 storage recorded at upload.

    storage authenticates every segment and the file's exact end, but chunk reads are separate
    calls, so only the reader sees the whole file: the last chunk is held back until the digest
    matches. On a mismatch the error is logged with ids only and :class:`EvidenceIntegrityError`
    ends the response: the web server drops the connection short of its Content-Length, so the
    browser reports a failed download, never a complete-looking wrong file.
    """
    digest = hashlib.sha256()
    chunk, index = first, 0
    while True:
        data = bytes(chunk["data"])
        digest.update(data)
        if chunk.get("last"):
            if not sha256 or not hmac.compare_digest(digest.hexdigest(), str(sha256)):
                log.error("integrity: evidence %s does not match its recorded SHA-256; download stopped",
                          evidence_id)
                raise EvidenceIntegrityError(evidence_id)
            yield data
            return
        yield data
        index += 1
        chunk = fetch(index)


MAX_MESSAGE_CHARS = 20_000


def post_message(db, vault, token: str | None, case_id: str, text: str | None, visibility: str | None,
                 awaiting_reporter: bool = False, *, calendar=None) -> dict:
    """Post a message to the reporter or an internal note.

    Order: check reach, hand the text to storage (sealed in transit, stored encrypted), then
    record the row, the event and the audit entry in one transaction. If storage fails nothing
    is recorded (VaultError); if the last step fails the stored text is an orphan nobody can list.
    """
    text = (text or "").strip()
    if not text:
        raise InvalidInput("'text' is required")
    if len(text) > MAX_MESSAGE_CHARS or len(text.encode("utf-8")) > 64 * 1024:
        raise InvalidInput("Message too long")
    with signed_in(db, token) as (session, staff):
        case = cases.case_for_message(session, staff, case_id, visibility or "")
        report_id, real_case_id = case.report_id, case.case_id
    message_id = str(uuid.uuid4())
    _vault_call(vault.store_message, report_id, message_id, text)
    return as_staff(db, token, cases.post_message, real_case_id, message_id, visibility,
                    awaiting_reporter=awaiting_reporter, calendar=calendar)


def _parties_of_case(db, vault, token, case_id) -> list[routing.Party]:
    """The people the case's report names (an audited content read), none once it was shredded."""
    with signed_in(db, token) as (session, staff):
        case = cases.get_case(session, staff, case_id)
        if case.content_destroyed:
            return []
        cases.audit_read(session, staff, case.case_id, audit.CONTENT_READ)
        report_id, reader = case.report_id, Reader(staff.id, case.case_id)
    return named_parties(vault, report_id, reader)[0]


def recuse(db, vault, token: str | None, case_id: str, reason: str | None) -> dict:
    """The assignee steps aside; the case is routed again against the report's parties."""
    parties = _parties_of_case(db, vault, token, case_id)
    return as_staff(db, token, assignment.recuse, case_id, reason, parties)


def reassign(db, vault, token: str | None, case_id: str, assignee: str | None) -> dict:
    """A supervisor reassigns; the same conflict checks as routing, against the report's parties."""
    if not assignee:
        raise InvalidInput("'assignee' is required")
    parties = _parties_of_case(db, vault, token, case_id)
    return case_shown(db, token, assignment.reassign, case_id, assignee, parties)


def add_parties(db, vault, token: str | None, case_id: str, parties: list) -> dict:
    """Record people found later: their names go to storage as an internal note (content stays
    in the vault), then everyone is checked against them (assignment.add_parties)."""
    cleaned = []
    for p in parties or []:
        if not isinstance(p, dict) or not (p.get("name") or p.get("nip")):
            raise InvalidInput("Each party needs a name or a NIP")
        cleaned.append({k: str(p[k])[:200] for k in ("name", "nip", "position", "unit") if p.get(k)})
    if not cleaned or len(cleaned) > 50:
        raise InvalidInput("Give between 1 and 50 parties")
    note = "Terlapor tambahan / additional parties:\n" + "\n".join(
        " · ".join(p[k] for k in ("name", "nip", "position", "unit") if p.get(k)) for p in cleaned)
    post_message(db, vault, token, case_id, note, "internal")
    return as_staff(db, token, assignment.add_parties, case_id, routing.parties_from_report({"parties": cleaned}))


def report_status(db, signer, report_id: str, language: str = "id") -> dict | None:
    """The reporter's view (intake asks): state, history, message ids, and a grant that lets the
    reporter's session read exactly those messages (never an internal note)."""
    with db.transaction() as session:
        status = cases.report_status(session, report_id, language)
    if status is None:
        return None
    ids = [m["message_id"] for m in status["messages"]]
    status["grant"] = signer.issue(sub="reporter", case_id=status.pop("case_id"), report_id=str(report_id),
                                   scope=["messages"], message_ids=ids) if ids else None
    return status


def stats(db, token: str | None, now: dt.datetime | None = None) -> tuple[dict, dict]:
    return with_viewer(db, token, statistics.compute, now=now)

"""The inspector's use cases that span the database and storage's vault.

Both the JSON API and the HTML console call these, so the two surfaces cannot drift apart.
Each function takes its collaborators (``db`` with ``transaction()``, ``vault`` with storage's
verbs, ``passwords``, ``settings``) and owns the order of things: the database transaction is
always closed before storage is asked for anything (DESIGN.md: never RPC inside a
transaction), and reach is checked in the database *before* any content is requested, so storage
only ever sees reads by the case's own inspectors or supervisors.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

from wbs_contracts.errors import remote_error_type

from . import auth, domain
from .errors import DomainError, NotFound


class VaultError(DomainError):
    """storage could not give the content back right now."""

    status = 503
    code = "vault_unavailable"


def sign_in(db, passwords, settings, username: str, password: str, otp: str) -> auth.SignedIn:
    """Check the three factors and open a session. Raises AuthenticationFailed."""
    with db.transaction() as session:
        return auth.login(session, passwords, username, password, otp,
                          ttl=dt.timedelta(minutes=settings.session_minutes))


def sign_out(db, token: str | None) -> None:
    with db.transaction() as session:
        auth.logout(session, token)


def whoami(db, token: str | None) -> dict:
    with db.transaction() as session:
        return domain.staff_view(auth.authenticate(session, token))


def list_cases(db, token: str | None, **filters) -> tuple[dict, list[dict]]:
    """(the signed-in staff member, the cases in their reach)."""
    with db.transaction() as session:
        staff = auth.authenticate(session, token)
        return domain.staff_view(staff), domain.list_cases(session, staff, **filters)


def transition(db, token: str | None, case_id: str, to_state: str, reason: str | None) -> dict:
    """Move a case (see domain.transition_case); gives back the case's metadata and history."""
    with db.transaction() as session:
        staff = auth.authenticate(session, token)
        return domain.transition_case(session, staff, case_id, to_state, reason)


def _vault_call(fn, *args):
    try:
        return fn(*args)
    except DomainError:
        raise
    except Exception as exc:
        if remote_error_type(exc) == "NotFound":
            raise NotFound("No such content") from None
        raise VaultError("The content store did not answer; please try again") from None


def read_case_file(db, vault, token: str | None, case_id: str) -> tuple[dict, dict]:
    """(the signed-in staff member, the case with narrative, parties and evidence list).

    Raises AuthenticationFailed, NotFound (missing or out of reach) or VaultError.
    Each call is one content read in storage's audit trail.
    """
    with db.transaction() as session:
        staff = auth.authenticate(session, token)
        case = domain.get_case(session, staff, case_id)
        viewer = domain.staff_view(staff)
        reader = domain.reader(staff, case["case_id"])
    content = _vault_call(vault.read_report_content, case["report_id"], reader)
    evidence = _vault_call(vault.list_evidence, case["report_id"], reader)
    return viewer, domain.attach_content(case, content, evidence)


def open_evidence(db, vault, token: str | None, case_id: str, evidence_id: str) -> tuple[dict, Iterator[bytes]]:
    """(the evidence item's metadata, an iterator of its plaintext in <= 1 MiB chunks).

    The first chunk is fetched before returning, so a refusal becomes a proper error status
    instead of a broken download; the rest is fetched one chunk at a time as the client reads,
    so the whole file is never in this process's memory.
    """
    with db.transaction() as session:
        staff = auth.authenticate(session, token)
        case = domain.get_case(session, staff, case_id)
        reader = domain.reader(staff, case["case_id"])
    items = _vault_call(vault.list_evidence, case["report_id"], reader) or []
    item = next((e for e in items if e.get("evidence_id") == evidence_id), None)
    if item is None:
        raise NotFound("No such evidence")
    first = _vault_call(vault.read_evidence_chunk, evidence_id, 0, reader)

    def chunks() -> Iterator[bytes]:
        chunk, index = first, 0
        while True:
            yield bytes(chunk["data"])
            if chunk.get("last"):
                return
            index += 1
            chunk = _vault_call(vault.read_evidence_chunk, evidence_id, index, reader)

    return item, chunks()

"""The tamper-evident audit trail: every staff action, hash-chained (docs/domain.md "every view of
content is audited"; issue: sign-in, content read, evidence download, transition, assignment,
message, legal hold, export for referral).

Why a hash chain: the log lives in the same database an attacker with write access could edit.
Each entry stores the SHA-256 of the previous entry, and its own hash covers that link plus
every field, so changing a row, deleting one or slipping one in breaks the chain at that row.
``audit_head`` keeps the tip (number and hash): appending locks it, so entries are numbered
without gaps even with several workers, and :func:`verify` compares the last entry against it,
so cutting entries off the end is noticed as well. (Someone who can rewrite every row *and*
the head can forge a new chain; exporting the head hash elsewhere, e.g. in ops logs, closes
that. The head is in ``verify``'s answer for that purpose.)

What goes in: who (staff id, or ``system``), what (an action code), which case, and small
metadata (target state, coded reason, evidence id, message id and direction). Never report
content, message text, reasons typed by staff, names or anything about the reporter.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry, AuditHead, as_utc, utcnow

GENESIS = "0" * 64

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
CONTENT_READ = "content_read"
CONTENT_DESTROYED = "content_destroyed"
EVIDENCE_DOWNLOAD = "evidence_download"
TRANSITION = "transition"
ASSIGNMENT = "assignment"
MESSAGE = "message"
LEGAL_HOLD = "legal_hold"
FLAG = "flag"
RECUSAL = "recusal"
PARTIES_ADDED = "parties_added"
CASE_EXPORTED = "case_exported"
ACCOUNT = "account"

_ALLOWED_DETAIL_KEYS = frozenset({
    "to_state", "from_state", "detail", "evidence_id", "message_id", "direction", "assignee",
    "legal_hold", "on_hold", "conflict_flagged", "reason_code", "target", "change", "excluded",
})


def _stamp(at: dt.datetime) -> str:
    return as_utc(at).isoformat(timespec="microseconds").replace("+00:00", "Z")


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str,
               case_id: str | None, detail: str) -> str:
    body = json.dumps([seq, _stamp(at), actor, action, case_id, detail], separators=(",", ":"),
                      ensure_ascii=True)
    return hashlib.sha256((prev_hash + body).encode("ascii")).hexdigest()


def append(session: Session, actor: str, action: str, case_id: str | None = None,
           now: dt.datetime | None = None, **detail) -> AuditEntry:
    """Add one entry at the end of the chain, in the caller's transaction.

    Only whitelisted metadata keys are accepted (a programming error otherwise), so content can
    never be slipped in by accident.
    """
    unknown = set(detail) - _ALLOWED_DETAIL_KEYS
    if unknown:
        raise ValueError(f"audit detail keys not allowed: {sorted(unknown)}")
    now = now or utcnow()
    head = session.scalar(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    if head is None:
        head = AuditHead(id=1, seq=0, entry_hash=GENESIS)
        session.add(head)
        session.flush()
    detail_text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    seq = head.seq + 1
    digest = entry_hash(head.entry_hash, seq, now, actor, action, case_id, detail_text)
    entry = AuditEntry(seq=seq, at=now, actor=str(actor), action=action, case_id=case_id,
                       detail=detail_text, prev_hash=head.entry_hash, entry_hash=digest)
    session.add(entry)
    head.seq, head.entry_hash = seq, digest
    session.flush()
    return entry


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_hash: str = GENESIS

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq,
                "problem": self.problem, "head_hash": self.head_hash}


def verify(session: Session, batch: int = 1000) -> Verdict:
    """Walk the chain from the start; name the first entry that does not fit.

    * altered row: its recomputed hash differs from the stored one (or the next row's link);
    * removed row: a gap in the numbers, or the next row's ``prev_hash`` no longer matches;
    * inserted row: a number out of sequence, or a link that does not match;
    * removed tail: the last entry is not the head.
    """
    expected_seq, prev, count, last_seq = 1, GENESIS, 0, 0
    offset = None
    while True:
        query = select(AuditEntry).order_by(AuditEntry.seq).limit(batch)
        if offset is not None:
            query = query.where(AuditEntry.seq > offset)
        rows = list(session.scalars(query))
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return Verdict(False, count, expected_seq if row.seq > expected_seq else row.seq,
                               f"entry {expected_seq} is missing" if row.seq > expected_seq
                               else f"entry {row.seq} is out of sequence")
            if row.prev_hash != prev:
                return Verdict(False, count, row.seq, f"entry {row.seq} does not link to entry {row.seq - 1}")
            recomputed = entry_hash(row.prev_hash, row.seq, row.at, row.actor, row.action, row.case_id, row.detail)
            if recomputed != row.entry_hash:
                return Verdict(False, count, row.seq, f"entry {row.seq} was altered")
            prev, expected_seq, last_seq = row.entry_hash, row.seq + 1, row.seq
            count += 1
        offset = rows[-1].seq
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.entry_hash) if head is not None else (0, GENESIS)
    if head_seq != last_seq or head_hash != prev:
        first = last_seq + 1 if head_seq > last_seq else head_seq or 1
        return Verdict(False, count, first, f"the chain ends at entry {last_seq} but its head is entry {head_seq}")
    return Verdict(True, count, head_hash=prev)


def recent(session: Session, case_id: str, limit: int = 50) -> list[dict]:
    """The latest entries about one case, for its page (metadata only, as stored)."""
    rows = session.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id)
                           .order_by(AuditEntry.seq.desc()).limit(limit))
    return [{"seq": r.seq, "at": _stamp(r.at), "actor": r.actor, "action": r.action,
             "detail": json.loads(r.detail)} for r in rows]

"""Page and API shaping: a case as the console and the inspector API show it, with labels.

Plain dictionaries built from rows, in both languages (``labels``: id and en), so templates and
JSON answers share one shape. Nothing here decides who may see what (``reach``) or changes
anything; what an inspector sees of a report's content is chosen in :func:`attach_content`.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_contracts import vocabulary
from wbs_plumbing.clock import iso  # noqa: F401 -- views.iso is used across the service

from . import deadlines, lifecycle, routing, zones
from .models import REPORTER_ACTOR, SYSTEM_ACTOR, Case, CaseClock, CaseExclusion, CaseHistory, CaseMessage, Staff, utcnow


def category_labels(code: str) -> dict:
    labs = vocabulary.CATEGORIES.get(code, {"id": code, "en": code})
    return {"code": code, "label": labs["id"], "labels": dict(labs)}


def staff_view(staff: Staff) -> dict:
    return {
        "staff_id": staff.id,
        "username": staff.username,
        "display_name": staff.display_name,
        "role": staff.role,
        "unit": staff.home_unit,
        "language": staff.language,
    }


def case_summary(case: Case, viewer: Staff) -> dict:
    assignee = case.assignee
    zone = case.unit_row.timezone if case.unit_row is not None else zones.DEFAULT
    return {
        "case_id": case.case_id,
        "report_id": case.report_id,
        "reference": case.reference,
        "unit": case.unit,
        "unit_name": case.unit_row.name if case.unit_row is not None else case.unit,
        "zone": {"name": zone, "label": zones.label(zone)},
        "created_local": zones.local(case.created_at, zone),
        "category": category_labels(case.category),
        "state": lifecycle.labels(case.state),
        "end_detail": lifecycle.detail_labels(case.state, case.end_detail),
        "assignee": None if assignee is None else {
            "staff_id": assignee.id,
            "username": assignee.username,
            "display_name": assignee.display_name,
        },
        "routing_note": case.routing_note,
        "evidence_count": case.evidence_count,
        "flags": {"on_hold": bool(case.on_hold), "legal_hold": bool(case.legal_hold),
                  "conflict_flagged": bool(case.conflict_flagged), "escalated": bool(case.escalated),
                  "content_destroyed": bool(case.content_destroyed)},
        "created_at": iso(case.created_at),
        "updated_at": iso(case.updated_at),
        "allowed_transitions": [
            dict(lifecycle.labels(s), details=[lifecycle.detail_labels(s, d) for d in lifecycle.detail_choices(case.state, s)])
            for s in lifecycle.allowed_moves(case.state, viewer.role)
        ],
    }


def case_list(session: Session, cases: list[Case], viewer: Staff, now: dt.datetime | None = None) -> list[dict]:
    """Case summaries with their deadlines (the case list pages and ``GET /api/v1/cases``)."""
    now = now or utcnow()
    clocks: dict[str, list] = {}
    if cases:
        for row in session.scalars(select(CaseClock).where(CaseClock.case_id.in_([c.case_id for c in cases]))):
            clocks.setdefault(row.case_id, []).append(row)
    return [dict(case_summary(c, viewer),
                 deadlines=[deadlines.clock_dict(r, now)
                            for r in sorted(clocks.get(c.case_id, []), key=lambda r: deadlines.CLOCKS.index(r.clock))])
            for c in cases]


def case_detail(session: Session, case: Case, viewer: Staff, *, now: dt.datetime | None = None) -> dict:
    data = case_summary(case, viewer)
    history = list(session.scalars(
        select(CaseHistory).where(CaseHistory.case_id == case.case_id).order_by(CaseHistory.at, CaseHistory.id)
    ))
    exclusions = list(session.scalars(select(CaseExclusion).where(CaseExclusion.case_id == case.case_id)
                                      .order_by(CaseExclusion.at, CaseExclusion.id)))
    messages = list(session.scalars(select(CaseMessage).where(CaseMessage.case_id == case.case_id)
                                    .order_by(CaseMessage.at, CaseMessage.message_id)))
    actor_ids = {h.actor for h in history} | {e.candidate_id for e in exclusions} | {m.author_id for m in messages}
    actor_ids = {a for a in actor_ids if a and a not in (SYSTEM_ACTOR, REPORTER_ACTOR)}
    names = {}
    if actor_ids:
        names = {s.id: s.username for s in session.scalars(select(Staff).where(Staff.id.in_(actor_ids)))}
    data["history"] = [
        {
            "from_state": h.from_state,
            "to_state": h.to_state,
            "to_label": vocabulary.staff_state_label(h.to_state) if h.to_state in lifecycle.STATE_LABELS else h.to_state,
            "labels": lifecycle.labels(h.to_state)["labels"] if h.to_state in lifecycle.STATE_LABELS else None,
            "reason": h.reason,
            "detail": lifecycle.detail_labels(h.to_state, h.detail),
            "actor": names.get(h.actor, h.actor),
            "at": iso(h.at),
        }
        for h in history
    ]
    data["routing_exclusions"] = [
        {"candidate_id": e.candidate_id, "username": names.get(e.candidate_id), "reason": e.reason,
         "labels": dict(zip(("id", "en"), routing.REASON_LABELS.get(e.reason, (e.reason, e.reason)))),
         "at": iso(e.at)}
        for e in exclusions
    ] if viewer.role == "supervisor" else [
        # An inspector sees only their own recusal record, not who else was screened out.
        {"candidate_id": e.candidate_id, "username": names.get(e.candidate_id), "reason": e.reason,
         "labels": dict(zip(("id", "en"), routing.REASON_LABELS.get(e.reason, (e.reason, e.reason)))),
         "at": iso(e.at)}
        for e in exclusions if e.candidate_id == viewer.id
    ]
    data["messages"] = [
        {"message_id": m.message_id, "direction": m.direction, "author": names.get(m.author_id),
         "at": iso(m.at), "text": None}
        for m in messages
    ]
    data["deadlines"] = deadlines.clocks_view(session, case.case_id, now or utcnow())
    return data


def attach_content(case: dict, content: bytes | None, evidence: list[dict] | None,
                   texts: dict[str, str] | None = None) -> dict:
    """Add what storage gave back (sealed report JSON, evidence list, message texts) to a case.

    Only narrative and parties (and the 4W1H fields around them) are shown; the reporter's
    identity block is dropped here even if storage returned it, because inspectors get it only
    through a separate, explicitly authorised path.
    """
    report = parse_report(content)
    reporter = report.get("reporter") if isinstance(report.get("reporter"), dict) else {}
    out = dict(case)
    out.update({
        "title": report.get("title"),
        "narrative": report.get("description"),
        "parties": report.get("parties") or [],
        "occurred": report.get("occurred"),
        "location": report.get("location"),
        "reporter": {
            "relationship": reporter.get("relationship"),
            "involved": reporter.get("involved"),
        },
        "evidence": [
            {k: e.get(k) for k in ("evidence_id", "filename", "media_type", "size_bytes", "sha256")}
            for e in (evidence or [])
        ],
    })
    texts = texts or {}
    out["messages"] = [dict(m, text=texts.get(m["message_id"])) for m in case.get("messages", [])]
    return out


def parse_report(content) -> dict:
    if not content:
        return {}
    try:
        report = json.loads(content.decode("utf-8")) if isinstance(content, (bytes, bytearray)) else dict(content)
    except (ValueError, UnicodeDecodeError, TypeError):
        return {}
    return report if isinstance(report, dict) else {}

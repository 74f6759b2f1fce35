"""Case work over an in-memory database: events carry report_id, flags and legal hold, messages,
reporter answers, recusal and reassignment, deadlines on working days, the audit chain,
statistics. Time is passed in explicitly (a controllable clock), never slept."""
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import text

from wbs_contracts.events import validate_event

from verification import assignment, audit, cases, deadlines, directory, reach, routing, statistics, views
from verification.errors import Forbidden, InvalidInput, NotEligible, NotFound
from verification.models import AuditEntry, CaseClock, OutboxMessage, Staff

NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)


def report_event(unit="dit-smp", category="procurement", report_id=None):
    return {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
            "report_id": report_id or str(uuid.uuid4()), "unit": unit, "category": category, "evidence_count": 0}


def outbox(session):
    session.flush()
    return [(m.event_type, json.loads(m.body)) for m in session.query(OutboxMessage).order_by(OutboxMessage.id)]


def valid(event_type, body):
    validate_event(event_type, dict(body, schema_version=1, event_id=str(uuid.uuid4()),
                                    occurred_at="2026-11-23T10:00:00Z"))


def staff(session, result):
    return session.get(Staff, result["staff_id"])


def test_status_changes_carry_report_id_and_coded_reasons(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    cases.transition_case(session, inspector, case.case_id, "verification")
    out = views.case_detail(session, cases.transition_case(session, inspector, case.case_id, "referred", "wewenang KPK",
                                                           detail="kpk"), inspector)
    assert out["state"]["code"] == "referred" and out["end_detail"]["labels"]["en"] == "Corruption Eradication Commission (KPK)"
    assert out["history"][-1]["detail"]["code"] == "kpk"
    changes = [b for t, b in outbox(session) if t == "case_status_changed"]
    assert [c["to_state"] for c in changes] == ["verification", "referred"]
    assert all(c["report_id"] == case.report_id for c in changes)
    for body in changes:
        valid("case_status_changed", body)


def test_flags_and_legal_hold_supervisor_only_audited_and_announced(session, demo):
    inspector, supervisor = staff(session, demo["inspector"]), staff(session, demo["supervisor"])
    case = cases.open_case(session, report_event())
    assert cases.set_flags(session, inspector, case.case_id, on_hold=True).on_hold is True
    with pytest.raises(Forbidden):
        cases.set_flags(session, inspector, case.case_id, conflict_flagged=True)
    with pytest.raises(Forbidden):
        cases.set_legal_hold(session, inspector, case.case_id, True, "sengketa")
    with pytest.raises(InvalidInput):
        cases.set_legal_hold(session, supervisor, case.case_id, True, " ")
    out = cases.set_legal_hold(session, supervisor, case.case_id, True, "perkara di pengadilan")
    assert views.case_detail(session, out, supervisor)["flags"]["legal_hold"] is True
    cases.set_legal_hold(session, supervisor, case.case_id, True, "again")  # no change, no event
    cases.set_legal_hold(session, supervisor, case.case_id, False, "perkara selesai")
    holds = [b for t, b in outbox(session) if t == "legal_hold_changed"]
    assert [h["legal_hold"] for h in holds] == [True, False]
    assert holds[0] == {"case_id": case.case_id, "report_id": case.report_id, "legal_hold": True,
                        **{k: holds[0][k] for k in ("schema_version", "event_id", "occurred_at")}}
    valid("legal_hold_changed", {k: holds[0][k] for k in ("case_id", "report_id", "legal_hold")})
    actions = [e.action for e in session.query(AuditEntry).order_by(AuditEntry.seq)]
    assert actions.count("legal_hold") == 2 and "flag" in actions


def test_messages_ask_the_reporter_pause_clocks_and_the_answer_resumes(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event(), now=NOW)
    cases.transition_case(session, inspector, case.case_id, "verification", now=NOW)
    message_id = str(uuid.uuid4())
    posted = cases.post_message(session, inspector, case.case_id, message_id, "reporter",
                                 awaiting_reporter=True, now=NOW + dt.timedelta(hours=1))
    assert posted["state"] == "awaiting_reporter" and posted["direction"] == "to_reporter"
    note = cases.post_message(session, inspector, case.case_id, str(uuid.uuid4()), "internal", now=NOW)
    assert note["direction"] == "internal"
    with pytest.raises(InvalidInput):
        cases.post_message(session, inspector, case.case_id, str(uuid.uuid4()), "public")
    clock = session.get(CaseClock, (case.case_id, "verification"))
    assert clock.paused_since is not None
    due_before = deadlines.as_utc(clock.due_at)

    # the reporter answers two days later: the case is back in verification, the clock moved on
    answer = {"event_id": str(uuid.uuid4()), "report_id": case.report_id, "message_id": str(uuid.uuid4())}
    later = NOW + dt.timedelta(days=2, hours=1)
    assert cases.record_reporter_message(session, answer, now=later)["case_id"] == case.case_id
    assert cases.record_reporter_message(session, answer, now=later) is None  # redelivery
    session.refresh(clock)
    assert clock.paused_since is None and deadlines.as_utc(clock.due_at) == due_before + dt.timedelta(days=2)
    assert cases.get_case(session, inspector, case.case_id).state == "verification"

    posted_events = [b for t, b in outbox(session) if t == "case_message_posted"]
    assert [(b["direction"], b["message_id"]) for b in posted_events] == [
        ("to_reporter", message_id), ("internal", note["message_id"]), ("from_reporter", answer["message_id"])]
    for body in posted_events:
        valid("case_message_posted", {k: body[k] for k in ("case_id", "direction", "message_id")})

    status = cases.report_status(session, case.report_id, "en")
    assert [m["direction"] for m in status["messages"]] == ["to_reporter", "from_reporter"]  # never internal
    assert status["state"]["label"] == "Under verification"


def test_reporter_message_for_an_unknown_report_is_retried_not_dropped(session, demo):
    from verification.errors import CaseNotYetOpen
    with pytest.raises(CaseNotYetOpen):
        cases.record_reporter_message(session, {"report_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4())})
    with pytest.raises(InvalidInput):
        cases.record_reporter_message(session, {"report_id": str(uuid.uuid4()), "message_id": "x"})


def test_routing_excludes_named_parties_and_records_why(session, demo, passwords):
    directory.add_staff(session, passwords, "budi", "budi@example.org", "itjen", "inspector",
                     display_name="Budi Santoso", nip="198001012005011001")
    parties = routing.parties_from_report({"parties": [{"name": "Inspektur Demo"}, {"name": "X", "nip": "198001012005011001"}]})
    case = cases.open_case(session, report_event(), parties=parties)
    assert case.assignee_id is None and case.routing_note == "routing_failed: no_eligible_inspector"
    assert case.conflict_flagged
    supervisor = staff(session, demo["supervisor"])
    detail = views.case_detail(session, cases.get_case(session, supervisor, case.case_id), supervisor)
    assert {e["username"]: e["reason"] for e in detail["routing_exclusions"]} == {
        "inspektur": "party_named", "budi": "party_nip"}
    # the supervisor sees it in the unassigned list, and cannot hand it to a named person
    assert [c.case_id for c in cases.list_cases(session, supervisor, unassigned=True)] == [case.case_id]
    with pytest.raises(NotEligible):
        assignment.reassign(session, supervisor, case.case_id, "budi", parties)
    directory.add_staff(session, passwords, "citra", "citra@example.org", "itjen", "inspector")
    out = assignment.reassign(session, supervisor, case.case_id, "citra", parties)
    assert views.case_detail(session, out, supervisor)["assignee"]["username"] == "citra"
    with pytest.raises(NotEligible):  # a supervisor is not in the inspectors' pool
        assignment.reassign(session, supervisor, case.case_id, "supervisor", parties)


def test_declared_conflict_and_recusal_reroute_with_the_same_checks(session, demo, passwords):
    inspector = staff(session, demo["inspector"])
    directory.add_staff(session, passwords, "citra", "citra@example.org", "itjen", "inspector")
    citra = session.query(Staff).filter_by(username="citra").one()
    directory.declare_conflict(session, citra, unit="dit-smp", note="suami bekerja di sana")
    case = cases.open_case(session, report_event(unit="dit-smp"))
    assert case.assignee_id == inspector.id  # citra excluded by her declaration
    out = assignment.recuse(session, inspector, case.case_id, "kerabat terlapor", [])
    assert out["assignee_id"] is None and out["routing_note"] == "routing_failed: no_eligible_inspector"
    with pytest.raises(NotFound):  # recused: out of reach now
        cases.get_case(session, inspector, case.case_id)
    supervisor = staff(session, demo["supervisor"])
    reasons = {(e["username"], e["reason"]) for e in
               views.case_detail(session, cases.get_case(session, supervisor, case.case_id), supervisor)["routing_exclusions"]}
    assert reasons == {("citra", "declared_conflict"), ("inspektur", "recused")}


def test_escalation_pool_takes_reports_about_the_inspectorate(session, demo, passwords):
    directory.add_unit(session, "irjen-inv", "Inspektorat Investigasi", None, True)
    directory.add_staff(session, passwords, "eska", "eska@example.org", "irjen-inv", "supervisor", escalation_pool=True)
    case = cases.open_case(session, report_event(unit="itjen"))
    eska = session.query(Staff).filter_by(username="eska").one()
    assert case.escalated and case.assignee_id == eska.id
    assert reach.visible_case_ids(session, staff(session, demo["supervisor"])) == set()
    assert reach.visible_case_ids(session, staff(session, demo["inspector"])) == set()
    assert reach.visible_case_ids(session, eska) == {case.case_id}


def test_working_days_skip_weekends_national_holidays_and_cuti_bersama():
    cal = deadlines.Calendar(frozenset({dt.date(2026, 12, 24)}))
    assert not cal.is_working_day(dt.date(2026, 12, 25))   # Christmas (holidays, ID)
    assert not cal.is_working_day(dt.date(2026, 12, 24))   # cuti bersama (configured)
    assert not cal.is_working_day(dt.date(2026, 12, 26))   # Saturday
    assert cal.is_working_day(dt.date(2026, 12, 23))
    # Monday 21 Dec 10:00 WIB + 5 working days: 22, 23, (24 cuti, 25 holiday, 26-27 weekend) 28, 29, 30
    start = dt.datetime(2026, 12, 21, 3, 0, tzinfo=dt.timezone.utc)
    assert cal.add_working_days(start, 5) == dt.datetime(2026, 12, 30, 3, 0, tzinfo=dt.timezone.utc)
    # a Friday evening in Jakarta is Friday, though it is still Friday noon UTC
    friday_evening = dt.datetime(2026, 11, 27, 13, 0, tzinfo=dt.timezone.utc)  # 20:00 WIB
    assert cal.add_working_days(friday_evening, 1).date() == dt.date(2026, 11, 30)
    assert deadlines.add_months(dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc), 3).date() == dt.date(2027, 2, 28)


def test_breaches_are_announced_once_per_clock_and_paused_clocks_wait(session, demo):
    inspector = staff(session, demo["inspector"])
    cal = deadlines.Calendar()
    case = cases.open_case(session, report_event(), now=NOW, calendar=cal)
    assert deadlines.check_breaches(session, NOW + dt.timedelta(days=6)) == []
    first = deadlines.check_breaches(session, NOW + dt.timedelta(days=7, minutes=1))
    assert [(b["clock"], b["case_id"]) for b in first] == [("acknowledge", case.case_id)]
    assert deadlines.check_breaches(session, NOW + dt.timedelta(days=8)) == []          # once
    # acknowledged late; verification runs 5 working days, paused while waiting for the reporter
    cases.transition_case(session, inspector, case.case_id, "verification", now=NOW + dt.timedelta(days=8), calendar=cal)
    cases.transition_case(session, inspector, case.case_id, "awaiting_reporter", now=NOW + dt.timedelta(days=8, hours=1), calendar=cal)
    assert deadlines.check_breaches(session, NOW + dt.timedelta(days=40)) == []          # paused: nothing
    cases.transition_case(session, inspector, case.case_id, "verification", now=NOW + dt.timedelta(days=40), calendar=cal)
    late = deadlines.check_breaches(session, NOW + dt.timedelta(days=60))
    assert sorted(b["clock"] for b in late) == ["verification"]
    published = [b for t, b in outbox(session) if t == "sla_breached"]
    assert len(published) == 2
    for body in published:
        valid("sla_breached", {k: body[k] for k in ("case_id", "clock", "due_at")})
    shown = views.case_detail(session, cases.get_case(session, inspector, case.case_id), inspector,
                              now=NOW + dt.timedelta(days=60))
    view = {d["clock"]: d["status"] for d in shown["deadlines"]}
    assert view == {"acknowledge": "late", "verification": "breached", "feedback": "running"}


def test_unit_clocks_are_configurable(session, demo):
    directory.set_unit_clocks(session, "dit-smp", ack_days=3, ack_working_days=True)
    case = cases.open_case(session, report_event(), now=dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.timezone.utc))  # Friday
    due = deadlines.as_utc(session.get(CaseClock, (case.case_id, "acknowledge")).due_at)
    assert due == dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.timezone.utc)  # Mon, Tue, Wed


def test_audit_chain_detects_altered_removed_and_inserted_rows(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    cases.audit_read(session, inspector, case.case_id, audit.CONTENT_READ)
    cases.transition_case(session, inspector, case.case_id, "verification")
    cases.audit_read(session, inspector, case.case_id, audit.EVIDENCE_DOWNLOAD, evidence_id="ev-1")
    session.flush()
    verdict = audit.verify(session)
    assert verdict.ok and verdict.entries == 3  # routing's own assignment is not a staff action
    assert "Kronologi" not in json.dumps([e.detail for e in session.query(AuditEntry)])
    with pytest.raises(ValueError):
        audit.append(session, inspector.id, audit.MESSAGE, case.case_id, text="never content")

    session.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    session.expire_all()
    assert audit.verify(session).first_bad_seq == 2 and "altered" in audit.verify(session).problem
    session.rollback()


def test_audit_chain_detects_a_removed_and_an_inserted_row(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    for _ in range(3):
        cases.audit_read(session, inspector, case.case_id, audit.CONTENT_READ)
    session.commit()
    session.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert audit.verify(session).first_bad_seq == 2
    session.rollback()
    row = session.get(AuditEntry, 3)
    session.execute(text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3"))
    session.execute(text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100"))
    session.execute(text("INSERT INTO audit_log (seq, at, actor, action, case_id, detail, prev_hash, entry_hash) "
                         "VALUES (3, :at, 'x', 'content_read', NULL, '{}', :p, :h)"),
                    {"at": row.at, "p": row.prev_hash, "h": "0" * 64})
    session.expire_all()  # verify reads the rows as stored, not the ones loaded above
    assert audit.verify(session).first_bad_seq == 3
    session.rollback()
    session.execute(text("DELETE FROM audit_log WHERE seq = 3"))  # the tail
    assert audit.verify(session).first_bad_seq == 3
    session.rollback()
    assert audit.verify(session).ok


def test_statistics_suppress_small_counts_and_export_csv(session, demo, passwords):
    directory.add_staff(session, passwords, "admin", "admin@example.org", "itjen", "admin")
    admin = session.query(Staff).filter_by(username="admin").one()
    inspector = staff(session, demo["inspector"])
    for i in range(6):
        case = cases.open_case(session, report_event(category="bribery"), now=NOW + dt.timedelta(minutes=i))
        cases.transition_case(session, inspector, case.case_id, "verification", now=NOW + dt.timedelta(days=1, minutes=i))
    cases.open_case(session, report_event(unit="kpu-dki", category="fraud"), now=NOW)
    figures = statistics.compute(session, admin, now=NOW + dt.timedelta(days=2))
    assert figures["total"] == 7
    assert {r["key"]: r["count"] for r in figures["by_unit"]} == {"dit-smp": 6, "kpu-dki": "<5"}
    assert {r["key"]: r["count"] for r in figures["by_state"]} == {"verification": 6, "received": "<5"}
    assert figures["deadlines"]["acknowledge"] == {"decided": 6, "share_in_time": 1.0}
    assert figures["median_days_per_stage"]["received"] == 1.0
    csv_text = statistics.to_csv(figures)
    assert "unit,kpu-dki,<5" in csv_text and "state,verification,6" in csv_text
    svg = statistics.bar_chart(figures["by_unit"], "Per unit")
    assert svg.startswith("<svg") and "&lt;5" in svg and "<script" not in svg
    # an inspector's statistics cover their own cases only: the election commission's case went
    # to its own inspectorate
    assert statistics.compute(session, inspector)["total"] == 6


def test_case_contacts_name_the_assignee_and_the_supervisors_who_reach_the_case(session, demo, passwords):
    case = cases.open_case(session, report_event())
    directory.add_staff(session, passwords, "sup-kpu", "s@example.org", "kpu-dki", "supervisor")  # oversees kpu-dki only
    contacts = directory.case_contacts(session, case.case_id)
    assert contacts == {"case_id": case.case_id, "assignee_id": demo["inspector"]["staff_id"],
                        "supervisor_ids": [demo["supervisor"]["staff_id"]], "reference": case.reference}
    assert case.reference and case.reference.startswith("WBS/")
    assert directory.case_contacts(session, str(uuid.uuid4())) is None


def test_parties_added_later_exclude_the_named_assignee_for_good_and_reroute(session, demo, passwords):
    inspector, supervisor = staff(session, demo["inspector"]), staff(session, demo["supervisor"])
    case = cases.open_case(session, report_event())
    assert case.assignee_id == inspector.id
    directory.add_staff(session, passwords, "citra", "citra@example.org", "itjen", "inspector", display_name="Citra Lestari")
    out = assignment.add_parties(session, inspector, case.case_id,
                             routing.parties_from_report({"parties": [{"name": "Inspektur  Demo"}]}))
    citra = session.query(Staff).filter_by(username="citra").one()
    assert out["assignee_id"] == citra.id and out["excluded"] == [{"staff_id": inspector.id, "reason": "party_named"}]
    with pytest.raises(NotFound):
        cases.get_case(session, inspector, case.case_id)
    # a later reroute (citra recuses) never brings the named inspector back
    assert assignment.recuse(session, citra, case.case_id, "kenal terlapor", [])["assignee_id"] is None
    assert [b["inspector_id"] for t, b in outbox(session) if t == "case_assigned"] == [inspector.id, citra.id]
    assert cases.get_case(session, supervisor, case.case_id).conflict_flagged

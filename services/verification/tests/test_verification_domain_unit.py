"""Domain functions over an in-memory database: opening, reach, transitions, directory."""
import json
import uuid

import pytest

from verification import cases, directory, views
from verification.demo import DEMO_STAFF, seed_demo
from verification.errors import Conflict, InvalidInput, NotFound, TransitionForbidden
from verification.models import Case, CaseHistory, OutboxMessage, Staff


def report_event(unit="dit-smp", category="procurement", report_id=None):
    return {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
            "report_id": report_id or str(uuid.uuid4()), "unit": unit, "category": category, "evidence_count": 2}


def outbox(session):
    session.flush()
    return [(m.event_type, json.loads(m.body)) for m in session.query(OutboxMessage).order_by(OutboxMessage.id)
            if m.event_type not in ("unit_changed", "staff_changed")]  # the directory's own, seeded by `demo`


def staff(session, result):
    return session.get(Staff, result["staff_id"])


def test_open_case_routes_and_announces(session, demo):
    ev = report_event()
    case = cases.open_case(session, ev)
    assert case.state == "received" and case.assignee_id == demo["inspector"]["staff_id"]
    events = outbox(session)
    assert [t for t, _ in events] == ["case_opened", "case_assigned"]
    opened, assigned = events[0][1], events[1][1]
    assert {k: opened[k] for k in ("case_id", "report_id", "unit", "category", "state")} == {
        "case_id": case.case_id, "report_id": ev["report_id"], "unit": "dit-smp", "category": "procurement",
        "state": "received"}
    assert assigned["inspector_id"] == demo["inspector"]["staff_id"] and assigned["unit"] == "dit-smp"
    assert session.query(CaseHistory).filter_by(case_id=case.case_id).count() == 1


def test_open_case_twice_for_one_report_opens_one_case_and_announces_once(session, demo):
    ev = report_event()
    first = cases.open_case(session, ev)
    again = cases.open_case(session, dict(ev, event_id=str(uuid.uuid4())))
    assert again.case_id == first.case_id
    assert session.query(Case).count() == 1
    assert len(outbox(session)) == 2


def test_unroutable_case_is_opened_unassigned_with_a_note(session, demo):
    case = cases.open_case(session, report_event(unit="unknown-unit"))
    assert case.assignee_id is None and case.routing_note == "routing_failed: unknown_unit"
    assert [t for t, _ in outbox(session)] == ["case_opened"]


def test_open_case_refuses_an_event_without_fields(session, demo):
    with pytest.raises(InvalidInput):
        cases.open_case(session, {"report_id": str(uuid.uuid4()), "unit": "dit-smp"})


def test_reach_inspector_sees_only_assigned_supervisor_the_subtree_admin_nothing(session, passwords, demo):
    inspector = staff(session, demo["inspector"])
    supervisor = staff(session, demo["supervisor"])
    other = staff(session, directory.add_staff(session, passwords, "lain", "lain@example.org", "itjen", "inspector"))
    admin = staff(session, directory.add_staff(session, passwords, "admin", "admin@example.org", "itjen", "admin"))
    directory.add_unit(session, "lain-kemen", "Kementerian lain")
    directory.add_unit(session, "dit-sma", "Direktorat Sekolah Menengah Atas", "itjen")
    c1 = cases.open_case(session, report_event())        # -> inspektur (0 open)
    c2 = cases.open_case(session, report_event("dit-sma"))  # -> lain (0 open vs 1)
    c3 = cases.open_case(session, report_event("lain-kemen"))  # outside itjen: unassigned
    session.flush()
    assert c1.assignee_id == inspector.id and c2.assignee_id == other.id and c3.assignee_id is None

    assert cases.list_cases(session, inspector) == [c1]
    assert set(cases.list_cases(session, supervisor)) == {c1, c2}
    assert cases.list_cases(session, admin) == []
    assert cases.get_case(session, inspector, c1.case_id) is c1
    for who, cid in ((inspector, c2.case_id), (admin, c1.case_id), (supervisor, c3.case_id),
                     (inspector, str(uuid.uuid4())), (inspector, "not-a-uuid")):
        with pytest.raises(NotFound):
            cases.get_case(session, who, cid)
    assert cases.list_cases(session, supervisor, unit="dit-sma") == [c2]
    assert cases.list_cases(session, supervisor, state="closed") == []


def test_transition_records_history_and_announces(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    outbox(session)
    out = views.case_detail(session, cases.transition_case(session, inspector, case.case_id, "verification", None),
                            inspector)
    assert out["state"]["code"] == "verification" and out["state"]["label"] == "Verifikasi"
    assert [(h["from_state"], h["to_state"]) for h in out["history"]] == [(None, "received"), ("received", "verification")]
    assert out["history"][1]["actor"] == "inspektur"
    last_type, last = outbox(session)[-1]
    assert last_type == "case_status_changed"
    assert (last["case_id"], last["from_state"], last["to_state"]) == (case.case_id, "received", "verification")


def test_forbidden_transition_changes_nothing(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    before = len(outbox(session))
    with pytest.raises(TransitionForbidden):
        cases.transition_case(session, inspector, case.case_id, "closed", "done")
    with pytest.raises(InvalidInput):
        cases.transition_case(session, inspector, case.case_id, "not_actionable", "")
    assert case.state == "received" and len(outbox(session)) == before


def test_reopen_by_supervisor_only(session, demo):
    inspector = staff(session, demo["inspector"])
    supervisor = staff(session, demo["supervisor"])
    case = cases.open_case(session, report_event())
    cases.transition_case(session, inspector, case.case_id, "referred", "KPK", detail="kpk")
    with pytest.raises(TransitionForbidden):
        cases.transition_case(session, inspector, case.case_id, "analysis", "again")
    assert cases.transition_case(session, supervisor, case.case_id, "analysis", "new evidence").state == "analysis"


def test_attach_content_shows_narrative_and_parties_never_reporter_identity(session, demo):
    inspector = staff(session, demo["inspector"])
    case = cases.open_case(session, report_event())
    meta = views.case_detail(session, cases.get_case(session, inspector, case.case_id), inspector)
    content = json.dumps({"title": "T", "description": "Kronologi", "parties": [{"name": "Budi S."}],
                          "reporter": {"relationship": "employee", "involved": False,
                                       "identity": {"name": "SECRET-NAME"}}}).encode()
    out = views.attach_content(meta, content, [{"evidence_id": "e1", "filename": "a.pdf", "media_type": "application/pdf",
                                                 "size_bytes": 3, "sha256": "00"}])
    assert out["narrative"] == "Kronologi" and out["parties"] == [{"name": "Budi S."}]
    assert out["evidence"][0]["filename"] == "a.pdf"
    assert "SECRET-NAME" not in json.dumps(out)


def test_directory_units_staff_recipient(session, passwords):
    assert directory.add_unit(session, "itjen", "Inspektorat Jenderal", None, True)["code"] == "itjen"
    directory.add_unit(session, "dit-a", "Direktorat A", "itjen")
    with pytest.raises(Conflict):
        directory.add_unit(session, "itjen", "again")
    with pytest.raises(InvalidInput):
        directory.add_unit(session, "x", "X", parent="missing")
    with pytest.raises(InvalidInput):
        directory.add_unit(session, "Bad Code!", "X")
    assert [u["code"] for u in directory.list_units(session)] == ["dit-a", "itjen"]
    acct = directory.add_staff(session, passwords, "Ani", "ani@example.org", "dit-a", "supervisor")
    assert acct["username"] == "ani" and len(acct["password"]) >= 12
    with pytest.raises(Conflict):
        directory.add_staff(session, passwords, "ani", "ani2@example.org", "dit-a")
    with pytest.raises(InvalidInput):
        directory.add_staff(session, passwords, "budi", "budi@example.org", "dit-a", role="boss")
    assert directory.get_recipient(session, acct["staff_id"]) == {"email": "ani@example.org", "display_name": "ani", "language": "id"}
    assert directory.get_recipient(session, str(uuid.uuid4())) is None
    assert directory.get_recipient(session, "garbage") is None
    hashed = session.get(Staff, acct["staff_id"]).password_hash
    assert acct["password"] not in hashed and hashed.startswith("$argon2id$")


def test_a_staff_nip_is_stored_as_the_report_format_stores_a_partys(session, passwords, demo):
    """18 digits, whatever spacing it was typed with; anything else could never match a party."""
    acct = directory.add_staff(session, passwords, "budi", "budi@example.org", "itjen", nip="19800101 200501 1 001")
    assert session.get(Staff, acct["staff_id"]).nip == "198001012005011001"
    with pytest.raises(InvalidInput, match="18 digits"):
        directory.add_staff(session, passwords, "eko", "eko@example.org", "itjen", nip="1980-0101")
    with pytest.raises(InvalidInput, match="18 digits"):
        directory.declare_conflict(session, session.get(Staff, acct["staff_id"]), nip="NIP 12")


def test_seed_demo_is_idempotent_and_random_outside_development(session, passwords):
    first = seed_demo(session, passwords, development=False)
    assert first["inspector"]["created"] and first["inspector"]["password"] != DEMO_STAFF["inspector"]["password"]
    again = seed_demo(session, passwords, development=False)
    assert not again["inspector"]["created"] and again["inspector"]["password"] is None
    assert again["inspector"]["staff_id"] == first["inspector"]["staff_id"]
    assert session.query(Staff).count() == 3
    assert {u["code"]: u["parent"] for u in directory.list_units(session)} == {
        "itjen": None, "dit-smp": "itjen", "itama-kpu": None, "kpu-ri": "itama-kpu", "kpu-dki": "itama-kpu"}


def test_seed_demo_in_development_uses_the_fixed_sign_in(session, passwords, demo):
    assert demo["inspector"]["username"] == "inspektur" and demo["supervisor"]["username"] == "supervisor"
    assert demo["inspector"]["password"] == DEMO_STAFF["inspector"]["password"]
    assert seed_demo(session, passwords, development=True)["supervisor"]["totp_secret"] == DEMO_STAFF["supervisor"]["totp_secret"]



def test_seed_demo_keeps_the_election_commission_apart_from_the_ministry(session, demo):
    """A report to the election commission reaches the commission's own inspectorate, never the
    ministry's inspector or supervisor; a report to the ministry never reaches the commission."""
    ministry_inspector, kpu_inspector = staff(session, demo["inspector"]), staff(session, demo["kpu_inspector"])
    supervisor = staff(session, demo["supervisor"])
    assert demo["kpu_inspector"]["username"] == "inspektur-kpu" and kpu_inspector.home_unit == "itama-kpu"
    for unit in ("kpu-dki", "kpu-ri"):
        case = cases.open_case(session, report_event(unit=unit))
        assert case.assignee_id == kpu_inspector.id and case.reference.startswith("WBS/ITAMA-KPU/")
        for outsider in (ministry_inspector, supervisor):
            with pytest.raises(NotFound):
                cases.get_case(session, outsider, case.case_id)
    ministry = cases.open_case(session, report_event(unit="dit-smp"))
    assert ministry.assignee_id == ministry_inspector.id and ministry.reference.startswith("WBS/ITJEN/")
    with pytest.raises(NotFound):
        cases.get_case(session, kpu_inspector, ministry.case_id)


def test_seed_demo_moves_kpu_dki_out_of_an_earlier_demos_ministry_tree(session, passwords):
    directory.add_unit(session, "itjen", "Inspektorat Jenderal", None, True)
    directory.add_unit(session, "kpu-dki", "KPU Provinsi DKI Jakarta", "itjen", False)  # the earlier seed
    seed_demo(session, passwords, development=True)
    session.flush()
    assert {u["code"]: u["parent"] for u in directory.list_units(session)}["kpu-dki"] == "itama-kpu"

def test_supervisor_never_reaches_a_report_about_their_own_unit(session, demo):
    supervisor = staff(session, demo["supervisor"])
    about_itjen = cases.open_case(session, report_event(unit="itjen"))
    below = cases.open_case(session, report_event(unit="dit-smp"))
    session.flush()
    assert about_itjen.assignee_id is None  # escalation: nothing above itjen in the demo tree
    assert cases.list_cases(session, supervisor) == [below]
    with pytest.raises(NotFound):
        cases.get_case(session, supervisor, about_itjen.case_id)

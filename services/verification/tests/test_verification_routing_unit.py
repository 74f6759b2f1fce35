"""Routing: nearest inspectorate, home-unit exclusion, least open cases, failures."""
import uuid

from verification import domain, lifecycle, routing
from verification.models import Case, CaseExclusion
from verification.routing import Candidate, UnitNode

UNITS = {
    "kemen": UnitNode("kemen", None, False),
    "itjen": UnitNode("itjen", "kemen", True),
    "dit-smp": UnitNode("dit-smp", "itjen", False),
    "kpu-dki": UnitNode("kpu-dki", "itjen", False),
    "sub-smp": UnitNode("sub-smp", "dit-smp", False),
    "itwil": UnitNode("itwil", "itjen", True),        # a regional inspectorate under itjen
    "satker-x": UnitNode("satker-x", "itwil", False),
    "orphan": UnitNode("orphan", None, False),
}


def cand(name, unit, open_cases=0):
    return Candidate(f"id-{name}", name, unit, open_cases)


def test_inspectorate_is_the_nearest_flagged_unit_upwards():
    assert routing.inspectorate_of(UNITS, "sub-smp") == "itjen"
    assert routing.inspectorate_of(UNITS, "satker-x") == "itwil"
    assert routing.inspectorate_of(UNITS, "itwil") == "itwil"
    assert routing.inspectorate_of(UNITS, "orphan") is None


def test_cycle_in_units_does_not_loop():
    units = {"a": UnitNode("a", "b", False), "b": UnitNode("b", "a", False)}
    assert routing.inspectorate_of(units, "a") is None


def test_least_open_cases_wins():
    d = routing.choose(UNITS, "dit-smp", [cand("ani", "itjen", 3), cand("budi", "itjen", 1), cand("cici", "kpu-dki", 2)])
    assert d.assignee_id == "id-budi" and d.failure is None and d.inspectorate == "itjen"


def test_ties_are_broken_by_username_deterministically():
    pool = [cand("zed", "itjen", 1), cand("ani", "itjen", 1), cand("mira", "itjen", 1)]
    assert routing.choose(UNITS, "dit-smp", pool).assignee_id == "id-ani"
    assert routing.choose(UNITS, "dit-smp", list(reversed(pool))).assignee_id == "id-ani"


def test_inspector_homed_in_the_reported_unit_is_excluded_and_recorded():
    d = routing.choose(UNITS, "kpu-dki", [cand("ani", "kpu-dki", 0), cand("budi", "itjen", 9)])
    assert d.assignee_id == "id-budi"
    assert d.exclusions == [("id-ani", "home_unit")]


def test_only_the_responsible_inspectorates_pool_is_considered():
    d = routing.choose(UNITS, "satker-x", [cand("ani", "itjen", 0), cand("budi", "itwil", 5)])
    assert d.assignee_id == "id-budi"
    d = routing.choose(UNITS, "dit-smp", [cand("budi", "itwil", 0)])
    assert d.assignee_id is None and d.failure == routing.FAIL_NO_CANDIDATE


def test_report_about_an_inspectorate_escalates_to_the_one_above():
    d = routing.choose(UNITS, "itwil", [cand("ani", "itwil", 0), cand("budi", "itjen", 7)])
    assert d.inspectorate == "itjen" and d.assignee_id == "id-budi"
    d = routing.choose(UNITS, "itjen", [cand("budi", "itjen", 0)])
    assert d.assignee_id is None and d.failure == routing.FAIL_NO_INSPECTORATE


def test_no_eligible_candidate_fails_with_a_reason():
    d = routing.choose(UNITS, "kpu-dki", [cand("ani", "kpu-dki", 0)])
    assert d.assignee_id is None
    assert d.note == "routing_failed: no_eligible_inspector"
    assert d.exclusions == [("id-ani", "home_unit")]
    assert routing.choose(UNITS, "nowhere", []).failure == routing.FAIL_UNKNOWN_UNIT
    assert routing.choose(UNITS, "orphan", []).failure == routing.FAIL_NO_INSPECTORATE


def test_subtree_is_a_supervisors_reach():
    assert routing.subtree(UNITS, "itjen") == {"itjen", "dit-smp", "kpu-dki", "sub-smp", "itwil", "satker-x"}
    assert routing.subtree(UNITS, "dit-smp") == {"dit-smp", "sub-smp"}
    assert routing.subtree(UNITS, "missing") == set()


# ---- against the database: counts come from open cases only; supervisors and inactive staff never get cases


def _case(session, assignee_id, state):
    session.add(Case(case_id=str(uuid.uuid4()), report_id=str(uuid.uuid4()), unit="dit-smp",
                     category="fraud", state=state, assignee_id=assignee_id))


def test_route_counts_only_open_cases(session, passwords, demo):
    second = domain.add_staff(session, passwords, "kedua", "kedua@example.org", "itjen", "inspector")
    first_id = demo["inspector"]["staff_id"]
    for _ in range(3):
        _case(session, first_id, lifecycle.CLOSED)          # ended cases do not count
    _case(session, second["staff_id"], lifecycle.ANALYSIS)
    session.flush()
    d = routing.route(session, "dit-smp")
    assert d.assignee_id == first_id  # "inspektur" has 0 open; "kedua" has 1


def test_route_skips_supervisors_and_inactive_inspectors(session, passwords, demo):
    from verification.models import Staff
    staff = session.get(Staff, demo["inspector"]["staff_id"])
    staff.active = False
    session.flush()
    d = routing.route(session, "dit-smp")
    assert d.assignee_id is None and d.failure == routing.FAIL_NO_CANDIDATE


def test_open_case_records_home_unit_exclusion(session, passwords, demo):
    local = domain.add_staff(session, passwords, "lokal", "lokal@example.org", "kpu-dki", "inspector")
    case = domain.open_case(session, {"report_id": str(uuid.uuid4()), "unit": "kpu-dki", "category": "bribery"})
    session.flush()
    assert case.assignee_id == demo["inspector"]["staff_id"]
    exclusions = session.query(CaseExclusion).filter_by(case_id=case.case_id).all()
    assert [(e.candidate_id, e.reason) for e in exclusions] == [(local["staff_id"], "home_unit")]

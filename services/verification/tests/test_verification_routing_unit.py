"""Routing: nearest inspectorate, home-unit exclusion, least open cases, failures."""
import uuid

from verification import cases, directory, lifecycle, routing
from verification.models import Case, CaseExclusion
from verification.routing import Candidate, UnitNode

UNITS = {
    "kemen": UnitNode("kemen", None, False),
    "itjen": UnitNode("itjen", "kemen", True),
    "dit-smp": UnitNode("dit-smp", "itjen", False),
    "dit-sma": UnitNode("dit-sma", "itjen", False),
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
    d = routing.choose(UNITS, "dit-smp", [cand("ani", "itjen", 3), cand("budi", "itjen", 1), cand("cici", "dit-sma", 2)])
    assert d.assignee_id == "id-budi" and d.failure is None and d.inspectorate == "itjen"


def test_ties_are_broken_by_username_deterministically():
    pool = [cand("zed", "itjen", 1), cand("ani", "itjen", 1), cand("mira", "itjen", 1)]
    assert routing.choose(UNITS, "dit-smp", pool).assignee_id == "id-ani"
    assert routing.choose(UNITS, "dit-smp", list(reversed(pool))).assignee_id == "id-ani"


def test_inspector_homed_in_the_reported_unit_is_excluded_and_recorded():
    d = routing.choose(UNITS, "dit-sma", [cand("ani", "dit-sma", 0), cand("budi", "itjen", 9)])
    assert d.assignee_id == "id-budi"
    assert d.exclusions == [("id-ani", "home_unit")]


def test_only_the_responsible_inspectorates_pool_is_considered():
    d = routing.choose(UNITS, "satker-x", [cand("ani", "itjen", 0), cand("budi", "itwil", 5)])
    assert d.assignee_id == "id-budi"
    d = routing.choose(UNITS, "dit-smp", [cand("budi", "itwil", 0)])
    assert d.assignee_id is None and d.failure == routing.FAIL_NO_CANDIDATE


def test_report_about_an_inspectorate_goes_to_the_escalation_pool_never_to_it():
    esc = lambda name, unit, n=0: routing.Candidate(f"id-{name}", name, unit, n, role="supervisor", escalation_pool=True)
    # inspectors of the inspectorate are never candidates; pool members inside it are excluded
    d = routing.choose(UNITS, "itwil", [cand("ani", "itwil", 0), cand("budi", "itjen", 0), esc("sari", "itwil"),
                                        esc("tono", "dit-sma")])
    assert d.escalated and d.assignee_id == "id-tono"
    assert ("id-sari", routing.SAME_INSPECTORATE) in d.exclusions
    d = routing.choose(UNITS, "itjen", [cand("budi", "itjen", 0), esc("sari", "itwil")])
    assert d.assignee_id is None and d.failure == routing.FAIL_NO_ESCALATION
    assert d.note == "routing_failed: no_eligible_escalation_supervisor"


def test_no_eligible_candidate_fails_with_a_reason():
    d = routing.choose(UNITS, "dit-sma", [cand("ani", "dit-sma", 0)])
    assert d.assignee_id is None
    assert d.note == "routing_failed: no_eligible_inspector"
    assert d.exclusions == [("id-ani", "home_unit")]
    assert routing.choose(UNITS, "nowhere", []).failure == routing.FAIL_UNKNOWN_UNIT
    assert routing.choose(UNITS, "orphan", []).failure == routing.FAIL_NO_INSPECTORATE


def test_parties_by_normalised_name_or_nip_and_declared_conflicts_exclude():
    people = [cand("ani", "itjen", 0), cand("budi", "itjen", 0), cand("citra", "itjen", 0), cand("dewi", "itjen", 5)]
    people[0] = routing.Candidate("id-ani", "ani", "itjen", 0, display_name="Dr. Ani Wulandari, S.H.")
    people[1] = routing.Candidate("id-budi", "budi", "itjen", 0, display_name="Budi", nip="19800101 200501 1 001")
    parties = routing.parties_from_report({"parties": [{"name": "ani  WULANDARI"},
                                                       {"name": "Someone", "nip": "198001012005011001"}]})
    declared = {"id-citra": [routing.Declared(unit="dit-smp")]}
    d = routing.choose(UNITS, "dit-smp", people, parties, declared)
    assert dict(d.exclusions) == {"id-ani": routing.PARTY_NAMED, "id-budi": routing.PARTY_NIP,
                                  "id-citra": routing.DECLARED}
    assert d.assignee_id == "id-dewi"
    # recusal and a declared person
    d = routing.choose(UNITS, "dit-smp", people[3:], parties, {}, recused={"id-dewi"})
    assert d.exclusions == [("id-dewi", routing.RECUSED)] and d.assignee_id is None
    d = routing.choose(UNITS, "dit-smp", people[3:], routing.parties_from_report({"parties": [{"name": "Eko P."}]}),
                       {"id-dewi": [routing.Declared(name=routing.normalise_name("Eko Prasetyo"))]})
    assert d.exclusions == [("id-dewi", routing.DECLARED)]


def test_name_normalisation():
    assert routing.normalise_name("Dr. Budi Santoso, S.H., M.M.") == "budi santoso"
    assert routing.normalise_name("  BÜDI   santoso ") == "budi santoso"
    assert routing.names_match("budi s", "budi santoso")
    assert not routing.names_match("budi", "budi santoso")
    assert not routing.names_match("b s", "budi santoso")
    assert routing.normalise_nip("19800101 200501 1 001") == "198001012005011001"


def test_subtree_is_a_supervisors_reach():
    assert routing.subtree(UNITS, "itjen") == {"itjen", "dit-smp", "dit-sma", "sub-smp", "itwil", "satker-x"}
    assert routing.subtree(UNITS, "dit-smp") == {"dit-smp", "sub-smp"}
    assert routing.subtree(UNITS, "missing") == set()


# ---- against the database: counts come from open cases only; supervisors and inactive staff never get cases


def _case(session, assignee_id, state):
    session.add(Case(case_id=str(uuid.uuid4()), report_id=str(uuid.uuid4()), unit="dit-smp",
                     category="fraud", state=state, assignee_id=assignee_id))


def test_route_counts_only_open_cases(session, passwords, demo):
    second = directory.add_staff(session, passwords, "kedua", "kedua@example.org", "itjen", "inspector")
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
    local = directory.add_staff(session, passwords, "lokal", "lokal@example.org", "kpu-dki", "inspector")
    case = cases.open_case(session, {"report_id": str(uuid.uuid4()), "unit": "kpu-dki", "category": "bribery"})
    session.flush()
    assert case.assignee_id == demo["kpu_inspector"]["staff_id"]
    exclusions = session.query(CaseExclusion).filter_by(case_id=case.case_id).all()
    assert [(e.candidate_id, e.reason) for e in exclusions] == [(local["staff_id"], "home_unit")]

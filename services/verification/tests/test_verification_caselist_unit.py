"""The case list for thousands of cases: filters, sort, pages, names and zones (no server)."""
import datetime as dt
import uuid

import pytest

from verification import caselist, cases, directory
from verification.errors import InvalidInput
from verification.models import Staff, Unit

NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)


def event(unit="dit-smp", category="procurement"):
    return {"report_id": str(uuid.uuid4()), "unit": unit, "category": category, "evidence_count": 0}


@pytest.fixture
def world(session, demo):
    """itjen > dit-smp > smp-papua (Asia/Jayapura); a supervisor overseeing itjen; 7 cases."""
    directory.add_unit(session, "smp-papua", "SMP Negeri 1 Jayapura", "dit-smp", False)
    directory.add_unit(session, "dit-sma", "Direktorat Sekolah Menengah Atas", "itjen", False)
    session.get(Unit, "smp-papua").timezone = "Asia/Jayapura"
    directory.set_supervision(session, demo["supervisor"]["staff_id"], ["itjen"])
    opened = []
    for i in range(5):
        opened.append(cases.open_case(session, event(), now=NOW + dt.timedelta(days=i)))
    opened.append(cases.open_case(session, event("smp-papua", "bribery"), now=NOW + dt.timedelta(days=5)))
    opened.append(cases.open_case(session, event("dit-sma", "bribery"), now=NOW + dt.timedelta(days=6)))
    session.flush()
    return {"cases": opened, "supervisor": session.get(Staff, demo["supervisor"]["staff_id"]),
            "inspector": session.get(Staff, demo["inspector"]["staff_id"])}


def page(session, who, now=NOW + dt.timedelta(days=7), **args):
    return caselist.search(session, who, caselist.parse_query(args), now)


def refs(result):
    return [c["reference"] for c in result["cases"]]


def test_a_page_says_its_total_page_and_size(session, world):
    result = page(session, world["inspector"], per_page="3", page="2", sort="received")
    assert (result["total"], result["page"], result["per_page"]) == (7, 2, 3)
    assert refs(result) == ["WBS/ITJEN/2026/00004", "WBS/ITJEN/2026/00005", "WBS/ITJEN/2026/00006"]
    assert page(session, world["inspector"], per_page="3", page="4")["cases"] == []


def test_nearest_deadline_first_by_default_and_ended_cases_last(session, world):
    from verification import cases as c
    first = world["cases"][0]
    c.transition_case(session, world["inspector"], first.case_id, "verification", now=NOW)
    c.transition_case(session, world["inspector"], first.case_id, "not_actionable", "bukan wewenang",
                      detail="not_a_violation", now=NOW)
    session.flush()
    session.refresh(first)
    assert first.next_due_at is None                                  # every clock stopped
    assert world["cases"][1].next_due_at is not None
    result = page(session, world["supervisor"])
    assert refs(result)[-1] == first.reference
    assert refs(result)[:6] == [x.reference for x in world["cases"][1:]]


def test_a_new_case_is_stored_with_its_acknowledgement_deadline_as_its_sort_key(session, world):
    """Opening a case writes ``next_due_at`` with the case (no UPDATE after its clock): the value
    read back from the database is the acknowledgement clock's due time, and the first move
    recomputes it from the clocks as before."""
    from sqlalchemy import select

    from verification import deadlines
    from verification.models import CaseClock

    case = world["cases"][1]
    session.expire(case)
    (clock,) = session.scalars(select(CaseClock).where(CaseClock.case_id == case.case_id))
    assert clock.clock == deadlines.ACKNOWLEDGE and case.next_due_at == clock.due_at
    cases.transition_case(session, world["inspector"], case.case_id, "verification", now=NOW)
    session.flush()
    session.expire(case)
    running = session.scalars(select(CaseClock.due_at).where(
        CaseClock.case_id == case.case_id, CaseClock.stopped_at.is_(None))).all()
    assert len(running) == 2 and case.next_due_at == min(running)


def test_filters_narrow_and_a_unit_includes_its_sub_units(session, world):
    sup = world["supervisor"]
    assert page(session, sup, unit="dit-smp")["total"] == 6          # dit-smp and smp-papua
    assert page(session, sup, unit="smp-papua")["total"] == 1
    assert page(session, sup, category="bribery")["total"] == 2
    assert page(session, sup, state="received")["total"] == 7
    assert page(session, sup, q="00007")["cases"][0]["unit_name"] == "Direktorat Sekolah Menengah Atas"
    assert page(session, sup, q="wbs/itjen/2026/0000")["total"] == 7
    assert page(session, sup, assignee="inspektur")["total"] == 7
    assert page(session, sup, assignee="none")["total"] == 0
    assert page(session, sup, received_from="2026-11-25", received_to="2026-11-26")["total"] == 2
    assert page(session, sup, unit="nowhere")["total"] == 0


def test_times_are_in_the_units_zone_with_its_label(session, world):
    papua = page(session, world["supervisor"], unit="smp-papua")["cases"][0]
    assert papua["zone"] == {"name": "Asia/Jayapura", "label": "WIT"}
    assert papua["created_local"] == "2026-11-28 19:00 WIT"           # 10:00 UTC + 9 h
    assert papua["deadlines"]
    jakarta = page(session, world["supervisor"], unit="dit-sma")["cases"][0]
    assert jakarta["created_local"] == "2026-11-29 17:00 WIB"


def test_an_administrator_and_an_out_of_reach_filter_see_nothing(session, world, passwords):
    admin = directory.add_staff(session, passwords, "admin1", "a@x.org", "itjen", "admin", display_name="A")
    assert page(session, session.get(Staff, admin["staff_id"]))["total"] == 0


@pytest.mark.parametrize("args", [
    {"per_page": "201"}, {"per_page": "0"}, {"page": "x"}, {"sort": "name"}, {"state": "nope"},
    {"category": "nope"}, {"received_from": "24-11-2026"}, {"q": "<script>"},
    {"received_from": "2026-11-25", "received_to": "2026-11-24"},
])
def test_bad_parameters_are_refused_with_a_reason(args):
    with pytest.raises(InvalidInput) as err:
        caselist.parse_query(args)
    assert str(err.value)

"""Register numbers: WBS/<INSPECTORATE>/<YEAR>/<NNNNN>, per inspectorate and year, never twice.

The concurrency test runs on PostgreSQL with several threads, each its own connection and
transaction, as several verification replicas opening cases at once would."""
import datetime as dt
import threading
import uuid
from pathlib import Path

import sqlalchemy
from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_plumbing.migrations import migrate

from verification import cases, directory, register, routing
from verification.demo import seed_demo
from verification.models import Case, CaseRegister

NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"


def event(unit="dit-smp"):
    return {"report_id": str(uuid.uuid4()), "unit": unit, "category": "bribery", "evidence_count": 0}


def test_references_count_per_inspectorate_and_year(session, demo):
    directory.add_unit(session, "bawaslu", "Bawaslu", None, True)
    directory.add_unit(session, "bawaslu-jabar", "Bawaslu Jawa Barat", "bawaslu", False)
    first = cases.open_case(session, event(), now=NOW)
    second = cases.open_case(session, event("kpu-dki"), now=NOW)
    other = cases.open_case(session, event("bawaslu-jabar"), now=NOW)
    next_year = cases.open_case(session, event(), now=dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.timezone.utc))
    assert [first.reference, second.reference, other.reference, next_year.reference] == [
        "WBS/ITJEN/2026/00001", "WBS/ITAMA-KPU/2026/00001", "WBS/BAWASLU/2026/00001",
        "WBS/ITJEN/2027/00001"]  # 17:00 UTC on 31 December is already 1 January in Jakarta


def test_a_redelivered_report_keeps_its_number_and_takes_no_other(session, demo):
    ev = event()
    assert cases.open_case(session, ev, now=NOW).reference == "WBS/ITJEN/2026/00001"
    assert cases.open_case(session, ev, now=NOW).reference == "WBS/ITJEN/2026/00001"
    assert cases.open_case(session, event(), now=NOW).reference == "WBS/ITJEN/2026/00002"


def test_an_unroutable_case_is_numbered_in_its_tree_or_the_general_register(session, demo):
    directory.add_unit(session, "lone", "Satker tanpa inspektorat", None, False)
    assert cases.open_case(session, event("lone"), now=NOW).reference == "WBS/LONE/2026/00001"
    assert cases.open_case(session, event("nowhere"), now=NOW).reference == "WBS/UMUM/2026/00001"


def test_the_reference_is_in_case_opened_and_in_the_reporters_status(session, demo):
    case = cases.open_case(session, event(), now=NOW)
    assert cases.report_status(session, case.report_id)["reference"] == case.reference
    from verification.models import OutboxMessage
    import json
    bodies = [json.loads(m.body) for m in session.scalars(select(OutboxMessage)) if m.event_type == "case_opened"]
    assert [b["reference"] for b in bodies] == [case.reference]


def test_register_code_is_the_inspectorate_in_capitals():
    units = {"itjen-kpu": routing.UnitNode("itjen-kpu", None, True)}
    assert register.register_code(units, "x", "itjen-kpu") == "ITJEN-KPU"
    assert register.format_reference("ITJEN", 2026, 42) == "WBS/ITJEN/2026/00042"


def test_replicas_opening_cases_at_once_never_share_a_number(pg_url, passwords):
    """Eight threads, each with its own connection, open 25 cases each at the same moment."""
    migrate(ALEMBIC_DIR, pg_url)
    engine = sqlalchemy.create_engine(pg_url, pool_size=10)
    with Session(engine) as s:
        seed_demo(s, passwords, development=True)
        s.commit()
    start = threading.Barrier(8)
    errors = []

    def replica():
        try:
            start.wait()
            for _ in range(25):
                with Session(engine) as s:
                    cases.open_case(s, event(), now=NOW)
                    s.commit()
        except Exception as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as s:
        refs = sorted(s.scalars(select(Case.reference)))
        last = s.get(CaseRegister, ("ITJEN", 2026)).last
    engine.dispose()
    assert refs == [f"WBS/ITJEN/2026/{n:05d}" for n in range(1, 201)]
    assert last == 200


def test_migration_numbers_cases_opened_before_it(pg_url, passwords):
    """A database at revision 0002 with cases: upgrading gives them numbers in opening order and
    the counter continues after them."""
    from wbs_plumbing.migrations import alembic_config
    from alembic import command

    command.upgrade(alembic_config(ALEMBIC_DIR, pg_url), "0002")
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as c:
        c.execute(sqlalchemy.text("INSERT INTO units (code, name, parent_code, inspectorate) VALUES "
                                  "('itjen', 'Itjen', NULL, true), ('dit', 'Dit', 'itjen', false)"))
        for i, day in enumerate((3, 1, 2)):
            c.execute(sqlalchemy.text(
                "INSERT INTO cases (case_id, report_id, unit, category, state, evidence_count, created_at, "
                "updated_at) VALUES (:id, :r, 'dit', 'bribery', 'received', 0, :at, :at)"),
                {"id": str(uuid.uuid4()), "r": f"r{i}", "at": dt.datetime(2026, 5, day, tzinfo=dt.timezone.utc)})
    migrate(ALEMBIC_DIR, pg_url)
    with Session(engine) as s:
        numbered = {c.report_id: c.reference for c in s.scalars(select(Case))}
        assert numbered == {"r1": "WBS/ITJEN/2026/00001", "r2": "WBS/ITJEN/2026/00002",
                            "r0": "WBS/ITJEN/2026/00003"}
        assert register.next_number(s, "ITJEN", 2026) == 4
    engine.dispose()

"""`python -m bench caselist` (or `make bench BENCH_ARGS=caselist`): the console's case list with
100,000 cases in PostgreSQL.

Builds a throw-away database at the head migration with a directory like an election
commission's (a central inspectorate, 38 provinces, 10 regencies each), 40 inspectors, a
supervisor overseeing the whole tree, and ``--cases`` cases with their three deadline clocks
(bulk inserted, not routed: routing is not what is measured). Then times
``verification.caselist.search`` (the function behind ``GET /api/v1/cases`` and the list page),
each query ``--repeat`` times, and prints the median and the 95th percentile. The target is a
filtered, sorted page under 200 ms.

    make bench BENCH_ARGS="caselist"
    make bench BENCH_ARGS="caselist --cases 20000 --repeat 10"
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
import uuid
from pathlib import Path

import sqlalchemy
from sqlalchemy.orm import Session

from bench.timing import percentile
from tests.fixtures import PG_ADMIN_URL
from wbs_plumbing.migrations import migrate

from verification import caselist, lifecycle
from verification.models import Case, CaseClock, Staff, Supervision, Unit

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "services" / "verification" / "alembic"
TARGET_MS = 200.0
STATES = ("received", "verification", "analysis", "investigation", "awaiting_reporter", "closed",
          "not_actionable", "referred")
CATEGORIES = ("bribery", "procurement", "conflict_of_interest", "abuse_of_authority")


def build(url: str, cases: int, seed: int = 7) -> dict:
    """The directory, staff and ``cases`` cases with clocks; returns the ids the queries use."""
    rnd = random.Random(seed)
    engine = sqlalchemy.create_engine(url)
    units = [dict(code="kpu", name="KPU RI", parent_code=None, inspectorate=True, timezone="Asia/Jakarta")]
    zones = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
    for p in range(38):
        units.append(dict(code=f"kpu-p{p:02d}", name=f"KPU Provinsi {p:02d}", parent_code="kpu",
                          inspectorate=False, timezone=zones[p % 3]))
        for r in range(10):
            units.append(dict(code=f"kpu-p{p:02d}-{r:02d}", name=f"KPU Kabupaten {p:02d}-{r:02d}",
                              parent_code=f"kpu-p{p:02d}", inspectorate=False, timezone=zones[p % 3]))
    staff = [dict(id=str(uuid.uuid4()), username=f"pemeriksa{i:02d}", email=f"p{i}@kpu.example",
                  display_name=f"Pemeriksa {i:02d}", role="inspector", home_unit="kpu", password_hash="x",
                  totp_secret="x", active=True) for i in range(40)]
    supervisor = dict(id=str(uuid.uuid4()), username="penyelia", email="s@kpu.example", display_name="Penyelia",
                      role="supervisor", home_unit="kpu", password_hash="x", totp_secret="x", active=True)
    now = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.timezone.utc)
    with engine.begin() as c:
        c.execute(sqlalchemy.insert(Unit), units)
        c.execute(sqlalchemy.insert(Staff), staff + [supervisor])
        c.execute(sqlalchemy.insert(Supervision), [dict(staff_id=supervisor["id"], unit_code="kpu")])
        leaf_units = [u["code"] for u in units[1:]]
        batch_cases, batch_clocks = [], []
        for n in range(cases):
            created = now - dt.timedelta(minutes=rnd.randrange(0, 60 * 24 * 700))
            state = rnd.choice(STATES)
            case_id = str(uuid.uuid4())
            batch_cases.append(dict(
                case_id=case_id, report_id=str(uuid.uuid4()), reference=f"WBS/KPU/{created.year}/{n + 1:05d}",
                unit=rnd.choice(leaf_units), category=rnd.choice(CATEGORIES), state=state,
                assignee_id=rnd.choice(staff)["id"], evidence_count=0, created_at=created, updated_at=created))
            ended = state in lifecycle.TERMINAL
            for clock, days in (("acknowledge", 7), ("verification", 12), ("feedback", 90)):
                batch_clocks.append(dict(case_id=case_id, clock=clock, started_at=created,
                                         due_at=created + dt.timedelta(days=days),
                                         stopped_at=created + dt.timedelta(days=1) if ended or clock == "acknowledge" else None))
            # bulk inserts bypass the ORM hook that keeps cases.next_due_at: set it as it would
            batch_cases[-1]["next_due_at"] = None if ended else created + dt.timedelta(days=12)
            if len(batch_cases) == 5000:
                c.execute(sqlalchemy.insert(Case), batch_cases)
                c.execute(sqlalchemy.insert(CaseClock), batch_clocks)
                batch_cases, batch_clocks = [], []
        if batch_cases:
            c.execute(sqlalchemy.insert(Case), batch_cases)
            c.execute(sqlalchemy.insert(CaseClock), batch_clocks)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"supervisor": supervisor["id"], "inspector": staff[0]["id"], "now": now}


QUERIES = {
    "default page (nearest deadline first)": {},
    "state + province (with its regencies), deadline sort": {"state": "verification", "unit": "kpu-p07"},
    "category + received range, newest first": {"category": "bribery", "received_from": "2026-01-01",
                                                "received_to": "2026-06-30", "sort": "-received"},
    "reference search": {"q": "00042"},
    "page 40 of 200 per page, by reference": {"page": "40", "per_page": "200", "sort": "reference"},
}


def measure(url: str, ids: dict, repeat: int) -> list[tuple[str, str, float, float, int]]:
    engine = sqlalchemy.create_engine(url)
    rows = []
    try:
        for who in ("supervisor", "inspector"):
            for label, args in QUERIES.items():
                query = caselist.parse_query(args)
                timings, total = [], 0
                for _ in range(repeat):
                    with Session(engine) as session:
                        staff = session.get(Staff, ids[who])
                        started = time.perf_counter()
                        result = caselist.search(session, staff, query, ids["now"])
                        timings.append((time.perf_counter() - started) * 1000)
                        total = result["total"]
                rows.append((who, label, statistics.median(timings), percentile(timings, 95), total))
    finally:
        engine.dispose()
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make bench BENCH_ARGS=caselist")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    name = f"wbs_bench_caselist_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(ALEMBIC_DIR, url)
        started = time.perf_counter()
        ids = build(url, args.cases)
        print(f"built {args.cases} cases with 3 clocks each in {time.perf_counter() - started:.1f} s")
        worst = 0.0
        print(f"{'viewer':<11} {'query':<55} {'median ms':>9} {'p95 ms':>8} {'total':>7}")
        for who, label, median, p95, total in measure(url, ids, args.repeat):
            worst = max(worst, median)
            print(f"{who:<11} {label:<55} {median:9.1f} {p95:8.1f} {total:7d}")
        print(f"slowest median {worst:.1f} ms; target < {TARGET_MS:.0f} ms: {'met' if worst < TARGET_MS else 'NOT met'}")
        return 0 if worst < TARGET_MS else 1
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

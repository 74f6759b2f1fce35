"""Receipt sign-in cost on the server: right, wrong and malformed receipts (a benchmark, not a test).

    .venv/bin/python -m bench.receipts [--reports 20000] [--rounds 2000]

Makes a throw-away PostgreSQL database, migrates intake's schema, stores `--reports` reports
with real receipt hashes, then times `domain.open_reporter_session` (what
`POST /api/v1/reporter/session` runs after the proof of work: one HMAC-SHA256, one indexed
lookup, and for a right receipt one session row) in its own transaction, as the service does.
Prints per-sign-in wall time (p50/p99) and process CPU for each kind, interleaved so drift
affects all kinds alike. The proof of work is the client's cost and is not included.
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

from bench.timing import percentile
from tests.fixtures import PG_ADMIN_URL
from wbs_plumbing.db import make_engine, session_scope
from wbs_plumbing.migrations import migrate

from intake import domain
from intake.errors import Unauthorized
from intake.models import Report
from intake.receipts import hash_receipt, new_receipt
from intake.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings.from_config({"WBS_RECEIPT_KEY": "5a" * 32, "WBS_POW_BITS": 0})
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    name = f"wbs_bench_receipts_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(ROOT / "services" / "intake" / "alembic", url)
        engine = make_engine(url)
        receipts = [new_receipt() for _ in range(args.reports)]
        now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
        with session_scope(engine) as session:
            session.add_all(Report(report_id=str(uuid.uuid4()), unit="u", category="other", received_at=now,
                                   receipt_hash=hash_receipt(settings.receipt_key, r), evidence_count=0,
                                   evidence_bytes=0, language="id") for r in receipts)
        kinds = {"right": lambda: random.choice(receipts),
                 "wrong (well-formed)": new_receipt,
                 "malformed": lambda: "not-a-receipt-" + uuid.uuid4().hex[:6]}
        wall = {k: [] for k in kinds}
        cpu = {k: 0.0 for k in kinds}
        answers = {k: set() for k in kinds}
        for _ in range(args.rounds):
            for kind, make in kinds.items():
                receipt = make()
                c0, t0 = time.process_time(), time.perf_counter()
                try:
                    with session_scope(engine) as session:
                        domain.open_reporter_session(session, receipt, settings)
                    answers[kind].add("200")
                except Unauthorized:
                    answers[kind].add("401")
                wall[kind].append(time.perf_counter() - t0)
                cpu[kind] += time.process_time() - c0
        print(f"intake receipt sign-in, PostgreSQL, {args.reports} stored receipts, {args.rounds} rounds")
        print(f"{'kind':22} {'answer':>6} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/sign-in':>15}")
        for kind in kinds:
            print(f"{kind:22} {'/'.join(sorted(answers[kind])):>6} {statistics.median(wall[kind]) * 1e3:8.3f} "
                  f"{percentile(wall[kind], 99) * 1e3:8.3f} {cpu[kind] / args.rounds * 1e3:15.3f}")
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()

"""Timers with several replicas (issue 12, criterion 4): every replica of a service runs the same
timers, so the deadline sweep, the retention run with its key rotation, and the mail retry sweep
fire in several processes at once. What they do must still happen once: one ``sla_breached`` per
breach, one shred (and one ``report_shredded``) per report, one new key-encryption key per
rotation. Shown on the real PostgreSQL (row locks and ``SKIP LOCKED`` are PostgreSQL's), with
the replicas released together: threads with their own connections for the deadline sweep,
processes sharing the key file and object store for retention (its key-file lock is per process). (The mail retry sweep with two notification
replicas is exercised by tests/test_cluster_faults.py: SMTP refuses for 30 s, both replicas
sweep, and every case still gets exactly one email.)
"""
import datetime as dt
import json
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.fixtures import wait_until

ROOT = Path(__file__).resolve().parents[1]
REPLICAS = 4


def _at_once(work):
    """Run ``work()`` in REPLICAS threads released together; re-raise the first failure."""
    barrier = threading.Barrier(REPLICAS)
    errors = []

    def run():
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(REPLICAS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]


def test_deadline_sweep_on_several_replicas_announces_each_breach_once(pg_database):
    from verification import deadlines
    from verification.models import Base, Case, CaseClock, OutboxMessage

    engine = sqlalchemy.create_engine(pg_database("verification"), pool_size=REPLICAS + 2)
    Base.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    with Session(engine) as session, session.begin():
        for i in range(40):
            case = Case(report_id=str(uuid.uuid4()), unit="t-dit", category="fraud", state="received")
            session.add(case)
            session.flush()
            session.add(CaseClock(case_id=case.case_id, clock="acknowledge", started_at=now - dt.timedelta(days=9),
                                  due_at=now - dt.timedelta(minutes=i + 1)))

    def sweep():
        with Session(engine) as session, session.begin():
            deadlines.check_breaches(session, now, limit=500)

    _at_once(sweep)
    _at_once(sweep)  # and again: nothing new
    with Session(engine) as session:
        bodies = [json.loads(row.body) for row in session.scalars(select(OutboxMessage))
                  if row.event_type == "sla_breached"]
    engine.dispose()
    per_clock = Counter((b["case_id"], b["clock"]) for b in bodies)
    assert len(per_clock) == 40
    assert set(per_clock.values()) == {1}


def _count_shredded(tx, model):
    with tx() as session:
        return list(session.scalars(select(model.report_id).where(model.shredded_at.is_not(None))))


REPLICA = """
import json, os, sys, time
from datetime import datetime
from storage import domain, retention
from storage.dependencies import LiveKeyRing
from storage.objectstore import FileStore
from wbs_plumbing.db import make_engine
sys.path.insert(0, os.environ["FAKES"])
from storage_fakes import transaction_factory
tx = transaction_factory(make_engine(os.environ["DB"]))
ring = LiveKeyRing(os.environ["KEYS"], production=False, check_seconds=0)
while not os.path.exists(os.environ["GO"]):  # the barrier: every replica fires at once
    time.sleep(0.01)
now = datetime.fromisoformat(os.environ["NOW"])
print(json.dumps(retention.run_retention(tx, FileStore(os.environ["STORE"]), domain.Uploads(), now)), flush=True)
while not os.path.exists(os.environ["GO"] + "2"):  # then the rotation run_retention ends with, at once
    time.sleep(0.01)
with tx() as session:
    last = retention._aware(session.scalar(retention.select(retention.func.max(retention.RetentionRecord.shredded_at))))
from storage import crypto
add_kek = crypto.add_kek
crypto.add_kek = lambda doc: (print("NEW-KEK", flush=True), add_kek(doc))[1]  # counts real additions
ring.rotate_after(last, transaction=tx, grace_seconds=0.2)
"""


def test_retention_on_several_replicas_shreds_each_report_once_and_rotates_once(pg_database, tmp_path):
    """Replicas are processes here: the key file's lock (flock) is per process, as in production."""
    import subprocess
    import time

    fakes = str(ROOT / "services" / "storage" / "tests")
    sys.path.insert(0, fakes)
    from storage_fakes import transaction_factory, upload_file
    from storage import domain, retention
    from storage.dependencies import LiveKeyRing
    from storage.models import Base, DataKeyRecord, OutboxMessage, RetentionRecord
    from storage.objectstore import FileStore
    from storage.settings import DEFAULT_RETENTION_DAYS
    from wbs_plumbing.db import make_engine

    url = pg_database("storage")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    tx = transaction_factory(engine)
    key_file, store_dir = str(tmp_path / "keys.json"), tmp_path / "objects"
    store_dir.mkdir()
    store, uploads = FileStore(str(store_dir)), domain.Uploads()
    writer = LiveKeyRing(key_file, production=False, check_seconds=0)
    periods = {state: dt.timedelta(days=days) for state, days in DEFAULT_RETENTION_DAYS.items()}
    t0 = dt.datetime(2027, 1, 10, 8, 0, tzinfo=dt.timezone.utc)
    due = [str(uuid.uuid4()) for _ in range(12)]
    kept = str(uuid.uuid4())
    for report_id in due + [kept]:
        domain.store_report_content(tx, writer, store, report_id, b"narasi " + report_id.encode())
        upload_file(tx, writer, store, uploads, report_id, b"bukti" * 2000)
        with tx() as session:
            retention.record_status_change(session, periods, {
                "schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": t0.isoformat(),
                "case_id": str(uuid.uuid4()), "report_id": report_id, "from_state": "analysis",
                "to_state": "not_actionable" if report_id != kept else "analysis"})
    before = json.loads(Path(key_file).read_text())
    go = tmp_path / "go"
    env = dict(__import__("os").environ, DB=url, KEYS=key_file, STORE=str(store_dir), GO=str(go), FAKES=fakes,
               NOW=(t0 + dt.timedelta(days=400)).isoformat())
    replicas = [subprocess.Popen([sys.executable, "-c", REPLICA], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(REPLICAS)]
    time.sleep(3)  # every replica imported and waiting
    go.write_text("go")
    wait_until(lambda: len(_count_shredded(tx, RetentionRecord)) == len(due), timeout=60)
    time.sleep(1)  # every replica past its shredding
    (tmp_path / "go2").write_text("go")
    outputs = [replica.communicate(timeout=120) for replica in replicas]
    assert [replica.returncode for replica in replicas] == [0] * REPLICAS, [err[-2000:] for _, err in outputs]
    shredded = [r for out, _ in outputs for r in json.loads(out.strip().splitlines()[0])]
    assert sum(out.count("NEW-KEK") for out, _ in outputs) == 1  # one rotation, not one per replica

    after = json.loads(Path(key_file).read_text())
    with tx() as session:
        events = [json.loads(row.body)["report_id"] for row in session.scalars(select(OutboxMessage))
                  if row.event_type == "report_shredded"]
        assert session.scalar(select(RetentionRecord).where(RetentionRecord.report_id == kept)).shredded_at is None
    assert sorted(shredded) == sorted(due)  # each report shredded by exactly one replica
    assert sorted(events) == sorted(due)  # and announced once
    # one rotation: exactly one new key-encryption key, and the old one destroyed
    assert len(after["keys"]) == 1 and after["active"] != before["active"]
    # the report that was not due is kept, its data key wrapped under the new key
    assert LiveKeyRing(key_file, production=False, check_seconds=0).kek_ids == [after["active"]]
    with tx() as session:
        assert session.get(DataKeyRecord, kept).kek_id == after["active"]
    engine.dispose()

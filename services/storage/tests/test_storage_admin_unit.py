"""Key rotation: a new KEK, every data key re-wrapped, nothing re-encrypted, running processes
pick up the new key file."""
import json
import os
import uuid

import pytest

from sqlalchemy import select
from sqlalchemy.orm import Session
from wbs_plumbing.db import make_engine

from storage_fakes import InMemoryStore, TestGrants, transaction_factory
from storage import admin, crypto, domain
from storage.dependencies import LiveKeyRing
from storage.models import Base, DataKeyRecord

G = TestGrants()


def vault_with_reports(tmp_path, count):
    """An SQLite storage database, a live key ring on a new key file, an in-memory object store
    and ``count`` reports whose content is their own id; returns (engine, tx, config, live key
    ring, store, report ids)."""
    url = f"sqlite:///{tmp_path / 'storage.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    tx = transaction_factory(engine)
    config = {"WBS_DATA_DIR": str(tmp_path), "DATABASE_URL": url, "KEY_ROTATION_GRACE_SECONDS": 0}
    live = LiveKeyRing(str(tmp_path / "keys.json"), production=False, check_seconds=0)
    store = InMemoryStore()
    reports = [str(uuid.uuid4()) for _ in range(count)]
    for r in reports:
        domain.store_report_content(tx, live, store, r, r.encode())
    return engine, tx, config, live, store, reports


def test_rotate_keys_rewraps_everything_and_data_stays_readable(tmp_path):
    engine, tx, config, live, store, reports = vault_with_reports(tmp_path, 3)
    old_id = live.active_id
    objects = dict(store.objects)

    result = admin.rotate_keys(config)
    assert result["active"] != old_id and result["rewrapped"] == 3
    assert result["remaining_by_kek"] == {result["active"]: 3}
    assert store.objects == objects
    # the old KEK is retired and, since no data key needs it any more, destroyed
    assert result["destroyed"] == [old_id]
    doc = json.load(open(tmp_path / "keys.json"))
    assert [k["id"] for k in doc["keys"]] == [result["active"]] and doc["active"] == result["active"]
    assert (os.stat(tmp_path / "keys.json").st_mode & 0o777) == 0o600

    # the running process notices the new file and reads everything
    assert live.active_id == result["active"]
    for r in reports:
        assert domain.read_report_content(tx, live, store, G.verifier, r, G.grant(r)) == r.encode()
    assert admin.rotate_keys(config, rewrap_only=True)["rewrapped"] == 0
    with Session(engine) as s:
        assert {row.kek_id for row in s.scalars(select(DataKeyRecord))} == {result["active"]}
    engine.dispose()


def test_live_key_ring_reloads_on_unknown_kek(tmp_path):
    path = str(tmp_path / "keys.json")
    live = LiveKeyRing(path, production=False, check_seconds=3600)
    doc = json.load(open(path))
    crypto.add_kek(doc)
    crypto.write_key_file(path, doc)
    other_process = crypto.KeyRing.load(path, production=False)
    dk = crypto.DataKey.generate()
    w = other_process.wrap("r", dk)
    assert live.unwrap("r", dk.key_id, w.kek_id, w.wrapped) == dk  # forced reload


def test_live_key_ring_keeps_serving_if_the_new_file_is_broken(tmp_path):
    path = str(tmp_path / "keys.json")
    live = LiveKeyRing(path, production=False, check_seconds=0)
    active = live.active_id
    with open(path, "w") as fh:
        fh.write("{broken")
    assert live.active_id == active


def test_rotation_interrupted_half_way_keeps_every_read_working_and_a_rerun_finishes(tmp_path):
    """Reads work before, during (a rotation killed after its first batch) and after (re-run)."""
    engine, tx, config, live, store, reports = vault_with_reports(tmp_path, 5)
    first_kek = live.active_id
    objects = dict(store.objects)

    def read_all():
        for r in reports:
            assert domain.read_report_content(tx, live, store, G.verifier, r, G.grant(r)) == r.encode()

    read_all()  # before

    class Killed(Exception):
        pass

    def die(done):
        raise Killed(f"after {done}")

    from storage import keyfile
    settings_file = str(tmp_path / "keys.json")
    with pytest.raises(Killed):
        keyfile.rotate(settings_file, False, tx, batch=2, after_batch=die)
    with Session(engine) as s:
        by_kek = {}
        for row in s.scalars(select(DataKeyRecord)):
            by_kek.setdefault(row.kek_id, []).append(row.report_id)
    assert len(by_kek[first_kek]) == 3 and len(by_kek) == 2  # half-way: two KEKs in use
    assert {k["id"] for k in json.load(open(settings_file))["keys"]} == set(by_kek)
    read_all()  # during
    # new reports keep working mid-rotation (wrapped under the new KEK)
    late = str(uuid.uuid4())
    domain.store_report_content(tx, live, store, late, late.encode())
    reports.append(late)

    result = admin.rotate_keys(config)  # re-run: one more KEK, everything moved, old ones gone
    assert set(result["remaining_by_kek"]) == {result["active"]}
    assert first_kek in result["destroyed"] and len(result["destroyed"]) == 2
    assert [k["id"] for k in json.load(open(settings_file))["keys"]] == [result["active"]]
    assert {k: v for k, v in store.objects.items() if k in objects} == objects  # no object touched
    read_all()  # after
    engine.dispose()


def test_destroy_keeps_a_retired_kek_that_gained_a_data_key_meanwhile(tmp_path):
    """A process still wrapping under the old KEK while it is being destroyed: the KEK stays."""
    from storage import keyfile
    url = f"sqlite:///{tmp_path / 'storage.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    tx = transaction_factory(engine)
    path = str(tmp_path / "keys.json")
    stale = crypto.KeyRing.load(path, production=False)  # a process that missed the rotation
    old = stale.active_id
    keyfile.rotate(path, False, tx)
    assert [k["id"] for k in json.load(open(path))["keys"]] != [old]
    # the old KEK is gone now; simulate the straggler arriving during a later destroy pass
    doc = json.load(open(path))
    doc["keys"].append({"id": "kek-straggler", "key": doc["keys"][0]["key"], "created_at": "x"})
    crypto.write_key_file(path, doc)
    calls = []

    def usage_with_straggler(transaction):
        calls.append(1)
        return {} if len(calls) == 1 else {"kek-straggler": 1}

    original = keyfile.kek_usage
    keyfile.kek_usage = usage_with_straggler
    try:
        assert keyfile.destroy_retired(path, tx) == []
    finally:
        keyfile.kek_usage = original
    assert "kek-straggler" in {k["id"] for k in json.load(open(path))["keys"]}
    engine.dispose()

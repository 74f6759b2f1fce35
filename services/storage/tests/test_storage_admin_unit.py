"""Key rotation: a new KEK, every data key re-wrapped, nothing re-encrypted, running processes
pick up the new key file."""
import json
import os
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session
from wbs_plumbing.db import make_engine

from storage_fakes import InMemoryStore, transaction_factory
from storage import admin, crypto, domain
from storage.dependencies import LiveKeyRing
from storage.models import Base, DataKeyRecord

READER = {"staff_id": "s", "case_id": "c"}


def test_rotate_keys_rewraps_everything_and_data_stays_readable(tmp_path):
    url = f"sqlite:///{tmp_path / 'storage.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    tx = transaction_factory(engine)
    config = {"WBS_DATA_DIR": str(tmp_path), "DATABASE_URL": url}
    live = LiveKeyRing(str(tmp_path / "keys.json"), production=False, check_seconds=0)
    old_id = live.active_id
    store = InMemoryStore()
    reports = [str(uuid.uuid4()) for _ in range(3)]
    for r in reports:
        domain.store_report_content(tx, live, store, r, r.encode())
    objects = dict(store.objects)

    result = admin.rotate_keys(config)
    assert result["active"] != old_id and result["rewrapped"] == 3
    assert result["remaining_by_kek"] == {result["active"]: 3}
    assert store.objects == objects
    doc = json.load(open(tmp_path / "keys.json"))
    assert [k["id"] for k in doc["keys"] if "retired_at" in k] == [old_id]
    assert (os.stat(tmp_path / "keys.json").st_mode & 0o777) == 0o600

    # the running process notices the new file and reads everything
    assert live.active_id == result["active"]
    for r in reports:
        assert domain.read_report_content(tx, live, store, r, READER) == r.encode()
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

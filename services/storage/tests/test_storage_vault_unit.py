"""The vault's promises, with the domain functions over SQLite, a fake object store and real keys.

* tampering fails loudly (issue 3, criterion 3): every case below raises ``IntegrityError``,
  returns no plaintext, and is logged at ERROR without content;
* messages are sealed under the report's data key and read only with a ``messages`` grant;
* retention: the schedule follows verification's events, legal hold blocks, ``run_retention``
  shreds and announces it, and a backup taken before shredding cannot be decrypted afterwards.
"""
import json
import logging
import shutil
import struct
import uuid
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest
from sqlalchemy import func, select
from wbs_contracts.errors import Conflict, Forbidden, Invalid, NotFound
from wbs_contracts.events import validate_event
from wbs_plumbing.db import make_engine

from storage_fakes import (InMemoryStore, TestGrants, move_content_to_an_object, put_sealed_content,
                           sealed_content, transaction_factory, upload_file)
from storage import crypto, domain, retention
from storage.dependencies import LiveKeyRing
from storage.models import (Base, ContentRead, DataKeyRecord, Evidence, Message, OutboxMessage,
                            ReportContent, RetentionRecord)
from storage.settings import DEFAULT_RETENTION_DAYS

MiB = 1024 * 1024
SEG = crypto.SEGMENT_SIZE + crypto.TAG_SIZE
G = TestGrants()
CANARY = b"PLAINTEXT-CANARY-"
PERIODS = {state: timedelta(days=days) for state, days in DEFAULT_RETENTION_DAYS.items()}


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'storage.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def tx(engine):
    return transaction_factory(engine)


@pytest.fixture
def keyring(tmp_path):
    return LiveKeyRing(str(tmp_path / "keys.json"), production=False, check_seconds=0)


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def uploads():
    return domain.Uploads()


def rid():
    return str(uuid.uuid4())


def count(tx, model):
    with tx() as s:
        return s.scalar(select(func.count()).select_from(model))


def read_evidence(tx, keyring, store, evidence_id):
    out, index = [], 0
    while True:
        chunk = domain.read_evidence_chunk(tx, keyring, store, G.verifier, evidence_id, index,
                                           G.for_evidence(tx, evidence_id))
        out.append(chunk["data"])
        if chunk["last"]:
            return b"".join(out)
        index += 1


def object_key_of(tx, model, ident):
    with tx() as s:
        return s.get(model, ident).object_key


# -- criterion 3: tampering fails loudly ----------------------------------------------------

def _flip(data, offset):
    data = bytearray(data)
    data[offset] ^= 0x01
    return bytes(data)


TAMPERS = {
    # name: function(object bytes) -> tampered bytes
    "flip a header byte (key id)": lambda b: _flip(b, 6),
    "flip a header byte (nonce prefix)": lambda b: _flip(b, 22),
    "flip a byte in the first segment": lambda b: _flip(b, crypto.HEADER_SIZE + 100),
    "flip a byte in a middle segment": lambda b: _flip(b, crypto.HEADER_SIZE + SEG * 7 + 5),
    "flip a byte in a tag": lambda b: _flip(b, crypto.HEADER_SIZE + SEG - 1),
    "flip the last byte": lambda b: _flip(b, len(b) - 1),
    "truncate inside a segment": lambda b: b[:-10],
    "truncate at a segment boundary": lambda b: b[:crypto.HEADER_SIZE + SEG * 3],
    "truncate to the header": lambda b: b[:crypto.HEADER_SIZE],
    "drop a segment": lambda b: b[:crypto.HEADER_SIZE + SEG] + b[crypto.HEADER_SIZE + 2 * SEG:],
    "reorder two segments": lambda b: (b[:crypto.HEADER_SIZE] + b[crypto.HEADER_SIZE + SEG:
                                       crypto.HEADER_SIZE + 2 * SEG] + b[crypto.HEADER_SIZE:
                                       crypto.HEADER_SIZE + SEG] + b[crypto.HEADER_SIZE + 2 * SEG:]),
    "append a segment": lambda b: b + b[crypto.HEADER_SIZE:crypto.HEADER_SIZE + SEG],
    "wrong key id in the header": lambda b: b[:5] + bytes(16) + b[21:],
    "bad magic": lambda b: b"XXXX" + b[4:],
    "unknown format version": lambda b: b[:4] + b"\x02" + b[5:],
}


def _assert_loud_failure(caplog, call):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with pytest.raises(crypto.IntegrityError) as err:
            call()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "INTEGRITY FAILURE" in errors[0].getMessage()
    assert CANARY not in caplog.text.encode() and CANARY not in str(err.value).encode()
    assert "bukti" not in caplog.text


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_content_fails_loudly_without_plaintext(tx, keyring, store, caplog, tamper):
    report_id = rid()
    content = CANARY * (12 * crypto.SEGMENT_SIZE // len(CANARY))
    domain.store_report_content(tx, keyring, store, report_id, content)
    put_sealed_content(tx, report_id, TAMPERS[tamper](sealed_content(tx, report_id)))
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, report_id, G.grant(report_id)))


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_evidence_fails_loudly_without_plaintext(tx, keyring, store, uploads, caplog,
                                                          tamper):
    report_id = rid()
    data = CANARY * (12 * crypto.SEGMENT_SIZE // len(CANARY))
    ev = upload_file(tx, keyring, store, uploads, report_id, data)
    key = object_key_of(tx, Evidence, ev["evidence_id"])
    store.objects[key] = TAMPERS[tamper](store.objects[key])
    _assert_loud_failure(caplog, lambda: read_evidence(tx, keyring, store, ev["evidence_id"]))


def test_objects_swapped_between_reports_fail(tx, keyring, store, uploads, caplog):
    a, b = rid(), rid()
    domain.store_report_content(tx, keyring, store, a, CANARY + b"a")
    domain.store_report_content(tx, keyring, store, b, CANARY + b"b")
    sealed_a, sealed_b = sealed_content(tx, a), sealed_content(tx, b)
    put_sealed_content(tx, a, sealed_b)
    put_sealed_content(tx, b, sealed_a)
    for report_id in (a, b):
        _assert_loud_failure(caplog, lambda: domain.read_report_content(
            tx, keyring, store, G.verifier, report_id, G.grant(report_id)))
    ea = upload_file(tx, keyring, store, uploads, a, CANARY * 100)
    eb = upload_file(tx, keyring, store, uploads, b, CANARY * 100)
    ka, kb = object_key_of(tx, Evidence, ea["evidence_id"]), object_key_of(tx, Evidence, eb["evidence_id"])
    store.objects[ka], store.objects[kb] = store.objects[kb], store.objects[ka]
    _assert_loud_failure(caplog, lambda: read_evidence(tx, keyring, store, ea["evidence_id"]))


def test_wrapped_data_keys_swapped_between_reports_fail(tx, keyring, store, caplog):
    a, b = rid(), rid()
    domain.store_report_content(tx, keyring, store, a, CANARY + b"a")
    domain.store_report_content(tx, keyring, store, b, CANARY + b"b")
    with tx() as s:
        ra, rb = s.get(DataKeyRecord, a), s.get(DataKeyRecord, b)
        ra.wrapped, rb.wrapped = rb.wrapped, ra.wrapped
        ra.key_id, rb.key_id = rb.key_id, ra.key_id
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, a, G.grant(a)))


def test_replayed_older_version_fails(tx, keyring, store, caplog):
    """The sealed content before it was replaced, put back in its row."""
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, CANARY + b"version 1")
    old = sealed_content(tx, report_id)
    domain.store_report_content(tx, keyring, store, report_id, CANARY + b"version 2")
    put_sealed_content(tx, report_id, old)
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, report_id, G.grant(report_id)))


def test_missing_object_is_an_integrity_failure(tx, keyring, store, caplog):
    """A content row from before 0003 whose object is gone from the store."""
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, CANARY)
    move_content_to_an_object(tx, store, report_id)
    store.objects.clear()
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, report_id, G.grant(report_id)))


def test_content_hash_is_checked_on_every_full_read(tx, keyring, store, caplog):
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, CANARY)
    with tx() as s:
        s.get(ReportContent, report_id).sha256 = "0" * 64
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, report_id, G.grant(report_id)))


def test_wrong_key_id_in_the_database_fails(tx, keyring, store, caplog):
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, CANARY)
    with tx() as s:
        s.get(DataKeyRecord, report_id).kek_id = "kek-that-does-not-exist"
    _assert_loud_failure(caplog, lambda: domain.read_report_content(
        tx, keyring, store, G.verifier, report_id, G.grant(report_id)))


# -- messages -----------------------------------------------------------------------------

def test_messages_are_sealed_idempotent_and_read_in_the_order_asked(tx, keyring, store):
    report_id = rid()
    m1, m2, m3 = rid(), rid(), rid()
    domain.store_message(tx, keyring, report_id, m1, CANARY + b"satu")
    domain.store_message(tx, keyring, report_id, m2, "dua \u2603".encode())
    domain.store_message(tx, keyring, report_id, m2, b"a retry stores nothing twice")
    domain.store_message(tx, keyring, report_id, m3, b"")
    assert count(tx, Message) == 3
    with tx() as s:
        assert all(CANARY not in row.sealed for row in s.scalars(select(Message)))
    got = domain.read_messages(tx, keyring, G.verifier, report_id, [m3, m1, m2],
                               G.grant(report_id, scope=["messages"]))
    assert got == [{"message_id": m3, "text": ""},
                   {"message_id": m1, "text": (CANARY + b"satu").decode()},
                   {"message_id": m2, "text": "dua \u2603"}]
    with tx() as s:
        reads = list(s.scalars(select(ContentRead)))
    assert sorted(r.object_id for r in reads) == sorted(f"message:{m}" for m in (m1, m2, m3))


def test_message_refusals(tx, keyring, store):
    report_id, other = rid(), rid()
    m1, internal = rid(), rid()
    domain.store_message(tx, keyring, report_id, m1, b"to reporter")
    domain.store_message(tx, keyring, report_id, internal, CANARY + b"internal note")
    with pytest.raises(Conflict):
        domain.store_message(tx, keyring, other, m1, b"same id, other report")
    with pytest.raises(Invalid):
        domain.store_message(tx, keyring, report_id, rid(), b"x" * (64 * 1024 + 1))
    with pytest.raises(Invalid):
        domain.store_message(tx, keyring, report_id, rid(), b"\xff\xfe")
    with pytest.raises(Invalid):
        domain.store_message(tx, keyring, report_id, "not-a-uuid", b"x")
    reporter = G.grant(report_id, scope=["messages"], sub="reporter", message_ids=[m1])
    assert domain.read_messages(tx, keyring, G.verifier, report_id, [m1], reporter)[0]["text"] == "to reporter"
    for bad_ids, grant in [([internal], reporter), ([m1, internal], reporter),
                           ([m1], G.grant(report_id, scope=["content", "evidence"])),
                           ([m1], G.grant(other, scope=["messages"])), ([m1], None)]:
        with pytest.raises(Forbidden):
            domain.read_messages(tx, keyring, G.verifier, report_id, bad_ids, grant)
    with pytest.raises(NotFound):
        domain.read_messages(tx, keyring, G.verifier, report_id, [rid()], G.grant(report_id))
    with pytest.raises(Invalid):
        domain.read_messages(tx, keyring, G.verifier, report_id, "m1", G.grant(report_id))
    with tx() as s:
        assert [r.staff_id for r in s.scalars(select(ContentRead))] == ["reporter"]


def test_message_sealed_answer_and_sealed_input(tx, keyring, store):
    from wbs_plumbing.transit import TransitKeyPair, TransitSender
    from storage.transit import TransitChannels
    transit = TransitChannels(required=True)
    report_id, m1 = rid(), rid()
    with pytest.raises(Invalid):  # plaintext refused when sealed transit is required
        domain.store_message(tx, keyring, report_id, m1, b"plain", transit=transit)
    sender = TransitSender(transit.public_key, report_id)
    domain.store_message(tx, keyring, report_id, m1, sender.seal(CANARY), transit=transit,
                         sender_key=sender.public_key)
    reader = TransitKeyPair()
    answer = domain.read_messages(tx, keyring, G.verifier, report_id, [m1], G.grant(report_id),
                                  reader_key=reader.public_key, transit=transit)
    opened = json.loads(reader.receiver(answer["sender_key"], report_id).open(answer["sealed"]))
    assert opened == [{"message_id": m1, "text": CANARY.decode()}]


# -- criterion 5: retention and crypto-shredding --------------------------------------------

T0 = datetime(2027, 1, 10, 8, 0, tzinfo=timezone.utc)


def status_event(report_id, to_state, at, case_id=None):
    return {"schema_version": 1, "event_id": rid(), "occurred_at": at.isoformat(),
            "case_id": case_id or rid(), "report_id": report_id, "from_state": "analysis",
            "to_state": to_state}


def hold_event(report_id, hold, at):
    return {"schema_version": 1, "event_id": rid(), "occurred_at": at.isoformat(),
            "case_id": rid(), "report_id": report_id, "legal_hold": hold}


def apply(tx, event):
    with tx() as s:
        if "legal_hold" in event:
            retention.record_legal_hold(s, event)
        else:
            retention.record_status_change(s, PERIODS, event)


def schedule(tx, report_id):
    with tx() as s:
        row = s.get(RetentionRecord, report_id)
        return retention._aware(row.shred_after), row.legal_hold


def test_schedule_follows_the_case(tx):
    r = rid()
    apply(tx, status_event(r, "not_actionable", T0))
    assert schedule(tx, r) == (T0 + timedelta(days=90), False)
    apply(tx, status_event(r, "analysis", T0 + timedelta(days=3)))  # reopened
    assert schedule(tx, r) == (None, False)
    apply(tx, status_event(r, "closed", T0 + timedelta(days=9)))
    assert schedule(tx, r)[0] == T0 + timedelta(days=9 + 1825)
    apply(tx, status_event(r, "referred", T0 + timedelta(days=1)))  # older, delivered late
    assert schedule(tx, r)[0] == T0 + timedelta(days=9 + 1825)
    apply(tx, hold_event(r, True, T0 + timedelta(days=10)))
    apply(tx, hold_event(r, False, T0 + timedelta(days=2)))  # older: ignored
    assert schedule(tx, r) == (T0 + timedelta(days=9 + 1825), True)
    with tx() as s:  # an event without report_id (older publisher) schedules nothing
        retention.record_status_change(s, PERIODS, {**status_event(r, "closed", T0), "report_id": None})


def _full_report(tx, keyring, store, uploads, report_id):
    domain.store_report_content(tx, keyring, store, report_id, CANARY + b"narrative")
    ev = upload_file(tx, keyring, store, uploads, report_id, CANARY * 5000)
    domain.store_message(tx, keyring, report_id, rid(), CANARY + b"message")
    return ev


def test_run_retention_shreds_what_is_due_and_not_held(tx, keyring, store, uploads):
    due, held, open_case, later = rid(), rid(), rid(), rid()
    for r in (due, held, open_case, later):
        _full_report(tx, keyring, store, uploads, r)
    apply(tx, status_event(due, "not_actionable", T0))
    apply(tx, status_event(held, "not_actionable", T0))
    apply(tx, hold_event(held, True, T0 + timedelta(days=1)))
    apply(tx, status_event(later, "referred", T0))
    rotate = partial(keyring.rotate_after, transaction=tx, grace_seconds=0)

    assert retention.run_retention(tx, store, uploads, T0 + timedelta(days=89), rotate) == []
    now = T0 + timedelta(days=91)
    assert retention.run_retention(tx, store, uploads, now, rotate) == [due]
    assert retention.run_retention(tx, store, uploads, now, rotate) == []  # idempotent
    with tx() as s:
        assert s.get(DataKeyRecord, due) is None
        assert s.scalar(select(func.count()).select_from(Evidence).where(Evidence.report_id == due)) == 0
        assert s.scalar(select(func.count()).select_from(Message).where(Message.report_id == due)) == 0
        assert s.get(ReportContent, due) is None
        assert s.get(RetentionRecord, due).shredded_at is not None
        events = [json.loads(o.body) for o in s.scalars(select(OutboxMessage))
                  if o.event_type == "report_shredded"]
    assert len(events) == 1 and events[0]["report_id"] == due
    validate_event("report_shredded", events[0])
    assert set(events[0]) == {"schema_version", "event_id", "occurred_at", "report_id"}
    assert len(store.objects) == 3  # the other three reports keep their evidence
    for r in (held, open_case, later):  # and stay readable after the KEK rotation
        assert domain.read_report_content(tx, keyring, store, G.verifier, r, G.grant(r)).startswith(CANARY)

    apply(tx, hold_event(held, False, T0 + timedelta(days=200)))  # lifted: now it goes
    assert retention.run_retention(tx, store, uploads, T0 + timedelta(days=201), rotate) == [held]


def test_a_backup_taken_before_shredding_cannot_be_decrypted_afterwards(tmp_path, engine, tx,
                                                                        keyring, store, uploads):
    """Copy the database and the object store, shred, then try with everything that remains
    (the key file as it is now, the live database, the backups): nothing opens."""
    victim, survivor = rid(), rid()
    ev = _full_report(tx, keyring, store, uploads, victim)
    _full_report(tx, keyring, store, uploads, survivor)
    apply(tx, status_event(victim, "not_actionable", T0))

    db_file = tmp_path / "storage.db"
    backup_db = tmp_path / "backup.db"
    engine.dispose()
    shutil.copy(db_file, backup_db)
    backup_store = InMemoryStore()
    backup_store.objects = dict(store.objects)
    backup_engine = make_engine(f"sqlite:///{backup_db}")
    backup_tx = transaction_factory(backup_engine)

    # Before shredding the backup is as good as the live system (so the test below means something).
    assert domain.read_report_content(backup_tx, keyring, backup_store, G.verifier, victim,
                                      G.grant(victim)).startswith(CANARY)

    rotate = partial(keyring.rotate_after, transaction=tx, grace_seconds=0)
    assert retention.run_retention(tx, store, uploads, T0 + timedelta(days=91), rotate) == [victim]

    remaining_ring = crypto.KeyRing.load(keyring.path, production=False)
    with backup_tx() as s:
        old = s.get(DataKeyRecord, victim)
        assert old is not None  # the backup still holds the wrapped data key...
        wrapped = (old.key_id, old.kek_id, old.wrapped)
    assert wrapped[1] not in remaining_ring.kek_ids  # ...but its KEK exists nowhere any more
    doc = json.load(open(keyring.path))
    for entry in doc["keys"]:  # and no remaining KEK opens it under any id
        ring = crypto.KeyRing.from_document({**doc, "active": entry["id"], "keys": [entry]})
        with pytest.raises(crypto.IntegrityError):
            ring.unwrap(victim, wrapped[0], wrapped[1], wrapped[2])
        with pytest.raises(crypto.IntegrityError):
            ring.unwrap(victim, wrapped[0], entry["id"], wrapped[2])
    for model, attr in ((ReportContent, "report_id"), (Evidence, "evidence_id")):
        with pytest.raises(crypto.IntegrityError):
            if model is ReportContent:
                domain.read_report_content(backup_tx, keyring, backup_store, G.verifier, victim,
                                           G.grant(victim))
            else:
                read_evidence(backup_tx, keyring, backup_store, ev["evidence_id"])
    with pytest.raises(crypto.IntegrityError):
        domain.read_messages(backup_tx, keyring, G.verifier, victim,
                             [m.message_id for m in _rows(backup_tx, Message, victim)], G.grant(victim))
    # the survivor was re-wrapped and reads fine from the live system
    assert domain.read_report_content(tx, keyring, store, G.verifier, survivor,
                                      G.grant(survivor)).startswith(CANARY)
    backup_engine.dispose()


def _rows(tx, model, report_id):
    with tx() as s:
        return list(s.scalars(select(model).where(model.report_id == report_id)))


def test_uploads_in_progress_of_a_shredded_report_are_aborted(tx, keyring, store, uploads):
    r = rid()
    domain.store_report_content(tx, keyring, store, r, b"x")
    upload_id = domain.begin_upload(tx, keyring, store, uploads, r, "f", "x/y")
    domain.append_upload(uploads, upload_id, b"partial")
    apply(tx, status_event(r, "not_actionable", T0))
    assert retention.run_retention(tx, store, uploads, T0 + timedelta(days=100)) == [r]
    assert len(uploads) == 0 and store.objects == {}

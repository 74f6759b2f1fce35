"""Unit tests of the vault's domain functions with a fake object store and an SQLite database."""
import hashlib
import json
import logging
import os
import uuid
from functools import partial

import pytest
from sqlalchemy import func, select
from wbs_contracts.errors import Conflict, Forbidden, Invalid, NotFound
from wbs_contracts.events import validate_event
from wbs_plumbing.db import make_engine

import storage_fakes
from storage_fakes import (InMemoryStore, TestGrants, move_content_to_an_object, put_sealed_content,
                           sealed_content, transaction_factory)
from storage import crypto, domain
from storage.models import Base, ContentRead, DataKeyRecord, Evidence, OutboxMessage, ReportContent

MiB = 1024 * 1024
G = TestGrants()
FILENAME = "laporan_budi_CANARY.pdf"


@pytest.fixture
def tx(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'storage.db'}")
    Base.metadata.create_all(engine)
    yield transaction_factory(engine)
    engine.dispose()


@pytest.fixture
def keyring():
    return crypto.KeyRing.from_document(crypto.new_key_document())


@pytest.fixture
def store():
    return InMemoryStore()


@pytest.fixture
def uploads():
    return domain.Uploads(max_uploads=4)


def rid():
    return str(uuid.uuid4())


def count(tx, model):
    with tx() as s:
        return s.scalar(select(func.count()).select_from(model))


upload_file = partial(storage_fakes.upload_file, filename=FILENAME)


def read_all(tx, keyring, store, evidence_id):
    out, index = [], 0
    while True:
        chunk = domain.read_evidence_chunk(tx, keyring, store, G.verifier, evidence_id, index, G.for_evidence(tx, evidence_id))
        out.append(chunk["data"])
        if chunk["last"]:
            return b"".join(out), index + 1
        index += 1


# -- report content ----------------------------------------------------------------------------

def test_content_roundtrip_is_sealed_and_read_is_recorded(tx, keyring, store):
    report_id = rid()
    content = json.dumps({"description": "NARRATIVE-CANARY", "identity": {"name": "Ani"}}).encode()
    domain.store_report_content(tx, keyring, store, report_id, content)
    blob = sealed_content(tx, report_id)
    assert blob[:5] == b"WBSE\x01" and b"CANARY" not in blob and store.objects == {}
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == content
    with tx() as s:
        (read,) = s.scalars(select(ContentRead)).all()
        assert (read.report_id, read.object_id, read.staff_id, read.case_id) == (
            report_id, "content", "staff-1", "case-1")
        (key_row,) = s.scalars(select(DataKeyRecord)).all()
        assert key_row.kek_id == keyring.active_id and len(key_row.wrapped) > 32


def test_storing_content_again_replaces_it(tx, keyring, store):
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, b"first")
    domain.store_report_content(tx, keyring, store, report_id, b"second")
    assert count(tx, ReportContent) == 1
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == b"second"


def test_content_stored_before_it_moved_into_its_row_reads_is_replaced_and_discarded(tx, keyring, store, uploads):
    """Rows from before migration 0003 point at a content object: it reads back; storing the
    content again puts it in the row and deletes the object; discarding deletes the object."""
    report_id, other = rid(), rid()
    domain.store_report_content(tx, keyring, store, report_id, b"old narrative")
    key = move_content_to_an_object(tx, store, report_id)
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == b"old narrative"
    domain.store_report_content(tx, keyring, store, report_id, b"new narrative")
    assert key not in store.objects and object_key_of(tx, report_id) is None
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == b"new narrative"
    domain.store_report_content(tx, keyring, store, other, b"other")
    key = move_content_to_an_object(tx, store, other)
    assert domain.discard_report(tx, store, uploads, other) == 1 and key not in store.objects


def object_key_of(tx, report_id):
    with tx() as s:
        return s.get(ReportContent, report_id).object_key


def test_large_content_roundtrip(tx, keyring, store):
    report_id = rid()
    content = os.urandom(3 * MiB + 5)
    domain.store_report_content(tx, keyring, store, report_id, content)
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == content


def test_content_errors(tx, keyring, store):
    with pytest.raises(Invalid):
        domain.store_report_content(tx, keyring, store, "not-a-uuid", b"x")
    with pytest.raises(Invalid):
        domain.store_report_content(tx, keyring, store, rid(), "a str, not bytes")
    unknown = rid()
    with pytest.raises(NotFound):
        domain.read_report_content(tx, keyring, store, G.verifier, unknown, G.grant(unknown))
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, b"x")
    forged = TestGrants().grant(report_id)  # signed with another key
    expired = G.grant(report_id, ttl_seconds=-10)
    for bad in [None, {}, {"staff_id": "s", "case_id": "c"}, "staff", forged, expired,
                G.grant(rid()), G.grant(report_id, scope=["evidence", "messages"]),
                G.grant(report_id)[:-4] + "AAAA"]:
        with pytest.raises(Forbidden):
            domain.read_report_content(tx, keyring, store, G.verifier, report_id, bad)
    assert count(tx, ContentRead) == 0  # a refused read is not a read


def test_a_parties_read_shows_the_named_people_and_nothing_else_of_the_report(tx, keyring, store):
    """Routing's grant (scope ``parties``) reads who the report names, never the narrative or
    the reporter; it opens nothing else, and a content grant does not open it."""
    report_id = rid()
    document = {"format": "wbs.report-content/1", "title": "TITLE-CANARY", "description": "NARRATIVE-CANARY",
                "language": "id", "good_faith": True, "reporter": {"relationship": "public", "involved": False},
                "parties": [{"name": "Pejabat X", "position": "PPK", "nip": "198001012005011001"}]}
    domain.store_report_content(tx, keyring, store, report_id, json.dumps(document).encode())
    parties = G.grant(report_id, scope=["parties"])
    raw = domain.read_report_parties(tx, keyring, store, G.verifier, report_id, parties)
    assert json.loads(raw) == {"format": "wbs.report-content/1", "valid": True, "parties": [
        {"name": "Pejabat X", "position": "PPK", "nip": "198001012005011001"}]}
    assert b"CANARY" not in raw and b"public" not in raw
    with tx() as s:
        assert s.scalar(select(ContentRead.object_id)) == "parties"
    with pytest.raises(Forbidden):
        domain.read_report_content(tx, keyring, store, G.verifier, report_id, parties)
    with pytest.raises(Forbidden):
        domain.read_report_parties(tx, keyring, store, G.verifier, report_id, G.grant(report_id, scope=["content"]))
    with pytest.raises(Forbidden):
        domain.list_evidence(tx, keyring, G.verifier, report_id, parties)
    damaged = rid()
    domain.store_report_content(tx, keyring, store, damaged, b'{"parties": [{"name": "Dr. Ani"}, "x"]}')
    view = json.loads(domain.read_report_parties(tx, keyring, store, G.verifier, damaged,
                                                 G.grant(damaged, scope=["parties"])))
    assert view["valid"] is False and view["parties"] == [{"name": "Dr. Ani"}] and "Ani" not in view["problem"]


def test_tampered_content_fails_closed(tx, keyring, store):
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, b"secret narrative")
    blob = bytearray(sealed_content(tx, report_id))
    blob[-1] ^= 1
    put_sealed_content(tx, report_id, bytes(blob))
    with pytest.raises(crypto.IntegrityError):
        domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id))


# -- evidence uploads ----------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, MiB, 3 * MiB + 123])
def test_upload_and_chunked_read_back(tx, keyring, store, uploads, size):
    report_id = rid()
    data = os.urandom(size)
    result = upload_file(tx, keyring, store, uploads, report_id, data, piece=MiB // 3)
    assert result["size_bytes"] == size
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    back, chunks = read_all(tx, keyring, store, result["evidence_id"])
    assert back == data
    assert chunks == max(1, -(-size // MiB))
    assert len(uploads) == 0
    (blob,) = store.objects.values()
    assert b"CANARY" not in blob and (size < 64 or data[:64] not in blob)


def test_finish_stages_contract_valid_event(tx, keyring, store, uploads):
    report_id = rid()
    result = upload_file(tx, keyring, store, uploads, report_id, b"abc")
    with tx() as s:
        (row,) = s.scalars(select(OutboxMessage)).all()
        body = json.loads(row.body)
    assert row.exchange == "storage.events" and row.event_type == "evidence_stored"
    validate_event("evidence_stored", body)
    assert body["report_id"] == report_id and body["evidence_id"] == result["evidence_id"]
    assert body["size_bytes"] == 3 and body["sha256"] == result["sha256"]
    assert FILENAME not in row.body


def test_list_evidence_unseals_names_and_records_listing(tx, keyring, store, uploads):
    report_id = rid()
    a = upload_file(tx, keyring, store, uploads, report_id, b"one")
    b = upload_file(tx, keyring, store, uploads, report_id, b"two")
    listed = domain.list_evidence(tx, keyring, G.verifier, report_id, G.grant(report_id))
    assert {e["evidence_id"] for e in listed} == {a["evidence_id"], b["evidence_id"]}
    assert all(e["filename"] == FILENAME and e["media_type"] == "application/pdf" for e in listed)
    with tx() as s:
        assert all(FILENAME.encode() not in e.sealed_meta for e in s.scalars(select(Evidence)))
        assert s.scalar(select(ContentRead.object_id)) == "evidence-list"
    unknown = rid()
    with pytest.raises(NotFound):
        domain.list_evidence(tx, keyring, G.verifier, unknown, G.grant(unknown))
    with pytest.raises(Forbidden):
        domain.list_evidence(tx, keyring, G.verifier, report_id, G.grant(report_id, scope=["content"]))


def test_a_report_stored_at_once_reads_back_like_one_stored_piece_by_piece(tx, keyring, store):
    """store_report: content and small files under a new data key, in one transaction with an
    evidence_stored event per file; everything reads back, names sealed, events valid."""
    report_id = rid()
    photo = os.urandom(MiB)
    results = domain.store_report(tx, keyring, store, report_id, b"NARRATIVE-CANARY", [
        {"filename": FILENAME.encode(), "media_type": b"image/jpeg", "data": photo},
        {"filename": b"notes.txt", "media_type": b"", "data": b"line"}])
    assert [r["size_bytes"] for r in results] == [MiB, 4]
    assert results[0]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert all(b"CANARY" not in blob for blob in store.objects.values()) and len(store.objects) == 2
    assert b"CANARY" not in sealed_content(tx, report_id)
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == b"NARRATIVE-CANARY"
    listed = {e["evidence_id"]: e for e in domain.list_evidence(tx, keyring, G.verifier, report_id, G.grant(report_id))}
    assert (listed[results[0]["evidence_id"]]["filename"], listed[results[0]["evidence_id"]]["media_type"]) == (
        FILENAME, "image/jpeg")
    assert listed[results[1]["evidence_id"]]["media_type"] == "application/octet-stream"
    assert read_all(tx, keyring, store, results[0]["evidence_id"]) == (photo, 1)
    with tx() as s:
        bodies = [json.loads(row.body) for row in s.scalars(select(OutboxMessage))]
    for body in bodies:
        validate_event("evidence_stored", body)
    assert sorted(b["evidence_id"] for b in bodies) == sorted(r["evidence_id"] for r in results)


def test_storing_a_report_twice_is_refused_and_leaves_the_first_intact(tx, keyring, store):
    report_id = rid()
    domain.store_report(tx, keyring, store, report_id, b"first", [])
    with pytest.raises(Conflict):
        domain.store_report(tx, keyring, store, report_id, b"second", [{"filename": b"a", "media_type": b"",
                                                                        "data": b"x"}])
    assert store.objects == {} and count(tx, Evidence) == 0
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == b"first"


@pytest.mark.parametrize("files", [
    [{"filename": b"big", "media_type": b"", "data": b"x" * (MiB + 1)}],
    [{"filename": b"", "media_type": b"", "data": b"x"}],
    ["not an object"],
    [{"filename": b"a", "media_type": b"", "data": b"x"}] * 21,
])
def test_a_report_with_files_storage_does_not_take_at_once_is_refused_whole(tx, keyring, store, files):
    with pytest.raises(Invalid):
        domain.store_report(tx, keyring, store, rid(), b"content", files)
    assert store.objects == {} and count(tx, DataKeyRecord) == 0


def test_a_store_failing_mid_report_leaves_no_key_row_or_object(tx, keyring):
    failing = InMemoryStore(fail_writes_after=1)
    with pytest.raises(Exception):
        domain.store_report(tx, keyring, failing, rid(), b"content",
                            [{"filename": b"a", "media_type": b"", "data": b"x" * 100}])
    assert failing.objects == {} and count(tx, DataKeyRecord) == 0 and count(tx, ReportContent) == 0


def test_a_database_lost_when_a_report_is_recorded_leaves_nothing_readable_behind(tx, keyring, store):
    """The one transaction of store_report fails (the database went away, or the process died
    before the commit): the objects already written are deleted and no row exists, so intake
    answers 503 and the reporter submits again; nothing half-stored remains."""
    from contextlib import contextmanager

    from sqlalchemy.exc import OperationalError

    @contextmanager
    def lost():
        with tx() as session:
            yield session
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    with pytest.raises(OperationalError):
        domain.store_report(lost, keyring, store, rid(), b"content",
                            [{"filename": b"a", "media_type": b"", "data": b"x" * 100}])
    assert store.objects == {} and count(tx, DataKeyRecord) == 0 and count(tx, Evidence) == 0
    assert count(tx, OutboxMessage) == 0


def test_list_evidence_of_report_without_evidence(tx, keyring, store):
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, b"x")
    assert domain.list_evidence(tx, keyring, G.verifier, report_id, G.grant(report_id)) == []


def test_each_chunk_read_is_recorded(tx, keyring, store, uploads):
    result = upload_file(tx, keyring, store, uploads, rid(), os.urandom(2 * MiB + 1))
    read_all(tx, keyring, store, result["evidence_id"])
    with tx() as s:
        assert sorted(s.scalars(select(ContentRead.chunk_index))) == [0, 1, 2]


def test_chunk_errors(tx, keyring, store, uploads):
    result = upload_file(tx, keyring, store, uploads, rid(), b"x" * 10)
    with pytest.raises(Invalid):
        domain.read_evidence_chunk(tx, keyring, store, G.verifier, result["evidence_id"], 1, G.for_evidence(tx, result["evidence_id"]))
    with pytest.raises(Invalid):
        domain.read_evidence_chunk(tx, keyring, store, G.verifier, result["evidence_id"], -1, G.for_evidence(tx, result["evidence_id"]))
    with pytest.raises(NotFound):
        domain.read_evidence_chunk(tx, keyring, store, G.verifier, rid(), 0, G.for_evidence(tx, rid()))


def test_swapped_evidence_objects_fail(tx, keyring, store, uploads):
    report_id = rid()
    a = upload_file(tx, keyring, store, uploads, report_id, b"A" * 100)
    b = upload_file(tx, keyring, store, uploads, report_id, b"B" * 100)
    with tx() as s:
        ra, rb = s.get(Evidence, a["evidence_id"]), s.get(Evidence, b["evidence_id"])
        ka, kb = ra.object_key, rb.object_key
    store.objects[ka], store.objects[kb] = store.objects[kb], store.objects[ka]
    with pytest.raises(crypto.IntegrityError):
        domain.read_evidence_chunk(tx, keyring, store, G.verifier, a["evidence_id"], 0, G.for_evidence(tx, a["evidence_id"]))


def test_append_limits_and_unknown_uploads(tx, keyring, store, uploads):
    upload_id = domain.begin_upload(tx, keyring, store, uploads, rid(), "f.txt", "text/plain")
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, b"x" * (MiB + 1))
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, "text")
    domain.append_upload(uploads, upload_id, b"x" * MiB)
    domain.finish_upload(tx, uploads, upload_id)
    with pytest.raises(NotFound):
        domain.append_upload(uploads, upload_id, b"late")
    with pytest.raises(NotFound):
        domain.finish_upload(tx, uploads, upload_id)
    with pytest.raises(NotFound):
        domain.append_upload(uploads, "nope", b"x")
    with pytest.raises(Invalid):
        domain.begin_upload(tx, keyring, store, uploads, rid(), "", "text/plain")
    with pytest.raises(Invalid):
        domain.begin_upload(tx, keyring, store, uploads, rid(), "x" * 2000, "text/plain")


def test_abort_removes_everything(tx, keyring, store, uploads):
    upload_id = domain.begin_upload(tx, keyring, store, uploads, rid(), "f", "text/plain")
    domain.append_upload(uploads, upload_id, b"partial")
    domain.abort_upload(uploads, upload_id)
    domain.abort_upload(uploads, upload_id)  # no-op
    assert store.objects == {} and store.aborted == 1 and len(uploads) == 0
    assert count(tx, Evidence) == 0 and count(tx, OutboxMessage) == 0
    with pytest.raises(NotFound):
        domain.finish_upload(tx, uploads, upload_id)


def test_store_failure_aborts_the_upload(tx, keyring, uploads):
    store = InMemoryStore(fail_writes_after=1)
    upload_id = domain.begin_upload(tx, keyring, store, uploads, rid(), "f", "text/plain")
    domain.append_upload(uploads, upload_id, b"x" * 70000)
    with pytest.raises(Exception):
        domain.append_upload(uploads, upload_id, b"x" * 70000)
    assert len(uploads) == 0 and store.objects == {}
    with pytest.raises(NotFound):
        domain.append_upload(uploads, upload_id, b"x")


def test_too_many_uploads(tx, keyring, store, uploads):
    report_id = rid()
    for _ in range(uploads.max_uploads):
        domain.begin_upload(tx, keyring, store, uploads, report_id, "f", "text/plain")
    with pytest.raises(Conflict):
        domain.begin_upload(tx, keyring, store, uploads, report_id, "f", "text/plain")


def test_idle_uploads_are_reaped(tx, keyring, store, uploads):
    idle = domain.begin_upload(tx, keyring, store, uploads, rid(), "f", "text/plain")
    busy = domain.begin_upload(tx, keyring, store, uploads, rid(), "f", "text/plain")
    uploads.get(idle).last_activity -= 1000
    assert domain.reap_idle_uploads(uploads, idle_seconds=600) == 1
    with pytest.raises(NotFound):
        domain.append_upload(uploads, idle, b"x")
    domain.append_upload(uploads, busy, b"x")
    domain.finish_upload(tx, uploads, busy)


def test_shutdown_aborts_all(tx, keyring, store, uploads):
    for _ in range(3):
        domain.begin_upload(tx, keyring, store, uploads, rid(), "f", "text/plain")
    assert domain.abort_all_uploads(uploads) == 3
    assert len(uploads) == 0 and store.aborted == 3


# -- discard, rotation ---------------------------------------------------------------------

def test_discard_shreds_key_rows_objects_and_uploads(tx, keyring, store, uploads):
    report_id, other = rid(), rid()
    domain.store_report_content(tx, keyring, store, report_id, b"content")
    ev = upload_file(tx, keyring, store, uploads, report_id, b"evidence")
    domain.store_report_content(tx, keyring, store, other, b"other")
    pending = domain.begin_upload(tx, keyring, store, uploads, report_id, "f", "text/plain")
    assert domain.discard_report(tx, store, uploads, report_id) == 1  # the evidence object
    assert store.objects == {}  # the contents live in their rows
    with tx() as s:
        assert s.get(DataKeyRecord, report_id) is None
        assert s.get(ReportContent, report_id) is None
        assert s.get(Evidence, ev["evidence_id"]) is None
    with pytest.raises(NotFound):
        domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id))
    with pytest.raises(NotFound):
        domain.read_evidence_chunk(tx, keyring, store, G.verifier, ev["evidence_id"], 0, G.for_evidence(tx, ev["evidence_id"]))
    with pytest.raises(NotFound):
        domain.append_upload(uploads, pending, b"x")
    assert domain.discard_report(tx, store, uploads, report_id) == 0  # idempotent
    assert domain.read_report_content(tx, keyring, store, G.verifier, other, G.grant(other)) == b"other"


def test_finish_after_discard_leaves_nothing(tx, keyring, store, uploads):
    report_id = rid()
    upload_id = domain.begin_upload(tx, keyring, store, uploads, report_id, "f", "text/plain")
    domain.append_upload(uploads, upload_id, b"x")
    # the report is discarded by another instance while this upload runs
    domain.discard_report(tx, store, domain.Uploads(), report_id)
    with pytest.raises(NotFound):
        domain.finish_upload(tx, uploads, upload_id)
    assert store.objects == {} and count(tx, Evidence) == 0 and count(tx, OutboxMessage) == 0


def test_finish_refuses_when_the_data_key_it_was_sealed_under_is_gone(tx, keyring, store, uploads):
    """The report was discarded while the upload ran and its content then stored again, under a
    new data key: the evidence sealed under the old key must fail the upload (and leave
    nothing), not be recorded as if it were readable."""
    report_id = rid()
    upload_id = domain.begin_upload(tx, keyring, store, uploads, report_id, "f", "text/plain")
    domain.append_upload(uploads, upload_id, b"sealed under the lost key")
    domain.discard_report(tx, store, domain.Uploads(), report_id)  # by another instance
    domain.store_report_content(tx, keyring, store, report_id, b"content under a new key")
    with pytest.raises(NotFound):
        domain.finish_upload(tx, uploads, upload_id)
    assert count(tx, Evidence) == 0 and count(tx, OutboxMessage) == 0
    assert store.objects == {}  # the evidence sealed under the lost key is gone too
    assert domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id)) == \
        b"content under a new key"


def test_rotation_rewraps_and_data_stays_readable(tx, store, uploads):
    doc = crypto.new_key_document()
    ring = crypto.KeyRing.from_document(doc)
    report_id = rid()
    domain.store_report_content(tx, ring, store, report_id, b"before rotation")
    ev = upload_file(tx, ring, store, uploads, report_id, b"evidence")
    objects_before = dict(store.objects)
    new_id = crypto.add_kek(doc)
    ring2 = crypto.KeyRing.from_document(doc)
    with tx() as s:
        assert domain.rewrap_data_keys(s, ring2) == 1
    with tx() as s:
        assert domain.rewrap_data_keys(s, ring2) == 0
        assert s.get(DataKeyRecord, report_id).kek_id == new_id
    assert store.objects == objects_before  # nothing re-encrypted
    # the old KEK can now go
    doc["keys"] = [k for k in doc["keys"] if k["id"] == new_id]
    ring3 = crypto.KeyRing.from_document(doc)
    assert domain.read_report_content(tx, ring3, store, G.verifier, report_id, G.grant(report_id)) == b"before rotation"
    assert read_all(tx, ring3, store, ev["evidence_id"])[0] == b"evidence"


def test_nothing_sensitive_is_logged(tx, keyring, store, uploads, caplog):
    caplog.set_level(logging.DEBUG)
    report_id = rid()
    domain.store_report_content(tx, keyring, store, report_id, b"NARRATIVE-CANARY")
    ev = upload_file(tx, keyring, store, uploads, report_id, b"EVIDENCE-CANARY")
    domain.read_report_content(tx, keyring, store, G.verifier, report_id, G.grant(report_id))
    domain.list_evidence(tx, keyring, G.verifier, report_id, G.grant(report_id))
    read_all(tx, keyring, store, ev["evidence_id"])
    idle = domain.begin_upload(tx, keyring, store, uploads, report_id, FILENAME, "x/y")
    uploads.get(idle).last_activity -= 10_000
    domain.reap_idle_uploads(uploads, 1)
    domain.discard_report(tx, store, uploads, report_id)
    text = caplog.text
    assert "CANARY" not in text

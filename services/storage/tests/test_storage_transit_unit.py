"""Sealed transit at the vault's edge: content in and out of storage can cross RabbitMQ sealed."""
import json
import os
import uuid

import pytest
from sqlalchemy import func, select
from wbs_contracts.errors import Invalid
from wbs_plumbing.db import make_engine
from wbs_plumbing.transit import TransitError, TransitKeyPair, TransitSender

from storage_fakes import InMemoryStore, TestGrants, transaction_factory
from storage import crypto, domain
from storage.models import Base, ContentRead
from storage.transit import TransitChannels

G = TestGrants()
MiB = 1024 * 1024


@pytest.fixture
def env(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'storage.db'}")
    Base.metadata.create_all(engine)
    yield (transaction_factory(engine), crypto.KeyRing.from_document(crypto.new_key_document()),
           InMemoryStore(), domain.Uploads(), TransitChannels())
    engine.dispose()


def test_sealed_content_in_and_sealed_answer_out(env):
    tx, ring, store, _uploads, transit = env
    report_id = str(uuid.uuid4())
    sender = TransitSender(transit.public_key, report_id)
    content = b'{"description": "NARRATIVE-CANARY"}'
    sealed = sender.seal(content)
    assert b"CANARY" not in sealed
    domain.store_report_content(tx, ring, store, report_id, sealed, transit=transit,
                                sender_key=sender.public_key)
    assert domain.read_report_content(tx, ring, store, G.verifier, report_id, G.grant(report_id)) == content

    reader = TransitKeyPair()
    answer = domain.read_report_content(tx, ring, store, G.verifier, report_id, G.grant(report_id),
                                        reader_key=reader.public_key)
    assert set(answer) == {"sender_key", "sealed"} and b"CANARY" not in answer["sealed"]
    assert reader.receiver(answer["sender_key"], report_id).open(answer["sealed"]) == content
    with pytest.raises(TransitError):  # bound to what was read
        reader.receiver(answer["sender_key"], str(uuid.uuid4())).open(answer["sealed"])
    with pytest.raises(TransitError):  # only the reader can open it
        TransitKeyPair().receiver(answer["sender_key"], report_id).open(answer["sealed"])


def test_sealed_upload_and_sealed_chunk_reads(env):
    tx, ring, store, uploads, transit = env
    report_id = str(uuid.uuid4())
    sender = TransitSender(transit.public_key, report_id)
    upload_id = domain.begin_upload(tx, ring, store, uploads, report_id,
                                    sender.seal("bukti CANARY.pdf".encode()),
                                    sender.seal(b"application/pdf"), transit=transit,
                                    sender_key=sender.public_key)
    data = os.urandom(2 * MiB + 5)
    for i in range(0, len(data), MiB):
        domain.append_upload(uploads, upload_id, sender.seal(data[i:i + MiB]), transit=transit)
    result = domain.finish_upload(tx, uploads, upload_id)

    reader = TransitKeyPair()
    listing = domain.list_evidence(tx, ring, G.verifier, report_id, G.grant(report_id), reader_key=reader.public_key)
    assert b"CANARY" not in listing["sealed"]
    (item,) = json.loads(reader.receiver(listing["sender_key"], report_id).open(listing["sealed"]))
    assert item["filename"] == "bukti CANARY.pdf" and item["size_bytes"] == len(data)
    out, index = [], 0
    while True:
        chunk = domain.read_evidence_chunk(tx, ring, store, G.verifier, result["evidence_id"], index, G.for_evidence(tx, result["evidence_id"]),
                                           reader_key=reader.public_key)
        context = f"{result['evidence_id']}:{index}"
        out.append(reader.receiver(chunk["sender_key"], context).open(chunk["sealed"]))
        if chunk["last"]:
            break
        index += 1
    assert b"".join(out) == data


def test_sealed_upload_refuses_plain_replayed_and_foreign_chunks(env):
    tx, ring, store, uploads, transit = env
    report_id = str(uuid.uuid4())
    sender = TransitSender(transit.public_key, report_id)
    upload_id = domain.begin_upload(tx, ring, store, uploads, report_id, sender.seal(b"f"),
                                    sender.seal(b"text/plain"), transit=transit,
                                    sender_key=sender.public_key)
    first = sender.seal(b"one")
    domain.append_upload(uploads, upload_id, first, transit=transit)
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, first, transit=transit)  # replay
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, b"plain chunk of some length", transit=transit)
    other = TransitSender(transit.public_key, report_id)
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, other.seal(b"x"), transit=transit)
    too_big = sender.seal(b"x" * (MiB + 1))
    with pytest.raises(Invalid):
        domain.append_upload(uploads, upload_id, too_big, transit=transit)
    domain.append_upload(uploads, upload_id, sender.seal(b"two"), transit=transit)
    result = domain.finish_upload(tx, uploads, upload_id)
    assert result["size_bytes"] == 6


def test_content_sealed_for_another_report_or_process_is_refused(env):
    tx, ring, store, _uploads, transit = env
    report_id = str(uuid.uuid4())
    wrong_report = TransitSender(transit.public_key, str(uuid.uuid4()))
    with pytest.raises(Invalid):
        domain.store_report_content(tx, ring, store, report_id, wrong_report.seal(b"x"),
                                    transit=transit, sender_key=wrong_report.public_key)
    other_process = TransitSender(TransitChannels().public_key, report_id)
    with pytest.raises(Invalid):
        domain.store_report_content(tx, ring, store, report_id, other_process.seal(b"x"),
                                    transit=transit, sender_key=other_process.public_key)
    with pytest.raises(Invalid):
        domain.store_report_content(tx, ring, store, report_id, b"x" * 40, transit=transit,
                                    sender_key=b"short")
    assert store.objects == {}


def test_bad_reader_key_is_refused_before_the_read_is_logged(env):
    tx, ring, store, _uploads, _transit = env
    report_id = str(uuid.uuid4())
    domain.store_report_content(tx, ring, store, report_id, b"x")
    with pytest.raises(Invalid):
        domain.read_report_content(tx, ring, store, G.verifier, report_id, G.grant(report_id), reader_key=b"nope")
    with tx() as s:
        assert s.scalar(select(func.count()).select_from(ContentRead)) == 0


def test_idle_channels_are_forgotten():
    transit = TransitChannels(idle_seconds=10)
    sender = TransitSender(transit.public_key, "r")
    transit.open("r", sender.public_key, sender.seal(b"a"))
    assert transit.reap() == 0
    import time
    assert transit.reap(now=time.monotonic() + 11) == 1


def test_required_sealed_transit_refuses_plaintext_in_and_out(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'req.db'}")
    Base.metadata.create_all(engine)
    tx, ring, store = (transaction_factory(engine),
                       crypto.KeyRing.from_document(crypto.new_key_document()), InMemoryStore())
    uploads, transit = domain.Uploads(), TransitChannels(required=True)
    report_id = str(uuid.uuid4())
    with pytest.raises(Invalid, match="sealed transit is required"):
        domain.store_report_content(tx, ring, store, report_id, b"plain", transit=transit)
    with pytest.raises(Invalid, match="sealed transit is required"):
        domain.begin_upload(tx, ring, store, uploads, report_id, "f", "x/y", transit=transit)
    sender = TransitSender(transit.public_key, report_id)
    domain.store_report_content(tx, ring, store, report_id, sender.seal(b"sealed"),
                                transit=transit, sender_key=sender.public_key)
    with pytest.raises(Invalid, match="sealed transit is required"):
        domain.read_report_content(tx, ring, store, G.verifier, report_id, G.grant(report_id), transit=transit)
    with pytest.raises(Invalid, match="sealed transit is required"):
        domain.list_evidence(tx, ring, G.verifier, report_id, G.grant(report_id), transit=transit)
    reader = TransitKeyPair()
    answer = domain.read_report_content(tx, ring, store, G.verifier, report_id, G.grant(report_id),
                                        reader_key=reader.public_key, transit=transit)
    assert reader.receiver(answer["sender_key"], report_id).open(answer["sealed"]) == b"sealed"
    engine.dispose()

"""The storage service in a real nameko container against real RabbitMQ and PostgreSQL, with the
file store for real and the S3 store against moto's S3 server on loopback through the minio SDK.

What must not be lost or leaked: every evidence byte comes back identical; the store and the
database hold ciphertext only; evidence_stored reaches an outside consumer and matches its
contract; every read is recorded.
"""
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import pika
import pytest
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.grants import CommandSigner, GrantSigner
from wbs_plumbing.migrations import schema_differences
from wbs_plumbing.rpc import RoutedRpcProxy

from storage.models import Base, ContentRead, Evidence, ReportContent, RetentionRecord
from storage.service import StorageService

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"
MiB = 1024 * 1024


def grant(config, report_id, scope=("content", "evidence", "messages"), **kwargs):
    """A read grant as verification signs it (same config, so the same development key)."""
    return GrantSigner.from_config(config).issue(sub="staff-7", case_id="case-7",
                                                  report_id=report_id, scope=scope, **kwargs)


def discard(proxy, config, report_id):
    """discard_report as intake asks it: with its signed command for this report."""
    command = CommandSigner.from_config(config, "intake").issue("discard_report", report_id=report_id)
    return proxy.storage.discard_report(report_id, command=command)


FILENAME = "bukti_CANARY_transfer.pdf"


class StorageClient:
    """Calls storage the way intake does: begin, chunks to the sticky route, finish."""

    name = "storage_client"
    storage = RoutedRpcProxy("storage")

    @rpc
    def upload(self, report_id, chunks, filename, media_type):
        began = self.storage.begin_evidence(report_id, filename, media_type)
        at = self.storage.route(began["route"])
        for chunk in chunks:
            at.append_evidence(began["upload_id"], chunk)
        return at.finish_evidence(began["upload_id"])


@pytest.fixture
def start(service_config, container_factory, request):
    """Start storage (and the client) with the given store; returns (config, proxy)."""
    containers, proxies = [], []

    def start(store="file", **overrides):
        # Most of these tests talk to the vault directly in plaintext, which production refuses
        # (REQUIRE_SEALED_TRANSIT is true by default); the sealed path has tests of its own.
        settings = {"UPLOAD_REAPER_INTERVAL_SECONDS": 0.2, "REQUIRE_SEALED_TRANSIT": False}
        if store == "s3":
            s3 = request.getfixturevalue("s3_server")
            settings.update(EVIDENCE_STORE="s3", S3_ENDPOINT=s3["endpoint"],
                            S3_ACCESS_KEY=s3["access_key"], S3_SECRET_KEY=s3["secret_key"],
                            S3_BUCKET=request.getfixturevalue("s3_bucket"), S3_SECURE=False,
                            S3_PART_SIZE=5 * MiB)
        settings.update(overrides)
        config = service_config("storage", **settings)
        container = container_factory(StorageService, config)
        container.start()
        client = container_factory(StorageClient, config)
        client.start()
        containers.extend([client, container])
        proxy_ctx = ClusterRpcProxy(config, timeout=30)
        proxies.append(proxy_ctx)
        return config, container, client, proxy_ctx.start()

    yield start
    for proxy_ctx in proxies:
        proxy_ctx.stop()
    # Stop before the test's database and vhost are dropped, so no worker outlives them.
    for container in containers:
        container.stop()


def rows(config, model):
    engine = create_engine(config["DATABASE_URL"])
    try:
        with Session(engine) as session:
            return list(session.scalars(select(model)))
    finally:
        engine.dispose()


def read_back(proxy, config, report_id, evidence_id):
    token = grant(config, report_id, scope=["evidence"])
    out, index = [], 0
    while True:
        chunk = proxy.storage.read_evidence_chunk(evidence_id, index, token)
        out.append(chunk["data"])
        if chunk["last"]:
            return b"".join(out)
        index += 1


def listen(uri, exchange, routing_key):
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, routing_key)
    return connection, channel, queue


@pytest.mark.parametrize("store", ["file", "s3"])
def test_three_chunks_through_rpc_come_back_byte_identical(start, store, caplog):
    caplog.set_level(logging.INFO)
    config, _container, _client, proxy = start(store)
    report_id = str(uuid.uuid4())
    chunks = [os.urandom(MiB), os.urandom(MiB), os.urandom(123_457)]
    data = b"".join(chunks)

    began = proxy.storage.begin_evidence(report_id, FILENAME, "application/pdf")
    assert {"upload_id", "route"} <= set(began) and began["route"].startswith("storage-")
    at = proxy[began["route"]]
    for chunk in chunks:
        at.append_evidence(began["upload_id"], chunk)
    result = at.finish_evidence(began["upload_id"])

    assert result["size_bytes"] == len(data)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert read_back(proxy, config, report_id, result["evidence_id"]) == data
    listed = proxy.storage.list_evidence(report_id, grant(config, report_id))
    assert listed == [{"evidence_id": result["evidence_id"], "size_bytes": len(data),
                       "sha256": result["sha256"], "filename": FILENAME,
                       "media_type": "application/pdf"}]

    content = json.dumps({"description": "NARRATIVE-CANARY"}).encode()
    proxy.storage.store_report_content(report_id, content)
    assert proxy.storage.read_report_content(report_id, grant(config, report_id)) == content

    # Only ciphertext at rest: no plaintext, no file name in the store or the database.
    (evidence,) = rows(config, Evidence)
    assert FILENAME.encode() not in evidence.sealed_meta
    if store == "file":
        blobs = [p.read_bytes() for p in Path(config["WBS_DATA_DIR"], "evidence").rglob("*")
                 if p.is_file()]
    else:
        st = _container.extensions  # the live store of the running service
        (objects,) = [e.store for e in st if e.__class__.__name__ == "Objects"]
        names = [o.object_name for o in objects.client.list_objects(objects.bucket)]
        assert evidence.object_key in names and report_id not in " ".join(names)
        blobs = [b"".join(objects.read_stream(n)) for n in names]
    (content_row,) = rows(config, ReportContent)  # the content is sealed in its row
    assert len(blobs) == 1 and content_row.object_key is None
    for blob in [*blobs, content_row.sealed]:
        assert blob[:5] == b"WBSE\x01"
        assert b"CANARY" not in blob and data[:64] not in blob and data[-64:] not in blob

    reads = rows(config, ContentRead)
    assert sorted(r.object_id for r in reads) == sorted(
        [result["evidence_id"]] * 3 + ["evidence-list", "content"])
    assert all((r.staff_id, r.case_id) == ("staff-7", "case-7") for r in reads)
    # a refusal is logged (as expected), but never with content or file names
    with pytest.raises(RemoteError):
        proxy.storage.begin_evidence("bad-id", FILENAME, "application/pdf")
    assert "CANARY" not in caplog.text and FILENAME not in caplog.text


def test_routed_proxy_client_uploads_like_intake(start):
    config, _container, client, proxy = start("file")
    report_id = str(uuid.uuid4())
    chunks = [os.urandom(MiB), os.urandom(MiB), b"tail"]
    with entrypoint_hook(client, "upload") as upload:
        result = upload(report_id, chunks, "x.bin", "application/octet-stream")
    assert read_back(proxy, config, report_id, result["evidence_id"]) == b"".join(chunks)


def test_evidence_stored_reaches_an_outside_consumer_and_matches_the_contract(start):
    config, _container, _client, proxy = start("file")
    connection, channel, queue = listen(config["AMQP_URI"], "storage.events", "evidence_stored")
    try:
        report_id = str(uuid.uuid4())
        began = proxy.storage.begin_evidence(report_id, FILENAME, "image/png")
        proxy[began["route"]].append_evidence(began["upload_id"], b"\x89PNG" + os.urandom(1000))
        result = proxy[began["route"]].finish_evidence(began["upload_id"])
        got = []

        def fetch():
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method:
                got.append((method, properties, body))
            return got

        wait_until(fetch, timeout=15)
        method, properties, body = got[0]
        event = json.loads(body)
        validate_event("evidence_stored", event)
        assert method.routing_key == "evidence_stored" and properties.delivery_mode == 2
        assert {k: event[k] for k in ("report_id", "evidence_id", "size_bytes", "sha256")} == {
            "report_id": report_id, **result}
        assert b"CANARY" not in body and b"PNG" not in body
    finally:
        connection.close()


def test_refusals_reach_the_caller_as_contract_errors(start):
    config, _container, _client, proxy = start("file")
    report_id = str(uuid.uuid4())
    began = proxy.storage.begin_evidence(report_id, "f.txt", "text/plain")
    at = proxy[began["route"]]
    with pytest.raises(RemoteError) as err:
        at.append_evidence(began["upload_id"], b"x" * (MiB + 1))
    assert err.value.exc_type == "Invalid"
    at.append_evidence(began["upload_id"], b"ok")
    at.abort_evidence(began["upload_id"])
    with pytest.raises(RemoteError) as err:
        at.append_evidence(began["upload_id"], b"late")
    assert err.value.exc_type == "NotFound"
    with pytest.raises(RemoteError) as err:
        proxy.storage.begin_evidence("not-a-uuid", "f", "text/plain")
    assert err.value.exc_type == "Invalid"
    unknown = str(uuid.uuid4())
    with pytest.raises(RemoteError) as err:
        proxy.storage.read_report_content(unknown, grant(config, unknown))
    assert err.value.exc_type == "NotFound"
    with pytest.raises(RemoteError) as err:
        proxy.storage.read_evidence_chunk(unknown, 0, grant(config, unknown))
    assert err.value.exc_type == "NotFound"
    assert rows(config, Evidence) == []
    assert not list(Path(config["WBS_DATA_DIR"], "evidence").rglob("*/*[0-9a-f]"))


def test_reads_need_verifications_grant_and_are_recorded_with_it(start):
    """Plaintext only for a grant verification signed for this report and this kind of read;
    a refusal is Forbidden, returns nothing and is not a read."""
    config, _container, _client, proxy = start("file")
    report_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    proxy.storage.store_report_content(report_id, b"secret CANARY")
    began = proxy.storage.begin_evidence(report_id, FILENAME, "application/pdf")
    proxy[began["route"]].append_evidence(began["upload_id"], b"evidence CANARY")
    evidence = proxy[began["route"]].finish_evidence(began["upload_id"])
    from storage_fakes import TestGrants
    forged = TestGrants().grant(report_id)  # a valid-looking grant from another key
    bad_grants = [{"staff_id": "s", "case_id": "c"}, None, "x.y", forged, grant(config, other),
                  grant(config, report_id, ttl_seconds=-5)]
    for bad in bad_grants + [grant(config, report_id, scope=["evidence", "messages"])]:
        with pytest.raises(RemoteError) as err:
            proxy.storage.read_report_content(report_id, bad)
        assert err.value.exc_type == "Forbidden" and "CANARY" not in str(err.value)
    for bad in bad_grants + [grant(config, report_id, scope=["content"])]:
        with pytest.raises(RemoteError) as err:
            proxy.storage.read_evidence_chunk(evidence["evidence_id"], 0, bad)
        assert err.value.exc_type == "Forbidden"
        with pytest.raises(RemoteError) as err:
            proxy.storage.list_evidence(report_id, bad)
        assert err.value.exc_type == "Forbidden"
    assert rows(config, ContentRead) == []

    token = GrantSigner.from_config(config).issue(sub="inspector-42", case_id="case-9",
                                                  report_id=report_id, scope=["content"])
    assert proxy.storage.read_report_content(report_id, token) == b"secret CANARY"
    (read,) = rows(config, ContentRead)
    claims = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (read.staff_id, read.case_id, read.grant_id, read.object_id) == (
        "inspector-42", "case-9", claims["jti"], "content")


def test_discard_report_shreds_everything(start):
    config, _container, _client, proxy = start("file")
    report_id = str(uuid.uuid4())
    proxy.storage.store_report_content(report_id, b"content")
    began = proxy.storage.begin_evidence(report_id, "f.txt", "text/plain")
    proxy[began["route"]].append_evidence(began["upload_id"], b"evidence")
    result = proxy[began["route"]].finish_evidence(began["upload_id"])
    assert discard(proxy, config, report_id) is None
    with pytest.raises(RemoteError):
        proxy.storage.read_report_content(report_id, grant(config, report_id))
    with pytest.raises(RemoteError):
        proxy.storage.read_evidence_chunk(result["evidence_id"], 0, grant(config, report_id))
    objects = [p for p in Path(config["WBS_DATA_DIR"], "evidence").rglob("*") if p.is_file()]
    assert objects == []
    discard(proxy, config, report_id)  # idempotent


def test_idle_uploads_are_reaped(start):
    config, _container, _client, proxy = start("file", UPLOAD_IDLE_SECONDS=0.5)
    began = proxy.storage.begin_evidence(str(uuid.uuid4()), "f.txt", "text/plain")
    proxy[began["route"]].append_evidence(began["upload_id"], b"partial")

    incoming = Path(config["WBS_DATA_DIR"], "evidence", ".incoming")
    assert len(list(incoming.iterdir())) == 1  # the partial ciphertext being written
    wait_until(lambda: not list(incoming.iterdir()), timeout=10)
    with pytest.raises(RemoteError) as err:
        proxy[began["route"]].append_evidence(began["upload_id"], b"more")
    assert err.value.exc_type == "NotFound"


def test_s3_bucket_is_created_if_missing(start, s3_server):
    bucket = f"wbs-fresh-{uuid.uuid4().hex[:10]}"
    config, _container, _client, proxy = start("s3", S3_BUCKET=bucket)
    report_id = str(uuid.uuid4())
    proxy.storage.store_report_content(report_id, b"hello")
    assert proxy.storage.read_report_content(report_id, grant(config, report_id)) == b"hello"


def test_development_key_file_is_generated_with_mode_0600(start):
    config, _container, _client, proxy = start("file")
    key_file = Path(config["WBS_DATA_DIR"], "keys.json")
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600


def test_production_refuses_a_generated_key_file(service_config, container_factory, tmp_path):
    from storage.crypto import KeyFileError, KeyRing
    key_file = tmp_path / "keys.json"
    KeyRing.load(str(key_file), production=False)
    config = service_config("storage", WBS_ENV="production", WBS_KEY_FILE=str(key_file),
                            WBS_GRANT_PUBLIC_KEY="11" * 32, WBS_INTAKE_COMMAND_PUBLIC_KEY="11" * 32,
                            WBS_ADMIN_COMMAND_PUBLIC_KEY="11" * 32, WBS_NOTIFICATION_COMMAND_PUBLIC_KEY="11" * 32)
    container = container_factory(StorageService, config)
    with pytest.raises(KeyFileError):
        container.start()


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_migrated_schema_equals_the_models(pg_url, tmp_path, database):
    url = pg_url if database == "postgresql" else f"sqlite:///{tmp_path / 'storage.db'}"
    assert schema_differences(ALEMBIC_DIR, url, Base.metadata) == []


def test_sealed_transit_keeps_content_off_the_broker(start):
    """Everything sensitive crosses RabbitMQ sealed: a wiretap on every RPC message (requests
    and replies) finds no narrative, no evidence bytes, no file name."""
    from wbs_plumbing.transit import TransitKeyPair, TransitSender

    config, _container, _client, proxy = start("file")
    connection, channel, tap = listen(config["AMQP_URI"], "nameko-rpc", "#")
    channel.exchange_declare("nameko-rpc", "topic", durable=True)
    try:
        report_id = str(uuid.uuid4())
        canary = b"KANARI-" + uuid.uuid4().hex.encode()
        evidence = canary + os.urandom(MiB + 10) + canary
        content = b'{"description": "' + canary + b'"}'

        opened = proxy.storage.open_transit()
        at = proxy[opened["route"]]
        sender = TransitSender(opened["transit_key"], report_id)
        at.store_report_content(report_id, sender.seal(content), sender_key=sender.public_key)
        began = at.begin_evidence(report_id, sender.seal(canary + b".pdf"),
                                  sender.seal(b"application/pdf"), sender_key=sender.public_key)
        assert began["route"] == opened["route"]
        for i in range(0, len(evidence), MiB):
            at.append_evidence(began["upload_id"], sender.seal(evidence[i:i + MiB]))
        result = at.finish_evidence(began["upload_id"])

        reader = TransitKeyPair()
        answer = proxy.storage.read_report_content(report_id, grant(config, report_id), reader_key=reader.public_key)
        assert reader.receiver(answer["sender_key"], report_id).open(answer["sealed"]) == content
        listing = proxy.storage.list_evidence(report_id, grant(config, report_id), reader_key=reader.public_key)
        (item,) = json.loads(reader.receiver(listing["sender_key"], report_id).open(listing["sealed"]))
        assert item["filename"] == (canary + b".pdf").decode()
        back, index = [], 0
        while True:
            chunk = proxy.storage.read_evidence_chunk(result["evidence_id"], index, grant(config, report_id),
                                                      reader_key=reader.public_key)
            back.append(reader.receiver(chunk["sender_key"], f"{result['evidence_id']}:{index}")
                        .open(chunk["sealed"]))
            if chunk["last"]:
                break
            index += 1
        assert b"".join(back) == evidence

        seen = 0
        while True:
            method, properties, body = channel.basic_get(tap, auto_ack=True)
            if method is None:
                break
            seen += 1
            assert canary not in body and canary.hex().encode() not in body, method.routing_key
        assert seen >= 8  # the requests above really went through the tapped exchange

        # control: the wiretap does see plaintext when a caller does not seal
        proxy.storage.store_report_content(report_id, b"PLAIN-" + canary)
        bodies = []
        while True:
            method, _properties, body = channel.basic_get(tap, auto_ack=True)
            if method is None:
                break
            bodies.append(body)
        assert any(b"PLAIN-" + canary in body for body in bodies)
    finally:
        connection.close()


def test_first_use_race_on_postgresql_gives_one_data_key(pg_url):
    """Content and evidence of a new report can arrive together on two workers: both must end up
    with the same data key (the loser of the primary-key race reads the winner's)."""
    import eventlet
    from storage import crypto, domain
    from wbs_plumbing.db import make_engine
    from wbs_plumbing.migrations import migrate

    from storage_fakes import transaction_factory

    migrate(ALEMBIC_DIR, pg_url)
    engine = make_engine(pg_url)
    try:
        tx = transaction_factory(engine)
        ring = crypto.KeyRing.from_document(crypto.new_key_document())
        report_id = str(uuid.uuid4())
        first = Session(engine)
        key1 = domain.ensure_data_key(first, ring, report_id)  # inserted, not yet committed

        def second():
            with tx() as session:
                return domain.ensure_data_key(session, ring, report_id)

        waiter = eventlet.spawn(second)
        eventlet.sleep(0.5)  # the second insert now waits on the first transaction's row
        assert not waiter.dead
        first.commit()
        first.close()
        key2 = waiter.wait()
        assert key2 == key1
    finally:
        engine.dispose()


def test_instance_gone_mid_upload_fails_fast_and_leaves_nothing(start):
    """The storage instance stops mid-upload: its route disappears with it, the next chunk fails
    at once (no hang), and the partial ciphertext is removed."""
    import time
    from nameko.exceptions import UnknownService

    config, container, _client, proxy = start("file")
    began = proxy.storage.begin_evidence(str(uuid.uuid4()), "f.txt", "text/plain")
    proxy[began["route"]].append_evidence(began["upload_id"], os.urandom(1000))
    container.stop()
    started = time.monotonic()
    with pytest.raises(UnknownService):
        proxy[began["route"]].append_evidence(began["upload_id"], b"more")
    assert time.monotonic() - started < 10
    assert list(Path(config["WBS_DATA_DIR"], "evidence", ".incoming").iterdir()) == []
    assert rows(config, Evidence) == []


# -- messages, retention, object lock (issue 3) -------------------------------------------------

def publish(uri, exchange, routing_key, body):
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.basic_publish(exchange, routing_key, json.dumps(body).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   delivery_mode=2))
    finally:
        connection.close()


def test_messages_over_rpc_sealed_both_ways(start):
    from wbs_plumbing.transit import TransitKeyPair, TransitSender

    config, _container, _client, proxy = start("file")
    report_id, m1, m2 = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    opened = proxy.storage.open_transit()
    at = proxy[opened["route"]]
    for message_id, text in ((m1, b"Mohon lampirkan kontrak CANARY"), (m2, b"internal")):
        sender = TransitSender(opened["transit_key"], report_id)
        assert at.store_message(report_id, message_id, sender.seal(text),
                                sender_key=sender.public_key) is None
    assert proxy.storage.read_messages(report_id, [m2, m1], grant(config, report_id)) == [
        {"message_id": m2, "text": "internal"},
        {"message_id": m1, "text": "Mohon lampirkan kontrak CANARY"}]
    reporter = grant(config, report_id, scope=["messages"], message_ids=[m1])
    reader = TransitKeyPair()
    answer = proxy.storage.read_messages(report_id, [m1], reporter, reader_key=reader.public_key)
    assert json.loads(reader.receiver(answer["sender_key"], report_id).open(answer["sealed"])) == [
        {"message_id": m1, "text": "Mohon lampirkan kontrak CANARY"}]
    with pytest.raises(RemoteError) as err:
        proxy.storage.read_messages(report_id, [m2], reporter)
    assert err.value.exc_type == "Forbidden"


SMALL_FILE = {"filename": b"bukti.txt", "media_type": b"text/plain", "data": b"evidence CANARY"}


def _retention_events(report_id, case_id, at):
    status = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": at,
              "case_id": case_id, "report_id": report_id, "from_state": "verification",
              "to_state": "not_actionable"}
    return status


CASE_STATES = {}  # report id -> what the stand-in verification answers


class VerificationStandIn:
    """verification's ``case_retention_state``, answering what the test decided."""

    name = "verification"

    @rpc
    def case_retention_state(self, report_id):
        return CASE_STATES.get(report_id)


@pytest.mark.parametrize("store", ["file", "s3"])
def test_retention_from_verification_events_to_report_shredded(start, store, container_factory):
    """verification's events make reports candidates; only what verification confirms is shredded
    (a forged end state is not); legal hold blocks it; run_retention needs the admin's signed
    command, shreds, removes every object version and announces report_shredded (report id only)."""
    config, container, _client, proxy = start(store, KEY_ROTATION_GRACE_SECONDS=0)
    container_factory(VerificationStandIn, config).start()
    uri = config["AMQP_URI"]
    connection, channel, queue = listen(uri, "storage.events", "report_shredded")
    try:
        reports = {name: str(uuid.uuid4()) for name in ("due", "held", "forged")}
        CASE_STATES.update({
            reports["due"]: {"state": "not_actionable", "since": "2025-01-10T08:00:00Z", "legal_hold": False},
            reports["held"]: {"state": "not_actionable", "since": "2025-01-10T08:00:00Z", "legal_hold": True},
            reports["forged"]: {"state": "investigation", "since": "2025-01-10T08:00:00Z", "legal_hold": False},
        })
        for report_id in reports.values():
            proxy.storage.store_report(report_id, b"narrative CANARY", [SMALL_FILE])  # 1 object
            proxy.storage.store_report_content(report_id, b"narrative CANARY v2")
        case_id = str(uuid.uuid4())
        for name, report_id in reports.items():
            event = _retention_events(report_id, case_id, "2025-01-10T08:00:00Z")
            publish(uri, "verification.events", "case_status_changed", event)
            publish(uri, "verification.events", "case_status_changed", event)  # redelivered
        publish(uri, "verification.events", "legal_hold_changed", {
            "schema_version": 1, "event_id": str(uuid.uuid4()),
            "occurred_at": "2025-01-11T08:00:00Z", "case_id": case_id,
            "report_id": reports["held"], "legal_hold": True})

        def scheduled():
            records = {r.report_id: r for r in rows(config, RetentionRecord)}
            return (len(records) == 3 and records[reports["held"]].legal_hold
                    and all(r.shred_after is not None for r in records.values()))
        wait_until(scheduled, timeout=20)

        with pytest.raises(RemoteError) as err:
            proxy.storage.run_retention()  # broker access alone is not enough
        assert err.value.exc_type == "Forbidden"
        intake_says = CommandSigner.from_config(config, "intake").issue("run_retention")
        with pytest.raises(RemoteError) as err:
            proxy.storage.run_retention(command=intake_says)  # nor another service's key
        assert err.value.exc_type == "Forbidden"
        admin = CommandSigner.from_config(config, "admin")
        assert proxy.storage.run_retention(command=admin.issue("run_retention")) == {"shredded": [reports["due"]]}
        assert proxy.storage.read_report_content(
            reports["forged"], grant(config, reports["forged"])) == b"narrative CANARY v2"
        with pytest.raises(RemoteError) as err:
            proxy.storage.read_report_content(reports["due"], grant(config, reports["due"]))
        assert err.value.exc_type == "NotFound"
        assert proxy.storage.read_report_content(
            reports["held"], grant(config, reports["held"])) == b"narrative CANARY v2"

        got = []

        def fetch():
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method:
                got.append(json.loads(body))
            return got
        wait_until(fetch, timeout=15)
        validate_event("report_shredded", got[0])
        assert got[0]["report_id"] == reports["due"]
        assert set(got[0]) == {"schema_version", "event_id", "occurred_at", "report_id"}

        (objects,) = [e.store for e in container.extensions if e.__class__.__name__ == "Objects"]
        if store == "file":
            remaining = [p for p in Path(config["WBS_DATA_DIR"], "evidence").rglob("*")
                         if p.is_file()]
        else:
            remaining = list(objects.client.list_objects(objects.bucket, include_version=True))
        assert len(remaining) == 2  # the held and the unconfirmed report's evidence only
    finally:
        connection.close()


def test_s3_object_lock_governance_retention_and_bypassed_shredding(start, s3_server):
    """A bucket created with object lock: the store finds it, writes with governance-mode
    retention, and deletes every version with the governance bypass. moto accepts the retention
    headers but cannot read retention back, so the lock date is checked on what the store sends."""
    from minio import Minio
    from minio.commonconfig import GOVERNANCE

    bucket = f"wbs-locked-{uuid.uuid4().hex[:10]}"
    client = Minio(s3_server["endpoint"], access_key=s3_server["access_key"],
                   secret_key=s3_server["secret_key"], secure=False)
    client.make_bucket(bucket, object_lock=True)
    config, container, _client, proxy = start("s3", S3_BUCKET=bucket, S3_OBJECT_LOCK_DAYS=30)
    (objects,) = [e.store for e in container.extensions if e.__class__.__name__ == "Objects"]
    assert objects.object_lock is True
    retention = objects.retention_for_new_object()
    assert retention.mode == GOVERNANCE
    from datetime import datetime, timedelta, timezone
    assert abs(retention.retain_until_date - (datetime.now(timezone.utc) + timedelta(days=30))) < timedelta(minutes=5)

    report_id = str(uuid.uuid4())
    proxy.storage.store_report(report_id, b"locked CANARY", [SMALL_FILE])
    assert proxy.storage.read_report_content(report_id, grant(config, report_id)) == b"locked CANARY"
    versions = list(client.list_objects(bucket, include_version=True))
    assert len(versions) == 1  # the evidence file, written under retention
    discard(proxy, config, report_id)
    assert list(client.list_objects(bucket, include_version=True)) == []


def test_s3_bucket_without_object_lock_writes_plainly(start):
    config, container, _client, proxy = start("s3")
    (objects,) = [e.store for e in container.extensions if e.__class__.__name__ == "Objects"]
    assert objects.object_lock is False and objects.retention_for_new_object() is None


def test_wbs_retention_run_calls_storage(start, container_factory):
    """`wbs retention run` signs with the admin key of its data dir; storage shreds what
    verification confirms, on its own clock."""
    import subprocess
    import sys
    config, _container, _client, proxy = start("file", KEY_ROTATION_GRACE_SECONDS=0)
    container_factory(VerificationStandIn, config).start()
    report_id = str(uuid.uuid4())
    proxy.storage.store_report_content(report_id, b"x")
    publish(config["AMQP_URI"], "verification.events", "case_status_changed",
            _retention_events(report_id, str(uuid.uuid4()), "2025-01-10T08:00:00Z"))
    wait_until(lambda: rows(config, RetentionRecord), timeout=20)
    wbs = str(Path(sys.executable).parent / "wbs")
    env = {"AMQP_URI": config["AMQP_URI"], "PATH": "/usr/bin:/bin", "WBS_DATA_DIR": config["WBS_DATA_DIR"]}
    CASE_STATES[report_id] = {"state": "investigation", "since": "2025-01-10T08:00:00Z", "legal_hold": False}
    early = subprocess.run([wbs, "retention", "run"], capture_output=True, text=True, timeout=60, env=env)
    assert early.returncode == 0 and "shredded 0 report(s)" in early.stdout, early.stderr
    CASE_STATES[report_id] = {"state": "not_actionable", "since": "2025-01-10T08:00:00Z", "legal_hold": False}
    done = subprocess.run([wbs, "retention", "run"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "shredded 1 report(s)" in done.stdout and report_id in done.stdout

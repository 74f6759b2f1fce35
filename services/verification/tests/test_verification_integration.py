"""The verification service in a real nameko container, against real RabbitMQ and PostgreSQL.

Storage is replaced by a tiny nameko service named "storage" implementing the three RPCs the
console uses, so these tests exercise the real RPC path (msgpack, bytes) without the vault.
Events are published and observed from outside with pika, as another system would.
"""
import json
import time

import eventlet
import uuid

import pika
import pyotp
import pytest
import requests
import sqlalchemy
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook

from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.migrations import schema_differences
from wbs_plumbing.reliable import DEAD_LETTER_QUEUE
from wbs_plumbing.transit import TransitSender

from verification.models import Base
from verification.service import VerificationService

from pathlib import Path

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"

NARRATIVE = "Panitia pengadaan memenangkan perusahaan milik saudaranya."
EVIDENCE = {"ev-1": (b"A" * 10 + b"B" * 10 + b"C" * 5, "bukti kontrak.pdf", "application/pdf")}
CHUNK = 10  # tiny chunks so the download really takes several RPCs


def sealed_for(reader_key, context, data: bytes) -> dict:
    """What storage answers: `data` sealed to the reader's transit key (wbs_plumbing.transit)."""
    sender = TransitSender(reader_key, context)
    return {"sender_key": sender.public_key, "sealed": sender.seal(data)}


class FakeStorage:
    """Stand-in for the vault: same RPC names and shapes, content in memory, reads recorded."""

    name = "storage"
    reads = []

    @rpc
    def read_report_content(self, report_id, reader, reader_key):
        FakeStorage.reads.append(("content", report_id, reader))
        return sealed_for(reader_key, report_id, json.dumps({
            "title": "Benturan kepentingan pengadaan",
            "description": NARRATIVE,
            "parties": [{"name": "Budi S.", "position": "Panitia pengadaan", "unit": "dit-smp"}],
            "reporter": {"relationship": "employee", "involved": False, "identity": {"name": "RAHASIA-PELAPOR"}},
        }).encode())

    @rpc
    def list_evidence(self, report_id, reader, reader_key):
        FakeStorage.reads.append(("list", report_id, reader))
        return sealed_for(reader_key, report_id, json.dumps([
            {"evidence_id": eid, "size_bytes": len(data), "sha256": "00" * 32, "filename": name,
             "media_type": media} for eid, (data, name, media) in EVIDENCE.items()]).encode())

    @rpc
    def read_evidence_chunk(self, evidence_id, index, reader, reader_key):
        FakeStorage.reads.append(("chunk", evidence_id, index, reader))
        data = EVIDENCE[evidence_id][0]
        piece = data[index * CHUNK:(index + 1) * CHUNK]
        return {**sealed_for(reader_key, f"{evidence_id}:{index}", piece), "last": (index + 1) * CHUNK >= len(data)}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def config(service_config, insecure_fast_password_hashing):
    return service_config("verification", **insecure_fast_password_hashing["config"])


@pytest.fixture
def verification(container_factory, config):
    container = container_factory(VerificationService, config)
    container.start()
    return container


@pytest.fixture
def storage(container_factory, config):
    FakeStorage.reads = []
    container = container_factory(FakeStorage, {k: config[k] for k in ("AMQP_URI", "serializer", "ACCEPT")})
    container.start()
    return container


@pytest.fixture
def db(config):
    engine = sqlalchemy.create_engine(config["DATABASE_URL"], poolclass=sqlalchemy.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def broker(rabbit_uri):
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_uri))
    channel = connection.channel()
    yield channel
    connection.close()


def watch(channel, exchange="verification.events"):
    """An exclusive queue bound to every event on ``exchange``; returns a collector."""
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, routing_key="#")
    seen = []

    def collect(count, timeout=15):
        def enough():
            while True:
                method, _props, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                seen.append((method.routing_key, json.loads(body)))
            return len(seen) >= count
        wait_until(enough, timeout)
        return list(seen)

    return collect


def report_event(report_id=None, unit="dit-smp", **extra):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
            "report_id": report_id or str(uuid.uuid4()), "unit": unit, "category": "conflict_of_interest",
            "evidence_count": 1}
    body.update(extra)
    return body


def publish(channel, body, routing_key="report_submitted"):
    channel.exchange_declare("intake.events", exchange_type="topic", durable=True)
    channel.basic_publish("intake.events", routing_key, json.dumps(body).encode(),
                          pika.BasicProperties(content_type="application/json", content_encoding="utf-8",
                                               delivery_mode=2))


def count(db, sql, **params):
    with db.connect() as connection:
        return connection.execute(sqlalchemy.text(sql), params).scalar()


def case_for(db, report_id):
    found = count(db, "SELECT case_id FROM cases WHERE report_id = :r", r=report_id)
    return None if found is None else str(found)


def seed(container):
    with entrypoint_hook(container, "seed_demo") as seed_demo:
        return seed_demo()


def login(base, account, at=None):
    code = pyotp.TOTP(account["totp_secret"]).at(at or time.time())
    answer = requests.post(f"{base}/api/v1/auth/login", timeout=10,
                           json={"username": account["username"], "password": account["password"], "otp": code})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def base_url(config):
    return f"http://{config['WEB_SERVER_ADDRESS']}"


# --------------------------------------------------------------------------- tests


def test_migrated_schema_equals_the_models(pg_url):
    assert schema_differences(ALEMBIC_DIR, pg_url, Base.metadata) == []


def test_report_submitted_twice_opens_one_case_and_announces_valid_events(verification, broker, db):
    demo = seed(verification)
    collect = watch(broker)
    event = report_event()
    publish(broker, event)
    publish(broker, event)                                          # the same delivery again
    publish(broker, dict(event, event_id=str(uuid.uuid4())))        # a re-published duplicate

    events = collect(2)
    wait_until(lambda: count(db, "SELECT count(*) FROM processed_events") == 2)
    time.sleep(1.0)  # give any wrongly duplicated event time to show up
    events = collect(2)
    assert count(db, "SELECT count(*) FROM cases WHERE report_id = :r", r=event["report_id"]) == 1
    assert [t for t, _ in events] == ["case_opened", "case_assigned"]
    for event_type, body in events:
        validate_event(event_type, body)
    opened, assigned = events[0][1], events[1][1]
    assert opened["report_id"] == event["report_id"] and opened["state"] == "received"
    assert assigned["case_id"] == opened["case_id"]
    assert assigned["inspector_id"] == demo["inspector"]["staff_id"]


def test_poison_report_submitted_is_dead_lettered(verification, broker, db):
    publish(broker, {"schema_version": 1, "event_id": str(uuid.uuid4()), "report_id": str(uuid.uuid4())})

    def dead_letter():
        method, props, body = broker.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
        return (method, props, body) if method else None

    broker.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    method, props, body = wait_until(dead_letter, 15)
    assert "report_submitted" in props.headers["x-wbs-original-queue"]
    assert "x-wbs-reason" in props.headers
    assert count(db, "SELECT count(*) FROM cases") == 0


def test_inspector_signs_in_lists_reads_transitions_and_downloads(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event = report_event()
    publish(broker, event)
    case_id = wait_until(lambda: case_for(db, event["report_id"]))

    auth = login(base, demo["inspector"])
    cases = requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10)
    assert cases.status_code == 200
    assert [c["case_id"] for c in cases.json()["cases"]] == [case_id]
    assert requests.get(f"{base}/api/v1/cases?state=closed", headers=auth, timeout=10).json() == {"cases": []}

    detail = requests.get(f"{base}/api/v1/cases/{case_id}", headers=auth, timeout=10)
    assert detail.status_code == 200, detail.text
    case = detail.json()
    assert case["narrative"] == NARRATIVE
    assert case["parties"][0]["name"] == "Budi S."
    assert case["evidence"][0]["evidence_id"] == "ev-1"
    assert case["state"]["code"] == "received" and case["state"]["label"] == "Diterima"
    assert case["assignee"]["username"] == "inspektur"
    assert "RAHASIA-PELAPOR" not in detail.text
    assert ("content", event["report_id"], {"staff_id": demo["inspector"]["staff_id"], "case_id": case_id}) in FakeStorage.reads

    moved = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                          json={"to": "verification"})
    assert moved.status_code == 200 and moved.json()["state"]["code"] == "verification"
    forbidden = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                              json={"to": "follow_up"})
    assert forbidden.status_code == 409 and forbidden.json()["error"]["code"] == "transition_forbidden"
    no_reason = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                              json={"to": "not_actionable"})
    assert no_reason.status_code == 400
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"

    download = requests.get(f"{base}/api/v1/cases/{case_id}/evidence/ev-1", headers=auth, timeout=10, stream=True)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.content == EVIDENCE["ev-1"][0]
    assert [r[2] for r in FakeStorage.reads if r[0] == "chunk"] == [0, 1, 2]
    missing = requests.get(f"{base}/api/v1/cases/{case_id}/evidence/ev-404", headers=auth, timeout=10)
    assert missing.status_code == 404

    assert requests.post(f"{base}/api/v1/auth/logout", headers=auth, timeout=10).status_code == 204
    assert requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10).status_code == 401


def test_case_outside_reach_is_404_exactly_like_a_missing_one(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event = report_event()
    publish(broker, event)
    case_id = wait_until(lambda: case_for(db, event["report_id"]))
    with entrypoint_hook(verification, "add_staff") as add_staff:
        other = add_staff("lain", "lain@example.org", "itjen", "inspector")

    auth = login(base, other)
    assert requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10).json() == {"cases": []}
    foreign = requests.get(f"{base}/api/v1/cases/{case_id}", headers=auth, timeout=10)
    missing = requests.get(f"{base}/api/v1/cases/{uuid.uuid4()}", headers=auth, timeout=10)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    move = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                         json={"to": "verification"})
    assert move.status_code == 404
    assert not [r for r in FakeStorage.reads if r[2] == {"staff_id": other["staff_id"], "case_id": case_id}]
    # the supervisor of itjen reaches it
    sup = login(base, demo["supervisor"])
    assert requests.get(f"{base}/api/v1/cases/{case_id}", headers=sup, timeout=10).status_code == 200


def test_login_refuses_wrong_factors_and_a_replayed_code(verification, config):
    demo = seed(verification)
    base = base_url(config)
    account = demo["inspector"]
    code = pyotp.TOTP(account["totp_secret"]).now()
    bad = requests.post(f"{base}/api/v1/auth/login", timeout=10,
                        json={"username": account["username"], "password": "wrong", "otp": code})
    assert bad.status_code == 401
    good = requests.post(f"{base}/api/v1/auth/login", timeout=10,
                         json={"username": account["username"], "password": account["password"], "otp": code})
    assert good.status_code == 200
    replay = requests.post(f"{base}/api/v1/auth/login", timeout=10,
                           json={"username": account["username"], "password": account["password"], "otp": code})
    assert replay.status_code == 401 and replay.json() == bad.json()
    assert requests.post(f"{base}/api/v1/auth/login", data="not json", timeout=10).status_code == 400
    assert requests.get(f"{base}/api/v1/cases", timeout=10).status_code == 401


def test_console_pages_sign_in_list_case_and_transition(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event = report_event()
    publish(broker, event)
    case_id = wait_until(lambda: case_for(db, event["report_id"]))

    browser = requests.Session()
    assert browser.get(f"{base}/", allow_redirects=False, timeout=10).headers["Location"] == "/login"
    form = browser.get(f"{base}/login", timeout=10)
    assert form.status_code == 200 and "Kata sandi" in form.text
    csp = form.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "http" not in csp
    account = demo["inspector"]
    signed = browser.post(f"{base}/login", allow_redirects=False, timeout=10, data={
        "username": account["username"], "password": account["password"],
        "otp": pyotp.TOTP(account["totp_secret"]).now()})
    assert signed.status_code == 303
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    listing = browser.get(f"{base}/", timeout=10)
    assert listing.status_code == 200 and case_id in listing.text and "Diterima" in listing.text
    page = browser.get(f"{base}/cases/{case_id}", timeout=10)
    assert page.status_code == 200
    assert NARRATIVE in page.text and "Budi S." in page.text and f"/cases/{case_id}/evidence/ev-1" in page.text
    assert "RAHASIA-PELAPOR" not in page.text
    assert "<script" not in page.text and "https://" not in page.text

    moved = browser.post(f"{base}/cases/{case_id}/transitions", data={"to": "verification", "reason": ""},
                         allow_redirects=False, timeout=10)
    assert moved.status_code == 303
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"
    refused = browser.post(f"{base}/cases/{case_id}/transitions", data={"to": "closed"}, timeout=10)
    assert refused.status_code == 409
    cross_site = browser.post(f"{base}/cases/{case_id}/transitions", data={"to": "analysis"},
                              headers={"Origin": "https://evil.example"}, allow_redirects=False, timeout=10)
    assert cross_site.status_code == 303 and cross_site.headers["Location"] == "/login"
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"

    download = browser.get(f"{base}/cases/{case_id}/evidence/ev-1", timeout=10)
    assert download.status_code == 200 and download.content == EVIDENCE["ev-1"][0]
    browser.post(f"{base}/logout", timeout=10)
    assert browser.get(f"{base}/", allow_redirects=False, timeout=10).status_code == 303


def test_rpc_directory(verification):
    with entrypoint_hook(verification, "add_unit") as add_unit:
        assert add_unit("itjen", "Inspektorat Jenderal", None, True)["code"] == "itjen"
        add_unit("dit-a", "Direktorat A", parent="itjen")
    with entrypoint_hook(verification, "list_units") as list_units:
        assert {u["code"]: u["parent"] for u in list_units()} == {"itjen": None, "dit-a": "itjen"}
    with entrypoint_hook(verification, "add_staff") as add_staff:
        staff = add_staff("ani", "ani@example.org", "dit-a", "supervisor")
    assert staff["otpauth_uri"].startswith("otpauth://totp/") and staff["password"]
    with entrypoint_hook(verification, "get_recipient") as get_recipient:
        assert get_recipient(staff["staff_id"]) == {"email": "ani@example.org", "display_name": "ani", "language": "id"}
        assert get_recipient(str(uuid.uuid4())) is None
    with entrypoint_hook(verification, "seed_demo") as seed_demo:
        first, second = seed_demo(), seed_demo()
    assert first["inspector"]["staff_id"] == second["inspector"]["staff_id"]


def test_the_same_code_sent_in_parallel_signs_in_once(verification, config):
    demo = seed(verification)
    base = base_url(config)
    account = demo["supervisor"]
    body = {"username": account["username"], "password": account["password"],
            "otp": pyotp.TOTP(account["totp_secret"]).now()}
    pool = eventlet.GreenPool()
    statuses = list(pool.imap(lambda _: requests.post(f"{base}/api/v1/auth/login", json=body, timeout=20).status_code,
                              range(4)))
    assert sorted(statuses) == [200, 401, 401, 401]

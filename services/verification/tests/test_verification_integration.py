"""The verification service in a real nameko container, against real RabbitMQ and PostgreSQL.

Storage is replaced by the shared fake (tests/fakes.py), a nameko service named "storage" with
storage's own entrypoints, so these tests exercise the real RPC path (msgpack, bytes, sealed
transit, grants) without the vault; what it served and stored is in `VAULT`.
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
from nameko.testing.services import entrypoint_hook
from tests.signed import signed_hook

from tests.fakes import VAULT, FakeStorage
from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.migrations import schema_differences
from wbs_plumbing.reliable import DEAD_LETTER_QUEUE
from wbs_plumbing.grants import GrantVerifier

from verification.models import Base
from verification.service import VerificationService

from pathlib import Path

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"

NARRATIVE = "Panitia pengadaan memenangkan perusahaan milik saudaranya."
EVIDENCE = {"ev-1": (b"A" * 10 + b"B" * 10 + b"C" * 5, "bukti kontrak.pdf", "application/pdf")}
CHUNK = 10  # tiny chunks so the download really takes several RPCs

REPORT = {  # a wbs.report-content/1 document, as intake seals it
    "format": "wbs.report-content/1",
    "language": "id",
    "good_faith": True,
    "title": "Benturan kepentingan pengadaan",
    "description": NARRATIVE,
    "parties": [{"name": "Budi S.", "position": "Panitia pengadaan", "unit": "dit-smp"}],
    "reporter": {"relationship": "employee", "involved": False, "identity": {"name": "RAHASIA-PELAPOR"}},
}


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
    VAULT.reset()
    VAULT.default_content = json.dumps(REPORT).encode()
    VAULT.chunk_bytes = CHUNK
    for evidence_id, (data, filename, media_type) in EVIDENCE.items():
        VAULT.evidence[evidence_id] = {"report_id": None, "data": data, "filename": filename,
                                       "media_type": media_type}
    VAULT.grant_verifier = GrantVerifier.from_config(config)  # same key file as verification
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
                if method.routing_key not in ("unit_changed", "staff_changed"):  # the seed's directory events
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
    with signed_hook(container, "seed_demo") as seed_demo:
        return seed_demo()


def login(base, account, at=None):
    code = pyotp.TOTP(account["totp_secret"]).at(at or time.time())
    answer = requests.post(f"{base}/api/v1/auth/login", timeout=10,
                           json={"username": account["username"], "password": account["password"], "otp": code})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def base_url(config):
    return f"http://{config['WEB_SERVER_ADDRESS']}"


def console_sign_in(browser, base, account):
    """Post the console's sign-in form; the answer must be the redirect to the case list."""
    signed = browser.post(f"{base}/login", allow_redirects=False, timeout=10, data={
        "username": account["username"], "password": account["password"],
        "otp": pyotp.TOTP(account["totp_secret"]).now()})
    assert signed.status_code == 303
    return signed


def console_browser(base, account=None):
    """A session that posts forms as a browser does (with ``Origin``), signed in to the console
    as ``account`` when one is given."""
    browser = requests.Session()
    browser.headers["Origin"] = base
    if account is not None:
        console_sign_in(browser, base, account)
    return browser


def open_one(verification, broker, db, **extra):
    """Publish a report_submitted and wait for its case: (the event, the case id)."""
    event = report_event(**extra)
    publish(broker, event)
    return event, wait_until(lambda: case_for(db, event["report_id"]))


# --------------------------------------------------------------------------- tests


def test_migrated_schema_equals_the_models(pg_url):
    assert schema_differences(ALEMBIC_DIR, pg_url, Base.metadata) == []


def test_report_submitted_twice_opens_one_case_and_announces_valid_events(verification, storage, broker, db):
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


def test_poison_report_submitted_is_dead_lettered(verification, storage, broker, db):
    publish(broker, {"schema_version": 1, "event_id": str(uuid.uuid4()), "report_id": str(uuid.uuid4())})

    def dead_letter():
        method, props, body = broker.basic_get(DEAD_LETTER_QUEUE, auto_ack=True)
        return (method, props, body) if method else None

    broker.queue_declare(DEAD_LETTER_QUEUE, passive=True)
    method, props, body = wait_until(dead_letter, 15)
    assert "report_submitted" in props.headers["x-wbs-original-queue"]
    assert "x-wbs-reason" in props.headers
    assert count(db, "SELECT count(*) FROM cases") == 0


def test_inspector_signs_in_lists_reads_transitions_and_downloads(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)

    auth = login(base, demo["inspector"])
    cases = requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10)
    assert cases.status_code == 200
    assert [c["case_id"] for c in cases.json()["cases"]] == [case_id]
    listed = cases.json()["cases"][0]
    assert listed["reference"] == f"WBS/ITJEN/{listed['created_at'][:4]}/00001"
    assert listed["unit_name"] == "Direktorat Sekolah Menengah Pertama" and listed["zone"]["label"] == "WIB"
    assert requests.get(f"{base}/api/v1/cases?state=closed", headers=auth, timeout=10).json() == {
        "cases": [], "total": 0, "page": 1, "per_page": 50}
    bad = requests.get(f"{base}/api/v1/cases?per_page=500", headers=auth, timeout=10)
    assert bad.status_code == 400 and "per_page" in bad.text

    detail = requests.get(f"{base}/api/v1/cases/{case_id}", headers=auth, timeout=10)
    assert detail.status_code == 200, detail.text
    case = detail.json()
    assert case["narrative"] == NARRATIVE
    assert case["parties"][0]["name"] == "Budi S."
    assert case["evidence"][0]["evidence_id"] == "ev-1"
    assert case["state"]["code"] == "received" and case["state"]["label"] == "Diterima"
    assert case["assignee"]["username"] == "inspektur"
    assert "RAHASIA-PELAPOR" not in detail.text
    assert ("content", event["report_id"], {"sub": demo["inspector"]["staff_id"], "case_id": case_id}) in VAULT.reads
    # routing read the parties, and only them, with its own grant before the case opened
    routing_reads = [(scope, report) for scope, report, who in VAULT.reads if who["sub"] == "verification"]
    assert routing_reads == [("parties", event["report_id"])]

    moved = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                          json={"to": "verification"})
    assert moved.status_code == 200 and moved.json()["state"]["code"] == "verification"
    forbidden = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                              json={"to": "follow_up"})
    assert forbidden.status_code == 409 and forbidden.json()["error"]["code"] == "transition_forbidden"
    no_reason = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                              json={"to": "not_actionable", "reason": "no sub-reason"})
    assert no_reason.status_code == 400 and "sub_reason" in no_reason.json()["error"]["message"]
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"

    download = requests.get(f"{base}/api/v1/cases/{case_id}/evidence/ev-1", headers=auth, timeout=10, stream=True)
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.content == EVIDENCE["ev-1"][0]
    assert [r[2] for r in VAULT.reads if r[0] == "chunk"] == [0, 1, 2]
    missing = requests.get(f"{base}/api/v1/cases/{case_id}/evidence/ev-404", headers=auth, timeout=10)
    assert missing.status_code == 404

    VAULT.altered.add("ev-1")  # plaintext that does not match its recorded SHA-256
    try:
        altered = requests.get(f"{base}/api/v1/cases/{case_id}/evidence/ev-1", headers=auth, timeout=10)
        # A file this small is still in the server's write buffer when the check fails, so the
        # answer is a bare 500 and a closed connection (a large one is cut short instead).
        assert altered.status_code == 500 and altered.content == b""
        assert altered.headers.get("Connection") == "close"
    finally:
        VAULT.altered.clear()

    assert requests.post(f"{base}/api/v1/auth/logout", headers=auth, timeout=10).status_code == 204
    assert requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10).status_code == 401


def test_case_outside_reach_is_404_exactly_like_a_missing_one(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)
    with signed_hook(verification, "add_staff") as add_staff:
        other = add_staff("lain", "lain@example.org", "itjen", "inspector")

    auth = login(base, other)
    listing = requests.get(f"{base}/api/v1/cases", headers=auth, timeout=10).json()
    assert listing["cases"] == [] and listing["total"] == 0
    foreign = requests.get(f"{base}/api/v1/cases/{case_id}", headers=auth, timeout=10)
    missing = requests.get(f"{base}/api/v1/cases/{uuid.uuid4()}", headers=auth, timeout=10)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    move = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                         json={"to": "verification"})
    assert move.status_code == 404
    assert not [r for r in VAULT.reads if r[-1] == {"sub": other["staff_id"], "case_id": case_id}]
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
    event, case_id = open_one(verification, broker, db)

    browser = console_browser(base)
    assert browser.get(f"{base}/", allow_redirects=False, timeout=10).headers["Location"] == "/login"
    form = browser.get(f"{base}/login", timeout=10)
    assert form.status_code == 200 and "Kata sandi" in form.text
    csp = form.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "http" not in csp
    account = demo["inspector"]
    signed = console_sign_in(browser, base, account)
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    listing = browser.get(f"{base}/", timeout=10)
    assert listing.status_code == 200 and case_id in listing.text and "Diterima" in listing.text
    page = browser.get(f"{base}/cases/{case_id}", timeout=10)
    assert page.status_code == 200
    assert "Pegawai (ASN / non-ASN)" in page.text  # the reporter's relationship, labelled
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
    for headers in ({"Origin": "null"}, {"Origin": None}, {"Sec-Fetch-Site": "cross-site"}):
        refused = browser.post(f"{base}/cases/{case_id}/transitions", data={"to": "analysis"},
                               headers=headers, allow_redirects=False, timeout=10)  # None drops it
        assert refused.status_code == 303 and refused.headers["Location"] == "/login", headers
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"

    download = browser.get(f"{base}/cases/{case_id}/evidence/ev-1", timeout=10)
    assert download.status_code == 200 and download.content == EVIDENCE["ev-1"][0]
    browser.post(f"{base}/logout", timeout=10)
    assert browser.get(f"{base}/", allow_redirects=False, timeout=10).status_code == 303


def test_rpc_directory(verification):
    with signed_hook(verification, "add_unit") as add_unit:
        assert add_unit("itjen", "Inspektorat Jenderal", None, True)["code"] == "itjen"
        add_unit("dit-a", "Direktorat A", parent="itjen")
    with entrypoint_hook(verification, "list_units") as list_units:
        assert {u["code"]: u["parent"] for u in list_units()} == {"itjen": None, "dit-a": "itjen"}
    with signed_hook(verification, "add_staff") as add_staff:
        staff = add_staff("ani", "ani@example.org", "dit-a", "supervisor")
    assert staff["otpauth_uri"].startswith("otpauth://totp/") and staff["password"]
    with entrypoint_hook(verification, "get_recipient") as get_recipient:
        assert get_recipient(staff["staff_id"]) == {"email": "ani@example.org", "display_name": "ani", "language": "id"}
        assert get_recipient(str(uuid.uuid4())) is None
    with signed_hook(verification, "seed_demo") as seed_demo:
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


# --------------------------------------------------------------------------- case management


def test_messages_reporter_answers_status_grant_and_events(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    collect = watch(broker)
    event, case_id = open_one(verification, broker, db)
    auth = login(base, demo["inspector"])
    assert requests.post(f"{base}/api/v1/cases/{case_id}/transitions", headers=auth, timeout=10,
                         json={"to": "verification"}).status_code == 200

    asked = requests.post(f"{base}/api/v1/cases/{case_id}/messages", headers=auth, timeout=10,
                          json={"text": "Mohon kirim salinan kontrak.", "visibility": "reporter",
                                "awaiting_reporter": True})
    assert asked.status_code == 201, asked.text
    assert asked.json()["state"] == "awaiting_reporter"
    note = requests.post(f"{base}/api/v1/cases/{case_id}/messages", headers=auth, timeout=10,
                         json={"text": "Catatan internal: cek LPSE.", "visibility": "internal"})
    assert note.status_code == 201
    bad = requests.post(f"{base}/api/v1/cases/{case_id}/messages", headers=auth, timeout=10,
                        json={"text": "x", "visibility": "everyone"})
    assert bad.status_code == 400
    # storage got the texts (sealed in transit, opened by the fake with its transit key)
    assert VAULT.messages[(event["report_id"], asked.json()["message_id"])] == "Mohon kirim salinan kontrak."

    # the reporter answers through intake: reporter_message_posted
    answer_id = str(uuid.uuid4())
    VAULT.messages[(event["report_id"], answer_id)] = "Kontrak terlampir."
    publish(broker, {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T11:00:00Z",
                     "report_id": event["report_id"], "message_id": answer_id}, "reporter_message_posted")
    wait_until(lambda: count(db, "SELECT count(*) FROM case_messages WHERE message_id = :m", m=answer_id) == 1)
    assert count(db, "SELECT state FROM cases WHERE case_id = :c", c=case_id) == "verification"

    case = requests.get(f"{base}/api/v1/cases/{case_id}", headers=auth, timeout=10).json()
    assert [(m["direction"], m["text"]) for m in case["messages"]] == [
        ("to_reporter", "Mohon kirim salinan kontrak."), ("internal", "Catatan internal: cek LPSE."),
        ("from_reporter", "Kontrak terlampir.")]

    with signed_hook(verification, "get_report_status", "intake") as get_report_status:
        status = get_report_status(event["report_id"], "id")
    assert [m["direction"] for m in status["messages"]] == ["to_reporter", "from_reporter"]
    claims = VAULT.grant_verifier.check(status["grant"], report_id=event["report_id"], scope="messages",
                                              message_id=answer_id)
    assert claims["sub"] == "reporter" and claims["message_ids"] == [m["message_id"] for m in status["messages"]]
    assert note.json()["message_id"] not in claims["message_ids"]

    events = collect(8)
    posted = [b for t, b in events if t == "case_message_posted"]
    assert sorted(b["direction"] for b in posted) == ["from_reporter", "internal", "to_reporter"]
    for event_type, body in events:
        validate_event(event_type, body)
    changed = [b for t, b in events if t == "case_status_changed"]
    assert all(b["report_id"] == event["report_id"] for b in changed)


def test_legal_hold_shredding_and_audit_verify(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    collect = watch(broker)
    event, case_id = open_one(verification, broker, db)
    inspector, supervisor = login(base, demo["inspector"]), login(base, demo["supervisor"])
    refused = requests.post(f"{base}/api/v1/cases/{case_id}/legal-hold", headers=inspector, timeout=10,
                            json={"legal_hold": True, "reason": "perkara"})
    assert refused.status_code == 403
    held = requests.post(f"{base}/api/v1/cases/{case_id}/legal-hold", headers=supervisor, timeout=10,
                         json={"legal_hold": True, "reason": "perkara di pengadilan"})
    assert held.status_code == 200 and held.json()["flags"]["legal_hold"] is True
    hold_events = [b for t, b in collect(3) if t == "legal_hold_changed"]
    assert hold_events and hold_events[0]["report_id"] == event["report_id"] and hold_events[0]["legal_hold"] is True

    channel = broker
    channel.exchange_declare("storage.events", exchange_type="topic", durable=True)
    channel.basic_publish("storage.events", "report_shredded", json.dumps(
        {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T11:00:00Z",
         "report_id": event["report_id"]}).encode(),
        pika.BasicProperties(content_type="application/json", content_encoding="utf-8", delivery_mode=2))
    wait_until(lambda: count(db, "SELECT content_destroyed FROM cases WHERE case_id = :c", c=case_id))
    reads_before = len(VAULT.reads)
    gone = requests.get(f"{base}/api/v1/cases/{case_id}", headers=inspector, timeout=10).json()
    assert gone["flags"]["content_destroyed"] is True and gone["narrative"] is None
    assert len(VAULT.reads) == reads_before  # storage is not asked any more

    with entrypoint_hook(verification, "verify_audit_chain") as verify_chain:
        verdict = verify_chain()
    assert verdict["ok"] and verdict["entries"] >= 4
    actions = [r[0] for r in db.connect().execute(sqlalchemy.text("SELECT action FROM audit_log ORDER BY seq"))]
    assert {"sign_in", "legal_hold", "content_destroyed"} <= set(actions)
    with db.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE audit_log SET action = 'content_read' WHERE action = 'legal_hold'"))
    with entrypoint_hook(verification, "verify_audit_chain") as verify_chain:
        broken = verify_chain()
    assert not broken["ok"] and broken["first_bad_seq"] == actions.index("legal_hold") + 1


def test_deadline_timer_publishes_each_breach_once_on_a_controllable_clock(container_factory, config, storage, broker, db):
    import datetime as dt
    from verification.dependencies import Clock
    container = container_factory(VerificationService, dict(config, DEADLINE_CHECK_SECONDS=0.2))
    clock = next(d for d in container.extensions if isinstance(d, Clock))
    start = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.timezone.utc)
    clock.fixed = start
    container.start()
    seed(container)
    collect = watch(broker)
    event, case_id = open_one(container, broker, db)
    collect(2)  # opened, assigned
    time.sleep(0.6)  # a few timer ticks with nothing due
    assert [t for t, _ in collect(2)] == ["case_opened", "case_assigned"]
    clock.fixed = start + dt.timedelta(days=8)
    events = collect(3)
    breached = [b for t, b in events if t == "sla_breached"]
    assert [(b["case_id"], b["clock"]) for b in breached] == [(case_id, "acknowledge")]
    validate_event("sla_breached", breached[0])
    time.sleep(0.6)  # more ticks: still one breach
    assert len([1 for t, _ in collect(3) if t == "sla_breached"]) == 1


def test_throttle_disable_revokes_sessions_stats_csv_and_openapi(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    open_one(verification, broker, db)
    sup = login(base, demo["supervisor"])
    stats = requests.get(f"{base}/api/v1/stats", headers=sup, timeout=10)
    assert stats.status_code == 200 and stats.json()["total"] == "<5"
    assert {r["key"]: r["count"] for r in stats.json()["by_unit"]} == {"dit-smp": "<5"}
    csv_answer = requests.get(f"{base}/api/v1/stats?format=csv", headers=sup, timeout=10)
    assert csv_answer.headers["Content-Type"].startswith("text/csv") and "unit,dit-smp,<5" in csv_answer.text
    spec = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/cases/{case_id}/messages" in spec["paths"]

    with signed_hook(verification, "add_staff") as add_staff:
        ani = add_staff("ani", "ani@example.org", "itjen", "inspector")
    ani_auth = login(base, ani)
    # five wrong passwords lock the account; then even the right factors are refused
    for _ in range(5):
        assert requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
            "username": "ani", "password": "wrong", "otp": "000000"}).status_code == 401
    locked = requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "username": "ani", "password": ani["password"], "otp": pyotp.TOTP(ani["totp_secret"]).at(time.time() + 30)})
    assert locked.status_code == 401
    assert requests.get(f"{base}/api/v1/cases", headers=ani_auth, timeout=10).status_code == 200
    with signed_hook(verification, "set_staff_active") as set_staff_active:
        assert set_staff_active("ani", False)["sessions_revoked"] == 1
    assert requests.get(f"{base}/api/v1/cases", headers=ani_auth, timeout=10).status_code == 401


def test_console_supervisor_view_statistics_language_and_message_form(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)
    browser = console_browser(base, demo["supervisor"])
    view = browser.get(f"{base}/supervision", timeout=10)
    assert view.status_code == 200 and case_id in view.text and "Pengawasan" in view.text
    english = browser.get(f"{base}/stats?lang=en", timeout=10)
    assert english.status_code == 200 and "<svg" in english.text and "Statistics" in english.text
    assert "<script" not in english.text
    assert "By unit" in browser.get(f"{base}/stats", timeout=10).text  # the choice is remembered
    page = browser.get(f"{base}/cases/{case_id}", timeout=10)
    assert "Place legal hold" in page.text and "Reassign" in page.text
    posted = browser.post(f"{base}/cases/{case_id}/messages", allow_redirects=False, timeout=10,
                          data={"text": "Catatan pengawas", "visibility": "internal"})
    assert posted.status_code == 303
    assert "Catatan pengawas" in browser.get(f"{base}/cases/{case_id}", timeout=10).text
    assert browser.get(f"{base}/stats.csv", timeout=10).text.startswith("dimension,key,value")
    added = browser.post(f"{base}/cases/{case_id}/parties", allow_redirects=False, timeout=10,
                         data={"name": "Siti Aminah", "position": "Bendahara"})
    assert added.status_code == 303 and added.headers["Location"] == f"/cases/{case_id}"
    assert "Siti Aminah · Bendahara" in browser.get(f"{base}/cases/{case_id}", timeout=10).text


def test_console_declared_conflict_excludes_from_routing_and_sessions_can_be_revoked(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    browser = console_browser(base, demo["inspector"])
    assert browser.post(f"{base}/conflicts", allow_redirects=False, timeout=10,
                        data={"unit": "dit-smp", "note": "saudara bekerja di sana"}).status_code == 303
    assert "dit-smp" in browser.get(f"{base}/conflicts", timeout=10).text
    event, case_id = open_one(verification, broker, db, unit="dit-smp")
    assert count(db, "SELECT assignee_id FROM cases WHERE case_id = :c", c=case_id) is None
    assert count(db, "SELECT reason FROM case_exclusions WHERE case_id = :c", c=case_id) == "declared_conflict"
    with signed_hook(verification, "revoke_sessions") as revoke_sessions:
        assert revoke_sessions("inspektur")["sessions_revoked"] == 1
    assert browser.get(f"{base}/", allow_redirects=False, timeout=10).headers["Location"] == "/login"


def test_parties_added_later_go_to_storage_as_a_note_and_reroute(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)
    inspector = login(base, demo["inspector"])
    answer = requests.post(f"{base}/api/v1/cases/{case_id}/parties", headers=inspector, timeout=10,
                           json={"parties": [{"name": "Inspektur Demo", "position": "Ketua panitia"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["excluded"] == [{"staff_id": demo["inspector"]["staff_id"], "reason": "party_named"}]
    assert answer.json()["routing_note"] == "routing_failed: no_eligible_inspector"
    assert [t for (r, _), t in VAULT.messages.items() if r == event["report_id"]] == [
        "Terlapor tambahan / additional parties:\nInspektur Demo · Ketua panitia"]
    assert requests.get(f"{base}/api/v1/cases/{case_id}", headers=inspector, timeout=10).status_code == 404
    assert requests.post(f"{base}/api/v1/cases/{case_id}/parties", headers=login(base, demo["supervisor"]),
                         timeout=10, json={"parties": "Budi"}).status_code == 400

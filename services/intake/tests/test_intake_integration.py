"""intake in a real nameko container, against real RabbitMQ and PostgreSQL.

storage (the shared fake, tests/fakes.py) and verification (written here) are fakes running as
real nameko services on the same broker, so intake's RPC (including the sticky per-instance
evidence route) runs for real; the fakes record every call. Events are observed from outside with pika, as another system would.
"""

import http.client
import io
import json
import logging
import os
import socket
import tempfile
import time
import uuid

import pika
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
import requests
import sqlalchemy
from nameko.rpc import rpc

from tests.fakes import VAULT, FakeStorage
from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.migrations import schema_differences
from nameko.dependency_providers import Config
from wbs_plumbing.grants import CommandVerifier, GrantSigner, GrantVerifier

from intake.models import Base
from intake.pow import solve
from intake.service import IntakeService

MIB = 1024 * 1024
ALEMBIC_DIR = os.path.join(os.path.dirname(__file__), "..", "alembic")

# storage is the shared fake (tests/fakes.py); these names are its parts, for brevity
CALLS = VAULT.calls
UPLOADS = VAULT.uploads
CONTENT = VAULT.content
MESSAGES = VAULT.messages  # (report_id, message_id) -> text, as the fake vault opened it
WIRE = VAULT.wire  # every content-bearing argument as it crossed RabbitMQ
FAIL = VAULT.fail
STATUS = {}  # report_id -> what the fake verification answers (messages are [(id, direction)])
GRANT_KEY = Ed25519PrivateKey.generate()
SIGNER = GrantSigner(GRANT_KEY)


class FakeVerification:
    name = "verification"
    config = Config()

    @rpc
    def list_units(self):
        CALLS.append(("list_units",))
        return [{"code": "dit-smp", "name": "Direktorat SMP", "parent": None},
                {"code": "itjen", "name": "Inspektorat Jenderal", "parent": None}]

    @rpc
    def get_report_status(self, report_id, language="id", command=None):
        """The agreed interface: state, history, messages (ids, directions) and a reporter grant,
        for intake's signed command bound to the report (checked as verification does)."""
        CommandVerifier.from_config(self.config, ("intake",)).check(
            command, "get_report_status", ("intake",), report_id=report_id)
        CALLS.append(("get_report_status", report_id, language))
        status = STATUS.get(report_id)
        if status is None:
            return None
        messages = [{"message_id": m, "direction": d, "at": "2026-11-20T10:00:00Z"}
                    for m, d in status.get("messages", [])]
        ids = [m["message_id"] for m in messages]
        grant = SIGNER.issue(sub="reporter", case_id="case-1", report_id=report_id, scope=["messages"],
                             message_ids=ids) if ids else None
        code = status.get("state", "verification")
        label = {"verification": {"id": "Dalam verifikasi", "en": "Under verification"},
                 "awaiting_reporter": {"id": "Mohon lengkapi informasi", "en": "Please add information"}}[code][language]
        return {"state": {"code": code, "label": label},
                "history": [{"code": "received", "label": "Laporan diterima", "at": "2026-11-19T10:00:00Z"},
                            {"code": code, "label": label, "at": "2026-11-20T09:00:00Z"}],
                "messages": messages, "grant": grant}


@pytest.fixture(autouse=True)
def _reset():
    VAULT.reset()
    VAULT.grant_verifier = GrantVerifier(GRANT_KEY.public_key())
    STATUS.clear()


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point every temp-file API at an empty directory, to prove nothing is spooled there."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    monkeypatch.setenv("TMPDIR", str(path))
    return path


@pytest.fixture
def stack(service_config, container_factory, private_tmp):
    """Start fake storage + fake verification + intake; yield (base_url, config)."""

    def start(**overrides):
        config = service_config("intake", **overrides)
        for cls in (FakeStorage, FakeVerification):
            container_factory(cls, config).start()
        container = container_factory(IntakeService, config)
        container.start()
        return f"http://{config['WEB_SERVER_ADDRESS']}", config

    return start


def good_report(**changes):
    report = {
        "unit": "dit-smp",
        "category": "conflict_of_interest",
        "title": "Procurement committee member awarded his brother's company",
        "description": "CANARY-NARRATIVE what happened, how, and since when.",
        "parties": [{"name": "CANARY-PARTY Budi S.", "position": "Procurement committee"}],
        "reporter": {"relationship": "employee", "involved": False,
                     "identity": {"name": "CANARY-IDENTITY Ani"}},
        "language": "id",
        "good_faith": True,
    }
    report.update(changes)
    return report


class EventTap:
    """A queue bound to intake.events, read with pika from outside the service."""

    def __init__(self, amqp_uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare("intake.events", exchange_type="topic", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, "intake.events", routing_key="#")

    def get(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is not None:
                return method.routing_key, props, body
            time.sleep(0.05)
        raise AssertionError("no event arrived")

    def close(self):
        self.connection.close()


def db_rows(url, table):
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sqlalchemy.text(f"SELECT * FROM {table}"))]
    finally:
        engine.dispose()


def db_dump(url):
    return "\n".join(repr(db_rows(url, t)) for t in Base.metadata.tables)


def multipart(report, files, boundary="wbsBoundaryX1"):
    out = io.BytesIO()
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="report"\r\n'
              f"Content-Type: application/json\r\n\r\n".encode())
    out.write(json.dumps(report).encode())
    for name, data, ctype in files:
        out.write(f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="evidence"; '
                  f'filename="{name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode())
        out.write(data)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def test_json_submit_records_metadata_only_and_announces_report_submitted(stack):
    base, config = stack()
    tap = EventTap(config["AMQP_URI"])
    try:
        resp = requests.post(f"{base}/api/v1/reports", json=good_report(), timeout=30)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert set(body) == {"report_id", "receipt", "received_at"}
        assert len(body["receipt"].replace("-", "")) == 20
        assert resp.headers["Cache-Control"] == "no-store"

        routing_key, props, raw = tap.get()
        event = json.loads(raw)
        assert routing_key == "report_submitted"
        validate_event("report_submitted", event)
        assert event["report_id"] == body["report_id"]
        assert (event["unit"], event["category"], event["evidence_count"]) == ("dit-smp", "conflict_of_interest", 0)
        assert b"CANARY" not in raw
    finally:
        tap.close()

    # everything sensitive went to storage, sealed content is the JSON the vault expects
    content = json.loads(CONTENT[body["report_id"]])
    assert content["description"].startswith("CANARY-NARRATIVE")
    assert content["reporter"]["identity"]["name"] == "CANARY-IDENTITY Ani"
    assert "unit" not in content

    # intake's own tables: metadata and the receipt's keyed hash, nothing else
    rows = db_rows(config["DATABASE_URL"], "reports")
    assert len(rows) == 1 and rows[0]["report_id"] == body["report_id"]
    assert rows[0]["receipt_hash"] != body["receipt"] and len(rows[0]["receipt_hash"]) == 64
    assert rows[0]["received_at"].second == 0 and rows[0]["received_at"].microsecond == 0
    dump = db_dump(config["DATABASE_URL"])
    assert "CANARY" not in dump
    assert body["receipt"] not in dump and body["receipt"].replace("-", "") not in dump


def test_multipart_with_three_files_streams_in_small_chunks_and_spools_nothing(stack, private_tmp):
    base, config = stack()
    big = os.urandom(2 * MIB) + b"CANARY-EVIDENCE-PLAINTEXT" + os.urandom(1000)
    files = [("scan.pdf", big, "application/pdf"),
             ("../../etc/photo\u202egpj.exe", b"CANARY-EVIDENCE small photo", "image/jpeg"),
             ("notes.txt", b"line one\r\nline two\r\n", "text/plain")]
    data, ctype = multipart(good_report(), files)
    tap = EventTap(config["AMQP_URI"])
    try:
        resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
        assert resp.status_code == 201, resp.text
        event = json.loads(tap.get()[2])
        assert event["evidence_count"] == 3
    finally:
        tap.close()

    uploads = sorted(UPLOADS.values(), key=lambda u: -len(u["data"]))
    assert [u["finished"] for u in uploads] == [True, True, True]
    assert all(u["report_id"] == resp.json()["report_id"] for u in uploads)
    assert uploads[0]["data"] == big and uploads[0]["filename"] == "scan.pdf"
    assert max(max(u["chunks"]) for u in uploads) <= MIB
    assert len(uploads[0]["chunks"]) >= 3
    by_name = {u["filename"]: u for u in uploads}
    assert by_name["photogpj.exe"]["data"] == b"CANARY-EVIDENCE small photo"
    assert by_name["photogpj.exe"]["media_type"] == "image/jpeg"
    assert by_name["notes.txt"]["data"] == b"line one\r\nline two\r\n"
    # order: evidence first, then the sealed content, never a discard
    names = [c[0] for c in CALLS]
    assert names.index("store_report_content") > max(i for i, n in enumerate(names) if n == "finish_evidence")
    assert "discard_report" not in names

    # what crossed RabbitMQ was sealed: no plaintext evidence, name or narrative on the wire
    assert WIRE and not any(b"CANARY" in w or b"scan.pdf" in w for w in WIRE)

    assert list(private_tmp.iterdir()) == []
    for root in (config["WBS_DATA_DIR"], tempfile.gettempdir()):
        for dirpath, _, filenames in os.walk(root):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                if os.path.getsize(path) < 64 * MIB:
                    with open(path, "rb") as handle:
                        assert b"CANARY-EVIDENCE" not in handle.read(), path


def test_invalid_reports_get_field_reasons_and_touch_nothing(stack):
    base, config = stack()
    bad = good_report(unit="nope", good_faith=False, parties=[])
    del bad["description"]
    resp = requests.post(f"{base}/api/v1/reports", json=bad, timeout=30)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid_report"
    assert set(error["fields"]) == {"unit", "good_faith", "parties", "description"}
    assert all(isinstance(v, str) for v in error["fields"].values())

    resp = requests.post(f"{base}/api/v1/reports", data=b"{not json", timeout=30,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json"
    resp = requests.post(f"{base}/api/v1/reports", data=b"x", timeout=30, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415 and resp.json()["error"]["code"] == "unsupported_media_type"
    data, ctype = multipart(good_report(), [])
    resp = requests.post(f"{base}/api/v1/reports", data=data[:-20], headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed_body"

    assert [c for c in CALLS if c[0] not in ("list_units", "open_transit")] == []
    assert db_rows(config["DATABASE_URL"], "reports") == []


def test_oversize_is_refused_with_413(stack):
    base, config = stack(INTAKE_MAX_REQUEST_BYTES=3 * MIB, INTAKE_MAX_FILE_BYTES=1 * MIB)
    # declared too large: refused before reading the body
    data, ctype = multipart(good_report(), [("a.bin", b"a" * (4 * MIB), "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"
    assert [c for c in CALLS if c[0] not in ("list_units", "open_transit")] == []

    # one file over the per-file limit, found while reading it: a file of up to one chunk is held
    # until the report is whole, so nothing of it reached storage
    data, ctype = multipart(good_report(), [("a.bin", b"a" * (MIB + MIB // 2), "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
    assert resp.status_code == 413, resp.text
    assert [c for c in CALLS if c[0] not in ("list_units", "open_transit")] == []

    # over the limit after the first chunk was streamed: the half upload is aborted and discarded
    base, config = stack(INTAKE_MAX_REQUEST_BYTES=5 * MIB, INTAKE_MAX_FILE_BYTES=2 * MIB)
    data, ctype = multipart(good_report(), [("a.bin", b"a" * (2 * MIB + MIB // 2), "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
    assert resp.status_code == 413, resp.text
    names = [c[0] for c in CALLS]
    assert "discard_report" in names and "abort_evidence" in names and "store_report_content" not in names
    assert db_rows(config["DATABASE_URL"], "reports") == []

    # a JSON body over its own limit
    resp = requests.post(f"{base}/api/v1/reports", timeout=30, headers={"Content-Type": "application/json"},
                         data=json.dumps(good_report(description="x" * (300 * 1024))))
    assert resp.status_code == 413


def test_storage_failure_discards_and_answers_503(stack):
    base, config = stack()
    FAIL["store_report"] = True
    data, ctype = multipart(good_report(), [("a.bin", b"evidence", "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "unavailable"
    assert "Traceback" not in resp.text and "sealed shut" not in resp.text
    assert ("discard_report",) == tuple(c[0] for c in CALLS if c[0] == "discard_report")
    assert db_rows(config["DATABASE_URL"], "reports") == []


def test_proof_of_work_is_required_single_use_and_checked(stack):
    base, config = stack(WBS_POW_BITS=8)
    url = f"{base}/api/v1/reports"
    resp = requests.post(url, json=good_report(), timeout=30)
    assert resp.status_code == 428 and resp.json()["error"]["code"] == "pow_missing"

    pow_ = requests.get(f"{base}/api/v1/pow", timeout=30).json()
    assert pow_["bits"] == 8
    header = f"{pow_['challenge']}:{solve(pow_['challenge'], 8)}"
    resp = requests.post(url, json=good_report(), headers={"X-WBS-PoW": header}, timeout=30)
    assert resp.status_code == 201, resp.text
    resp = requests.post(url, json=good_report(), headers={"X-WBS-PoW": header}, timeout=30)
    assert resp.status_code == 428 and resp.json()["error"]["code"] == "pow_reused"

    pow_ = requests.get(f"{base}/api/v1/pow", timeout=30).json()
    wrong = 0
    while solve(pow_["challenge"], 8) == str(wrong):
        wrong += 1
    resp = requests.post(url, json=good_report(), headers={"X-WBS-PoW": f"{pow_['challenge']}:{wrong}"}, timeout=30)
    assert resp.status_code == 428 and resp.json()["error"]["code"] == "pow_wrong"
    assert len(db_rows(config["DATABASE_URL"], "reports")) == 1


def test_receipt_signs_in_and_wrong_receipts_look_alike(stack):
    base, config = stack()
    receipt = requests.post(f"{base}/api/v1/reports", json=good_report(), timeout=30).json()["receipt"]
    resp = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": receipt.lower()}, timeout=30)
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert token not in db_dump(config["DATABASE_URL"])
    view = requests.get(f"{base}/api/v1/reporter/report", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert view.status_code == 200 and view.json()["state"]["code"] == "received"

    answers = []
    for wrong in ("AAAA-AAAA-AAAA-AAAA-AAAA", "nonsense", 42):
        r = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": wrong}, timeout=30)
        answers.append((r.status_code, r.text))
    assert len(set(answers)) == 1 and answers[0][0] == 401
    r = requests.get(f"{base}/api/v1/reporter/report", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert r.status_code == 401


def test_listings_openapi_and_reporter_page(stack):
    base, config = stack(WBS_POW_BITS=8)
    units = requests.get(f"{base}/api/v1/units", timeout=30).json()["units"]
    assert {u["code"] for u in units} == {"dit-smp", "itjen"}
    requests.get(f"{base}/api/v1/units", timeout=30)
    assert [c[0] for c in CALLS].count("list_units") == 1  # cached
    cats = requests.get(f"{base}/api/v1/categories", timeout=30).json()["categories"]
    assert len(cats) == 12
    doc = requests.get(f"{base}/api/v1/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.") and "/api/v1/reports" in doc["paths"]
    assert "X-WBS-PoW" in json.dumps(doc)
    from openapi_spec_validator import validate
    validate(doc)

    page = requests.get(f"{base}/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert "Direktorat SMP" in page.text and "Benturan kepentingan" in page.text
    assert 'src="/static/pow.js"' in page.text
    assert "http://" not in page.text.replace(base, "") and "https://" not in page.text
    js = requests.get(f"{base}/static/pow.js", timeout=30)
    assert js.status_code == 200 and "sha256" in js.text
    assert requests.get(f"{base}/static/../service.py", timeout=30).status_code == 404


def _form(values, files=(), boundary="formBoundaryQ"):
    out = io.BytesIO()
    for name, value in values.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="evidence"; filename="{name}"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def test_reporter_form_without_javascript_shows_the_receipt_once(stack):
    base, config = stack()  # WBS_POW_BITS=0: the no-JS path
    values = {"unit": "dit-smp", "category": "bribery", "title": "", "description": "CANARY-NARRATIVE pungli",
              "party_name": "Pak X", "party_position": "", "relationship": "public", "involved": "no",
              "good_faith": "on", "language": "id"}
    data, ctype = _form(values, [("bukti.jpg", b"\xff\xd8 jpeg"), ("", b"")])
    resp = requests.post(f"{base}/submit", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 201, resp.text
    assert "nomor tanda terima" in resp.text.lower() and resp.headers["Cache-Control"] == "no-store"
    row = db_rows(config["DATABASE_URL"], "reports")[0]
    assert row["evidence_count"] == 1  # the empty file input created nothing

    values["good_faith"] = ""
    values["party_name"] = ""
    data, ctype = _form({k: v for k, v in values.items() if k != "good_faith"})
    resp = requests.post(f"{base}/submit", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 400
    assert "itikad baik" in resp.text and "CANARY-NARRATIVE pungli" in resp.text  # form re-filled


def test_the_page_puts_the_evidence_after_every_other_field(stack):
    """Browsers send form fields in page order, and intake validates the report from the fields
    that precede the first file: a field placed after the file input would be lost."""
    from html.parser import HTMLParser

    base, _config = stack()
    names = []

    class Fields(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag in ("input", "select", "textarea") and attrs.get("name"):
                names.append(attrs["name"])
    Fields().feed(requests.get(f"{base}/", timeout=10).text)
    assert "good_faith" in names and names[-1] == "evidence", names


def test_no_client_address_or_device_data_is_logged_or_stored(stack):
    """Canaries in every header a reporter's device sends, from a distinctive source address."""
    base, config = stack(INTAKE_MAX_REQUEST_BYTES=MIB)
    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Capture(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("wbs.http", "eventlet.wsgi", "nameko", "intake"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    source_ip = "127.0.0.77"
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    canaries = {"User-Agent": "CanaryAgent/9.9", "X-Forwarded-For": "203.0.113.99",
                "Accept-Language": "xx-CANARYLANG", "X-Real-IP": "198.51.100.77"}
    try:
        def call(method, path, body=None, headers=None):
            conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source_ip, 0))
            conn.request(method, path, body=body, headers={**canaries, **(headers or {})})
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            return resp.status, payload

        assert call("GET", "/")[0] == 200
        assert call("POST", "/api/v1/reports", json.dumps(good_report()),
                    {"Content-Type": "application/json"})[0] == 201
        assert call("POST", "/api/v1/reports", b"{}", {"Content-Type": "application/json"})[0] == 422
        assert call("GET", "/nowhere")[0] == 404
        # a client that gives up half way through a too-large upload
        sock = socket.create_connection((host, int(port)), source_address=(source_ip, 0))
        sock.sendall(f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     f"boundary=b\r\nContent-Length: {10 * MIB}\r\nUser-Agent: CanaryAgent/9.9\r\n"
                     f"X-Forwarded-For: 203.0.113.99\r\n\r\n".encode() + b"x" * 100_000)
        sock.recv(1024)
        sock.close()
        time.sleep(0.5)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    wait_until(lambda: db_rows(config["DATABASE_URL"], "outbox")
               and all(r["published_at"] for r in db_rows(config["DATABASE_URL"], "outbox")))
    everything = "\n".join(records) + db_dump(config["DATABASE_URL"])
    everything += "".join(c.decode("utf-8", "replace") for c in CONTENT.values())
    assert records, "the capture saw no log lines at all"
    for canary in [source_ip, *canaries.values()]:
        assert canary not in everything, canary


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migrated_schema_equals_models(backend, pg_url, tmp_path):
    url = pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'intake.db'}"
    assert schema_differences(ALEMBIC_DIR, url, Base.metadata) == []


def test_reporter_form_with_proof_of_work_in_the_query(stack):
    base, config = stack(WBS_POW_BITS=8)
    values = {"unit": "itjen", "category": "ethics", "description": "d", "party_name": "Pak Y",
              "relationship": "official", "involved": "yes", "good_faith": "on"}
    data, ctype = _form(values)
    # without JavaScript there is no proof: a clear page, nothing kept
    resp = requests.post(f"{base}/submit", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 428 and "proof of work" in resp.text
    # what pow.js does: solve, then post to /submit?pow=<challenge>:<nonce>
    pow_ = requests.get(f"{base}/api/v1/pow", timeout=30).json()
    proof = f"{pow_['challenge']}:{solve(pow_['challenge'], 8)}"
    resp = requests.post(f"{base}/submit", params={"pow": proof}, data=data,
                         headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 201, resp.text
    assert len(db_rows(config["DATABASE_URL"], "reports")) == 1


def test_signed_in_reporter_adds_evidence(stack):
    base, config = stack()
    receipt = requests.post(f"{base}/api/v1/reports", json=good_report(), timeout=30).json()["receipt"]
    token = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": receipt}, timeout=30).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = (b'--b1\r\nContent-Disposition: form-data; name="evidence"; filename="more.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + b"P" * (MIB + 7) + b"\r\n--b1--\r\n")
    headers = {"Content-Type": "multipart/form-data; boundary=b1"}
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=body, headers={**headers, **auth}, timeout=30)
    assert resp.status_code == 201, resp.text
    (item,) = resp.json()["evidence"]
    assert item["size_bytes"] == MIB + 7
    assert db_rows(config["DATABASE_URL"], "reports")[0]["evidence_count"] == 1
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=body, headers=headers, timeout=30)
    assert resp.status_code == 401


# -- follow-up: sessions, messages, evidence later, shredding -----------------------------------

def _submit_and_sign_in(base, report=None):
    body = requests.post(f"{base}/api/v1/reports", json=report or good_report(), timeout=30).json()
    token = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": body["receipt"]},
                          timeout=30).json()["token"]
    return body, {"Authorization": f"Bearer {token}"}


def test_follow_up_reads_state_history_and_messages_and_answers(stack):
    base, config = stack()
    tap = EventTap(config["AMQP_URI"])
    try:
        body, auth = _submit_and_sign_in(base)
        tap.get()  # report_submitted
        report_id = body["report_id"]

        # before verification has opened a case: received, for certain
        view = requests.get(f"{base}/api/v1/reporter/report", headers=auth, timeout=30).json()
        assert view["state"] == {"code": "received", "label": "Laporan diterima"}
        assert [h["code"] for h in view["history"]] == ["received"] and view["messages"] == []

        # the inspector asked a question (verification lists it, storage holds its text)
        MESSAGES[(report_id, "m-question")] = "Kapan rapat itu terjadi? CANARY-QUESTION"
        STATUS[report_id] = {"messages": [("m-question", "to_reporter")]}
        view = requests.get(f"{base}/api/v1/reporter/report", params={"lang": "en"}, headers=auth, timeout=30).json()
        assert view["state"] == {"code": "verification", "label": "Under verification"}
        assert [h["code"] for h in view["history"]] == ["received", "verification"]
        assert view["messages"] == [{"direction": "to_reporter", "text": "Kapan rapat itu terjadi? CANARY-QUESTION",
                                     "at": "2026-11-20T10:00:00Z"}]
        assert ("get_report_status", report_id, "en") in CALLS
        assert ("read_messages", report_id, ("m-question",)) in CALLS

        # the reporter answers: sealed to storage, then reporter_message_posted (no text)
        resp = requests.post(f"{base}/api/v1/reporter/messages", json={"text": "  3 Maret. CANARY-ANSWER  "},
                             headers=auth, timeout=30)
        assert resp.status_code == 201, resp.text
        message_id = resp.json()["message_id"]
        assert str(uuid.UUID(message_id)) == message_id
        assert MESSAGES[(report_id, message_id)] == "3 Maret. CANARY-ANSWER"
        routing_key, _props, raw = tap.get()
        assert routing_key == "reporter_message_posted" and b"CANARY" not in raw
        event = json.loads(raw)
        validate_event("reporter_message_posted", event)
        assert (event["report_id"], event["message_id"]) == (report_id, message_id)
    finally:
        tap.close()
    assert not any(b"CANARY" in w for w in WIRE), "a message crossed the broker in plaintext"
    assert "CANARY" not in db_dump(config["DATABASE_URL"])

    # bad messages: clear reasons, nothing stored, no event
    for bad, code in ((None, 422), ("   ", 422), ("x" * 10_001, 422), ("a\x00b", 422), (["x"], 422)):
        resp = requests.post(f"{base}/api/v1/reporter/messages", json={"text": bad}, headers=auth, timeout=30)
        assert resp.status_code == code, (bad, resp.text)
        assert resp.json()["error"]["code"] == "invalid_report" and "text" in resp.json()["error"]["fields"]
    assert requests.post(f"{base}/api/v1/reporter/messages", json={"text": "x"}, timeout=30).status_code == 401
    assert len([c for c in CALLS if c[0] == "store_message"]) == 1


def test_sign_out_ends_the_session_at_once(stack):
    base, _config = stack()
    _body, auth = _submit_and_sign_in(base)
    assert requests.get(f"{base}/api/v1/reporter/report", headers=auth, timeout=30).status_code == 200
    assert requests.delete(f"{base}/api/v1/reporter/session", headers=auth, timeout=30).status_code == 204
    assert requests.get(f"{base}/api/v1/reporter/report", headers=auth, timeout=30).status_code == 401


def test_a_shredded_report_is_forgotten_and_its_receipt_looks_wrong(stack):
    base, config = stack()
    body, auth = _submit_and_sign_in(base)
    connection = pika.BlockingConnection(pika.URLParameters(config["AMQP_URI"]))
    channel = connection.channel()
    channel.exchange_declare("storage.events", exchange_type="topic", durable=True)
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T00:00:00Z",
             "report_id": body["report_id"]}
    for _ in range(2):  # a redelivery changes nothing
        channel.basic_publish("storage.events", "report_shredded", json.dumps(event).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
    connection.close()
    wait_until(lambda: db_rows(config["DATABASE_URL"], "reports") == [])
    assert db_rows(config["DATABASE_URL"], "reporter_sessions") == []
    assert requests.get(f"{base}/api/v1/reporter/report", headers=auth, timeout=30).status_code == 401
    right = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": body["receipt"]}, timeout=30)
    wrong = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": "AAAA-BBBB-CCCC-DDDD-EEEE"}, timeout=30)
    assert (right.status_code, right.text) == (wrong.status_code, wrong.text) == (401, wrong.text)


def test_wrong_receipts_of_every_kind_get_one_answer(stack):
    base, _config = stack()
    answers = set()
    for wrong in ("AAAA-AAAA-AAAA-AAAA-AAAA", "aaaaaaaaaaaaaaaaaaaa", "", "x" * 65, "ÄÄÄÄ-ÄÄÄÄ-ÄÄÄÄ-ÄÄÄÄ-ÄÄÄÄ",
                  None, 7, ["AAAA"], {"a": 1}):
        r = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": wrong}, timeout=30)
        answers.add((r.status_code, r.text, r.headers.get("Content-Type")))
    r = requests.post(f"{base}/api/v1/reporter/session", json={}, timeout=30)
    answers.add((r.status_code, r.text, r.headers.get("Content-Type")))
    assert len(answers) == 1 and next(iter(answers))[0] == 401


# -- upload abuse matrix ----------------------------------------------------------------------

def _evidence_body(files, boundary="abuseB"):
    out = io.BytesIO()
    for name, data, ctype in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="evidence"; filename="{name}"\r\n'
                  f"Content-Type: {ctype}\r\n\r\n".encode("utf-8") + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _zip_bomb() -> bytes:
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (50 * MIB))  # 50 MiB that compress to ~50 KiB
    return buffer.getvalue()


def test_upload_abuse_matrix_stores_files_as_sent_under_safe_names(stack):
    base, config = stack(INTAKE_MAX_FILES=12)
    bomb = _zip_bomb()
    assert len(bomb) < 200 * 1024
    cases = [
        ("laporan.pdf", b"MZ\x90\x00 this is really an exe", "application/pdf"),  # extension/content mismatch
        ("bom.zip", bomb, "application/zip"),                                   # never unpacked
        ("", b"no name given", "text/plain"),                                   # zero-length name
        ("../../../etc/passwd", b"traversal", "text/plain"),
        # a quoted-string in the header: each backslash of the Windows path escaped, as IE sent it
        ("C:\\\\Users\\\\ani\\\\bukti.docx", b"windows path", "application/msword"),
        ("nul\x01ctl\x7fname.txt", b"control characters", "text/plain"),
        ("invoice\u202efdp.exe", b"rtl override", "application/octet-stream"),
        ("a" * 400 + ".pdf", b"long name", "application/pdf"),
        ("..", b"dots only", "text/plain"),
        ("rapat.txt", b"", "text/plain"),                                       # empty: not stored
    ]
    data, headers = _evidence_body(cases)
    resp = requests.post(f"{base}/api/v1/reports", data=multipart(good_report(), [])[0].replace(b"--wbsBoundaryX1--\r\n", b""),
                         headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=30)
    assert resp.status_code == 400  # a body that is not the boundary it declares
    body, auth = _submit_and_sign_in(base)
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=data, headers={**headers, **auth}, timeout=60)
    assert resp.status_code == 201, resp.text
    assert len(resp.json()["evidence"]) == len(cases) - 1
    stored = [u for u in UPLOADS.values() if u["finished"]]
    names = [u["filename"] for u in stored]
    assert names == ["laporan.pdf", "bom.zip", "evidence", "passwd", "bukti.docx", "nulctlname.txt",
                     "invoicefdp.exe", "a" * 196 + ".pdf", "evidence"]
    by_name = {u["filename"]: u for u in stored}
    assert bytes(by_name["bom.zip"]["data"]) == bomb  # stored as sent, not inflated
    assert bytes(by_name["laporan.pdf"]["data"]).startswith(b"MZ") and by_name["laporan.pdf"]["media_type"] == "application/pdf"
    assert all(len(n.encode()) <= 200 and "/" not in n and "\\" not in n and "\x00" not in n for n in names)
    # the names reached storage only sealed; intake kept none of them
    dump = db_dump(config["DATABASE_URL"])
    assert "passwd" not in dump and "bukti.docx" not in dump and "laporan.pdf" not in dump
    assert not any(b"bukti.docx" in w or b"laporan.pdf" in w for w in WIRE)

    # only empty files: nothing to add
    data, headers = _evidence_body([("kosong.txt", b"", "text/plain")])
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=data, headers={**headers, **auth}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "no_evidence"


def test_files_and_bytes_per_report_hold_across_follow_up_uploads(stack):
    base, config = stack(INTAKE_MAX_FILES=3, INTAKE_MAX_REPORT_BYTES=3 * MIB)
    # too many files in one submission: 413 while streaming, nothing kept
    four = [(f"f{i}.bin", b"x" * 10, "application/octet-stream") for i in range(4)]
    data, ctype = multipart(good_report(), four)
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 413 and "Too many" in resp.json()["error"]["message"]
    assert db_rows(config["DATABASE_URL"], "reports") == []

    data, ctype = multipart(good_report(), [("a.bin", b"a" * (2 * MIB), "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reports", data=data, headers={"Content-Type": ctype}, timeout=60)
    assert resp.status_code == 201
    token = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": resp.json()["receipt"]},
                          timeout=30).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    # 1 MiB + 1 byte more would pass the per-request limit but not the report's 3 MiB budget
    data, headers = _evidence_body([("b.bin", b"b" * (MIB + 1), "application/octet-stream")])
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=data, headers={**headers, **auth}, timeout=60)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large"
    assert "together" in resp.json()["error"]["message"]
    # two small files fit; then the file count is used up
    data, headers = _evidence_body([("c.bin", b"c" * 100, "text/plain"), ("d.bin", b"d" * 100, "text/plain")])
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=data, headers={**headers, **auth}, timeout=60)
    assert resp.status_code == 201, resp.text
    row = db_rows(config["DATABASE_URL"], "reports")[0]
    assert (row["evidence_count"], row["evidence_bytes"]) == (3, 2 * MIB + 200)
    data, headers = _evidence_body([("e.bin", b"e", "text/plain")])
    resp = requests.post(f"{base}/api/v1/reporter/evidence", data=data, headers={**headers, **auth}, timeout=30)
    assert resp.status_code == 413 and "Too many" in resp.json()["error"]["message"]


def test_413_arrives_before_the_whole_body_is_sent(stack):
    """A 64 MiB upload whose declared length passes the request limit but whose file breaks the
    per-file limit (1 MiB): the answer comes while the client still has most of the body
    unsent. (A declared length over the request limit is refused before any body is read:
    test_oversize_is_refused_with_413.)"""
    base, config = stack(INTAKE_MAX_FILE_BYTES=MIB)
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    planned = 64 * MIB
    head = (b'--b\r\nContent-Disposition: form-data; name="report"\r\n\r\n' + json.dumps(good_report()).encode()
            + b'\r\n--b\r\nContent-Disposition: form-data; name="evidence"; filename="big.bin"\r\n\r\n')
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" % planned + head)
    sent = len(head)
    sock.settimeout(0.05)
    answer = b""
    while sent < planned and b"\r\n\r\n" not in answer:
        try:
            sock.sendall(b"z" * (64 * 1024))
            sent += 64 * 1024
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            answer += sock.recv(4096)
        except (socket.timeout, BlockingIOError):
            pass
    sock.settimeout(30)
    try:
        while b"\r\n\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * MIB, f"the client sent {sent} bytes before the answer"
    assert db_rows(config["DATABASE_URL"], "reports") == []


def test_the_global_throttle_answers_429_with_retry_after(stack):
    base, _config = stack(INTAKE_THROTTLE_PER_MINUTE=6)  # a burst of 5, then one every 10 s
    statuses = []
    for _ in range(7):
        r = requests.post(f"{base}/api/v1/reporter/session", json={"receipt": "AAAA-AAAA-AAAA-AAAA-AAAA"}, timeout=30)
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert r.json()["error"]["code"] == "too_many_requests" and int(r.headers["Retry-After"]) >= 1
    assert requests.get(f"{base}/api/v1/categories", timeout=30).status_code == 200  # reads stay open


# -- headers, pages, languages ----------------------------------------------------------------

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "worker-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _check_headers(resp):
    h = resp.headers
    assert h["Content-Security-Policy"] == CSP, resp.url
    assert h["Cache-Control"] == "no-store" and h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer" and h["X-Frame-Options"] == "DENY"


def _check_page(html):
    """No inline script, style or event handler (the CSP would block them; none is needed),
    and nothing from another origin."""
    from html.parser import HTMLParser

    problems = []

    class Page(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "script":
                if not attrs.get("src", "").startswith("/static/"):
                    problems.append("inline or foreign script")
                self.in_script = True
            if tag == "style" or "style" in attrs or any(a.startswith("on") for a in attrs):
                problems.append(f"inline style or handler on <{tag}>")
            for name in ("src", "href", "action"):
                value = attrs.get(name) or ""
                if "//" in value or value.startswith(("http:", "https:", "data:", "javascript:")):
                    problems.append(f"{name}={value}")

        def handle_data(self, data):
            if self.in_script and data.strip():
                problems.append("inline script text")

        def handle_endtag(self, tag):
            if tag == "script":
                self.in_script = False

    Page().feed(html)
    assert problems == []


def test_every_page_and_answer_carries_the_strict_headers(stack):
    base, _config = stack()
    session = requests.Session()
    pages = ["/", "/?lang=en", "/follow-up", "/follow-up?lang=en"]
    for path in pages:
        resp = session.get(base + path, timeout=30)
        assert resp.status_code == 200
        _check_headers(resp)
        _check_page(resp.text)
    for path in ("/static/pow.js", "/static/pow-worker.js", "/static/style.css", "/api/v1/pow",
                 "/api/v1/openapi.json", "/api/v1/categories", "/nowhere", "/static/nope.js"):
        _check_headers(session.get(base + path, timeout=30))
    values = {"unit": "dit-smp", "category": "bribery", "description": "d", "party_name": "Pak X",
              "relationship": "public", "involved": "no", "good_faith": "on"}
    data, ctype = _form(values)
    resp = session.post(f"{base}/submit", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 201
    _check_headers(resp)
    _check_page(resp.text)
    for resp in (session.post(f"{base}/api/v1/reports", json={}, timeout=30),
                 session.post(f"{base}/api/v1/reporter/session", json={"receipt": "x"}, timeout=30)):
        _check_headers(resp)


def test_language_is_chosen_on_the_page_never_from_the_browser(stack):
    base, _config = stack()
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    page = requests.get(f"{base}/", headers=english_browser, timeout=30)
    assert '<html lang="id">' in page.text and "Laporkan dugaan pelanggaran" in page.text
    assert "wbs_lang" not in page.headers.get("Set-Cookie", "")
    session = requests.Session()
    page = session.get(f"{base}/?lang=en", timeout=30)
    assert '<html lang="en">' in page.text and "Report a suspected violation" in page.text
    assert "Conflict of interest" in page.text and "Employee" in page.text
    cookie = page.headers["Set-Cookie"]
    assert "wbs_lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert '<html lang="en">' in session.get(f"{base}/follow-up", timeout=30).text  # remembered
    assert '<html lang="id">' in session.get(f"{base}/follow-up?lang=id", timeout=30).text  # switched back
    # a reason on the re-shown form, in the page's language
    values = {"unit": "dit-smp", "category": "bribery", "description": "d", "relationship": "public",
              "involved": "no"}
    data, ctype = _form(values)
    resp = requests.post(f"{base}/submit?lang=en", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 400 and "You must declare that the report is made in good faith." in resp.text


def test_follow_up_pages_work_without_javascript(stack):
    """What a browser with scripts off does: plain form posts, a session cookie, redirects."""
    base, config = stack()
    body, _auth = _submit_and_sign_in(base)
    report_id = body["report_id"]
    MESSAGES[(report_id, "m1")] = "Mohon kirim foto kuitansi."
    STATUS[report_id] = {"messages": [("m1", "to_reporter")]}
    browser = requests.Session()
    page = browser.get(f"{base}/follow-up", timeout=30)
    assert 'name="receipt"' in page.text
    assert len(db_rows(config["DATABASE_URL"], "reporter_sessions")) == 1

    data, ctype = _form({"receipt": "AAAA-AAAA-AAAA-AAAA-AAAA"})
    resp = browser.post(f"{base}/follow-up/sign-in", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 401 and "tidak dikenali" in resp.text and "wbs_session" not in browser.cookies

    data, ctype = _form({"receipt": body["receipt"].lower().replace("-", " ")})
    resp = browser.post(f"{base}/follow-up/sign-in", data=data, headers={"Content-Type": ctype},
                        timeout=30, allow_redirects=False)
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/follow-up" in cookie
    page = browser.get(f"{base}/follow-up", timeout=30)
    assert "Dalam verifikasi" in page.text and "Mohon kirim foto kuitansi." in page.text
    assert page.text.count("<li") >= 3  # two history entries and the message

    data, ctype = _form({"text": "   "})
    resp = browser.post(f"{base}/follow-up/messages", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 400 and "Pesan Anda: Wajib diisi." in resp.text and 'role="alert"' in resp.text

    data, ctype = _form({"text": "Fotonya saya lampirkan."})
    resp = browser.post(f"{base}/follow-up/messages", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 200 and "Pesan Anda telah terkirim." in resp.text
    assert "Fotonya saya lampirkan." in MESSAGES.values()

    data, ctype = _form({}, [("kuitansi.jpg", b"\xff\xd8 jpeg bytes")])
    resp = browser.post(f"{base}/follow-up/evidence", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 200 and "Berkas Anda telah ditambahkan." in resp.text
    assert db_rows(config["DATABASE_URL"], "reports")[0]["evidence_count"] == 1

    data, ctype = _form({})
    resp = browser.post(f"{base}/follow-up/sign-out", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert resp.status_code == 200 and 'name="receipt"' in resp.text
    assert len(db_rows(config["DATABASE_URL"], "reporter_sessions")) == 1  # only the API sign-in's


def test_pages_are_labelled_and_structured_for_assistive_technology(stack):
    """Every visible control has a label, every page one h1 and a language, radio groups and
    sections are fieldsets with legends, errors are announced (role=alert)."""
    from html.parser import HTMLParser

    base, _config = stack()
    browser = requests.Session()
    body, _auth = _submit_and_sign_in(base)
    pages = {"form": browser.get(f"{base}/?lang=en", timeout=30).text,
             "sign-in": browser.get(f"{base}/follow-up", timeout=30).text}
    data, ctype = _form({"receipt": body["receipt"]})
    pages["follow-up"] = browser.post(f"{base}/follow-up/sign-in", data=data, headers={"Content-Type": ctype},
                                      timeout=30).text
    data, ctype = _form({"unit": "dit-smp"})
    pages["invalid"] = requests.post(f"{base}/submit", data=data, headers={"Content-Type": ctype}, timeout=30).text

    for name, html in pages.items():
        controls, labelled, headings, seen = [], set(), [], {"fieldset": 0, "legend": 0, "alert": 0, "lang": None}
        stack_of_labels = []

        class Page(HTMLParser):
            def handle_starttag(self, tag, attrs):
                attrs = dict(attrs)
                if tag == "html":
                    seen["lang"] = attrs.get("lang")
                if tag == "label":
                    stack_of_labels.append(attrs.get("for"))
                    if attrs.get("for"):
                        labelled.add(attrs["for"])
                if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
                    controls.append(attrs.get("id") or f"<{tag} {attrs.get('name')}>")
                    if stack_of_labels:
                        labelled.add(attrs.get("id") or f"<{tag} {attrs.get('name')}>")
                if tag in ("h1", "h2", "h3"):
                    headings.append(tag)
                if tag in ("fieldset", "legend"):
                    seen[tag] += 1
                if attrs.get("role") == "alert":
                    seen["alert"] += 1

            def handle_endtag(self, tag):
                if tag == "label" and stack_of_labels:
                    stack_of_labels.pop()

        Page().feed(html)
        assert seen["lang"] in ("id", "en"), name
        assert headings.count("h1") == 1 and headings[0] == "h1", (name, headings)
        assert controls and set(controls) <= labelled, (name, set(controls) - labelled)
        assert seen["fieldset"] == seen["legend"], name
        if name == "form":
            assert seen["fieldset"] >= 8  # what, who, when, where, how, about you, declaration, evidence
        if name == "invalid":
            assert seen["alert"] == 1


def _scan_for(needle, *roots):
    hits = []
    for root in roots:
        for dirpath, _dirs, filenames in os.walk(root):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                try:
                    with open(path, "rb") as handle:
                        if needle in handle.read():
                            hits.append(path)
                except OSError:
                    pass
    return hits


def test_no_plaintext_on_disk_during_and_after_an_upload(stack, private_tmp):
    """The upload stops half way (the server holds a part-read file); the temp and data dirs
    are scanned then, and again after it completes."""
    base, config = stack()
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    needle = b"CANARY-DURING-UPLOAD-" + uuid.uuid4().hex.encode()
    block = (needle + b" ") * (64 * 1024 // (len(needle) + 1))
    first_half, second_half = block * 40, block * 40  # ~5 MiB in all
    head = (b'--b\r\nContent-Disposition: form-data; name="report"\r\n\r\n' + json.dumps(good_report()).encode()
            + b'\r\n--b\r\nContent-Disposition: form-data; name="evidence"; filename="during.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    tail = b"\r\n--b--\r\n"
    length = len(head) + len(first_half) + len(second_half) + len(tail)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" % length + head + first_half)
    wait_until(lambda: any(u["data"] for u in UPLOADS.values()), timeout=30)  # intake is mid-file
    during = _scan_for(needle, str(private_tmp), config["WBS_DATA_DIR"], tempfile.gettempdir())
    sock.sendall(second_half + tail)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    after = _scan_for(needle, str(private_tmp), config["WBS_DATA_DIR"], tempfile.gettempdir())
    assert during == [] and after == []
    (upload,) = UPLOADS.values()
    assert bytes(upload["data"]) == first_half + second_half


def test_the_page_asks_the_reporter_to_answer_when_the_inspector_waits(stack):
    base, _config = stack()
    body, _auth = _submit_and_sign_in(base)
    MESSAGES[(body["report_id"], "m1")] = "Which contract number?"
    STATUS[body["report_id"]] = {"state": "awaiting_reporter", "messages": [("m1", "to_reporter")]}
    browser = requests.Session()
    data, ctype = _form({"receipt": body["receipt"]})
    page = browser.post(f"{base}/follow-up/sign-in?lang=en", data=data, headers={"Content-Type": ctype}, timeout=30)
    assert page.status_code == 200 and "Please add information" in page.text
    assert "The inspector needs more information from you" in page.text and "Which contract number?" in page.text
    assert "2026-11-20 10:00 UTC" in page.text  # times to the minute

"""intake in a real nameko container, against real RabbitMQ and PostgreSQL.

storage and verification are fakes written here as real nameko services on the same broker, so
intake's RPC (including the sticky per-instance evidence route) runs for real; the fakes record
every call. Events are observed from outside with pika, as another system would.
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
import requests
import sqlalchemy
from nameko.rpc import rpc

from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.migrations import schema_differences
from wbs_plumbing.rpc import InstanceRoute, instance_rpc
from wbs_plumbing.transit import TransitKeyPair

from intake.models import Base
from intake.pow import solve
from intake.service import IntakeService

MIB = 1024 * 1024
ALEMBIC_DIR = os.path.join(os.path.dirname(__file__), "..", "alembic")

CALLS = []
UPLOADS = {}
CONTENT = {}
FAIL = {"store_report_content": False}


TRANSIT = TransitKeyPair()
RECEIVERS = {}
WIRE = []  # every content-bearing argument as it crossed RabbitMQ


def _open(report_id, sender_key, sealed):
    WIRE.append(bytes(sealed))
    key = (report_id, bytes(sender_key))
    if key not in RECEIVERS:
        RECEIVERS[key] = TRANSIT.receiver(bytes(sender_key), report_id)
    return RECEIVERS[key].open(bytes(sealed))


class FakeStorage:
    """Implements the storage RPC surface intake uses, sealed transit included (as storage does:
    storage/README.md); keeps the opened plaintext in memory for checking."""

    name = "storage"
    route = InstanceRoute()

    @rpc
    def open_transit(self):
        CALLS.append(("open_transit",))
        return {"route": self.route, "transit_key": TRANSIT.public_key}

    @rpc
    @instance_rpc
    def begin_evidence(self, report_id, filename, media_type, sender_key=None):
        assert sender_key is not None, "plaintext file name on the wire"
        filename = _open(report_id, sender_key, filename).decode()
        media_type = _open(report_id, sender_key, media_type).decode()
        upload_id = uuid.uuid4().hex
        UPLOADS[upload_id] = {"report_id": report_id, "filename": filename, "sender_key": sender_key,
                              "media_type": media_type, "data": bytearray(), "chunks": [],
                              "finished": False, "aborted": False}
        CALLS.append(("begin_evidence", report_id, filename, media_type))
        return {"upload_id": upload_id, "route": self.route, "transit_key": TRANSIT.public_key}

    @instance_rpc
    def append_evidence(self, upload_id, chunk):
        assert isinstance(chunk, bytes)
        upload = UPLOADS[upload_id]
        plain = _open(upload["report_id"], upload["sender_key"], chunk)
        upload["data"] += plain
        upload["chunks"].append(len(plain))
        CALLS.append(("append_evidence", upload_id, len(plain)))

    @instance_rpc
    def finish_evidence(self, upload_id):
        UPLOADS[upload_id]["finished"] = True
        CALLS.append(("finish_evidence", upload_id))
        return {"evidence_id": str(uuid.uuid4()), "size_bytes": len(UPLOADS[upload_id]["data"]),
                "sha256": "0" * 64}

    @instance_rpc
    def abort_evidence(self, upload_id):
        UPLOADS[upload_id]["aborted"] = True
        CALLS.append(("abort_evidence", upload_id))

    @rpc
    @instance_rpc
    def store_report_content(self, report_id, content, sender_key=None):
        assert sender_key is not None, "plaintext content on the wire"
        CALLS.append(("store_report_content", report_id))
        if FAIL["store_report_content"]:
            raise RuntimeError("vault is sealed shut")
        CONTENT[report_id] = _open(report_id, sender_key, content)

    @rpc
    @instance_rpc
    def discard_report(self, report_id):
        CALLS.append(("discard_report", report_id))
        CONTENT.pop(report_id, None)


class FakeVerification:
    name = "verification"

    @rpc
    def list_units(self):
        CALLS.append(("list_units",))
        return [{"code": "dit-smp", "name": "Direktorat SMP", "parent": None},
                {"code": "itjen", "name": "Inspektorat Jenderal", "parent": None}]


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    UPLOADS.clear()
    CONTENT.clear()
    WIRE.clear()
    RECEIVERS.clear()
    FAIL["store_report_content"] = False


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

    # one file over the per-file limit, found while streaming: the half upload is discarded
    data, ctype = multipart(good_report(), [("a.bin", b"a" * (MIB + MIB // 2), "application/octet-stream")])
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
    FAIL["store_report_content"] = True
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

"""A report travels from a reporter to an inspector through all four services, twice: with the
file evidence store and with S3 (moto's server, through the minio SDK).

What must hold: the inspector gets exactly one content-free email, reads the narrative, downloads
byte-identical evidence, moves the case; another inspector cannot see it; a redelivered event
changes nothing; and the canaries planted in the narrative, an evidence file and the reporter's
request headers appear nowhere they must not: no log line, database row, stored object, queue
message, email, or file under the data and temp dirs.
"""
import io
import json
import os
import secrets
import time
import uuid

import pika
import pyotp
import pytest
import requests
import sqlalchemy

from tests.fixtures import wait_until
from tests.stack import Stack
from wbs_contracts.events import validate_event

EVENT_EXCHANGES = ("intake.events", "storage.events", "verification.events", "notification.events")


class Wiretap:
    """Copies of every message published on the event exchanges and on nameko's RPC exchange."""

    def __init__(self, amqp_uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.events = self.channel.queue_declare("", exclusive=True).method.queue
        self.rpc = self.channel.queue_declare("", exclusive=True).method.queue
        for exchange in EVENT_EXCHANGES:
            self.channel.exchange_declare(exchange, "topic", durable=True)
            self.channel.queue_bind(self.events, exchange, "#")
        self.channel.exchange_declare("nameko-rpc", "topic", durable=True)
        self.channel.queue_bind(self.rpc, "nameko-rpc", "#")
        self.captured = []  # (queue kind, routing key, headers, body)
        self.content_types = set()

    def drain(self):
        for kind, queue in (("event", self.events), ("rpc", self.rpc)):
            while True:
                method, properties, body = self.channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                self.captured.append((kind, method.routing_key, properties.headers or {}, body))
                self.content_types.add((kind, properties.content_type))
        return self.captured

    def events_of(self, event_type):
        self.drain()
        return [json.loads(body) for kind, key, _h, body in self.captured if kind == "event" and key == event_type]

    def close(self):
        self.connection.close()


def make_stack(tmp_path, rabbit_uri, pg_database, smtp_sink, store, s3_server=None, s3_bucket=None):
    databases = {service: pg_database(service) for service in ("intake", "storage", "verification", "notification")}
    return Stack(tmp_path / "stack", rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port),
                 s3=s3_server if store == "s3" else None, s3_bucket=s3_bucket)


def enrol(stack, username, unit, *options):
    output = stack.wbs("inspector", "add", username, "--email", f"{username}@itjen.example.go.id", "--unit", unit,
                       *options)
    password = next(line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("password:"))
    uri = next(word for word in output.split() if word.startswith("otpauth://"))
    return {"username": username, "password": password, "totp": pyotp.parse_uri(uri)}


def sign_in(stack, account):
    response = requests.post(f"{stack.console_url}/api/v1/auth/login", json={
        "username": account["username"], "password": account["password"], "otp": account["totp"].now()})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def scan_databases(urls, needles):
    """Every row of every table, as text (bytea shows as hex, so look for hex needles too)."""
    hits = []
    for url in urls:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as connection:
            tables = [row[0] for row in connection.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                for row in connection.exec_driver_sql(f'SELECT t::text FROM "{table}" t'):
                    text = row[0].lower()
                    hits += [f"{url.rsplit('/', 1)[1]}.{table}" for needle in needles if needle.lower() in text]
        engine.dispose()
    return hits


def scan_files(folder, needles):
    hits = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            hits += [path for needle in needles if needle in data]
    return hits


@pytest.mark.e2e
@pytest.mark.parametrize("store", ["file", "s3"])
def test_report_reaches_the_inspector_and_leaks_nowhere(store, tmp_path, rabbit_uri, pg_database, smtp_sink,
                                                         s3_server, s3_bucket):
    canary_text = f"KANARI-NARASI-{secrets.token_hex(8)}"
    canary_file = f"KANARI-BUKTI-{secrets.token_hex(8)}".encode()
    canary_ip = f"203.0.113.{secrets.randbelow(250) + 1}, 198.51.100.{secrets.randbelow(250) + 1}"
    canary_agent = f"KanariBrowser/{secrets.token_hex(6)}"
    files = {
        "laporan-keuangan.pdf": b"%PDF-1.4\n" + canary_file + os.urandom(2 * 1024 * 1024 - 100),
        "foto kuitansi.jpg": b"\xff\xd8\xff\xe0" + os.urandom(300_000),
        "catatan.txt": b"rapat pengadaan tanggal 3 " + canary_file,
    }

    stack = make_stack(tmp_path, rabbit_uri, pg_database, smtp_sink, store, s3_server, s3_bucket)
    wiretap = None
    with stack.start():
        stack.wbs("unit", "add", "e2e-itjen", "--name", "Inspektorat Jenderal E2E", "--inspectorate")
        stack.wbs("unit", "add", "e2e-dit", "--name", "Direktorat E2E", "--parent", "e2e-itjen")
        stack.wbs("unit", "add", "e2e-lain", "--name", "Inspektorat Lain", "--inspectorate")
        inspector = enrol(stack, "e2e-inspektur", "e2e-itjen")
        outsider = enrol(stack, "e2e-luar", "e2e-lain")
        wiretap = Wiretap(rabbit_uri)

        report = {
            "unit": "e2e-dit", "category": "procurement",
            "title": "Panitia pengadaan memenangkan perusahaan saudaranya",
            "description": f"Kronologi: {canary_text}. Pemenang lelang adalah perusahaan adik ketua panitia.",
            "occurred": {"from": "2026-09-01", "to": "2026-10-15", "ongoing": False},
            "location": "Jakarta, pengadaan alat laboratorium",
            "parties": [{"name": "Budi S.", "position": "Ketua panitia pengadaan", "unit": "e2e-dit"}],
            "reporter": {"relationship": "employee", "involved": False},
            "language": "id", "good_faith": True,
        }
        multipart = [("report", (None, json.dumps(report), "application/json"))] + [
            ("evidence", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files.items()]
        response = requests.post(f"{stack.intake_url}/api/v1/reports", files=multipart, headers={
            "X-Forwarded-For": canary_ip, "User-Agent": canary_agent, "Accept-Language": "id-ID,kanari;q=0.9"})
        assert response.status_code == 201, response.text
        receipt = response.json()["receipt"]
        report_id = response.json()["report_id"]

        # exactly one content-free email to the assigned inspector
        (mail,) = smtp_sink.wait_for(1, timeout=30)
        assert mail["To"] == "e2e-inspektur@itjen.example.go.id"
        mail_text = mail.get_body(("plain",)).get_content()
        assert stack.console_url in mail_text

        # the inspector reads the case and downloads identical evidence
        auth = sign_in(stack, inspector)
        cases = requests.get(f"{stack.console_url}/api/v1/cases", headers=auth).json()["cases"]
        assert len(cases) == 1
        case_id = cases[0]["case_id"]
        case = requests.get(f"{stack.console_url}/api/v1/cases/{case_id}", headers=auth).json()
        assert canary_text in json.dumps(case, ensure_ascii=False)
        assert len(case["evidence"]) == 3
        by_name = {item["filename"]: item for item in case["evidence"]}
        assert set(by_name) == set(files)
        for name, data in files.items():
            download = requests.get(f"{stack.console_url}/api/v1/cases/{case_id}/evidence/{by_name[name]['evidence_id']}",
                                    headers=auth)
            assert download.status_code == 200
            assert download.content == data, name

        # the lifecycle moves, and refuses a forbidden move
        for target in ("verification", "analysis"):
            moved = requests.post(f"{stack.console_url}/api/v1/cases/{case_id}/transitions", headers=auth,
                                  json={"to": target, "reason": "lengkap"})
            assert moved.status_code == 200, moved.text
        assert requests.post(f"{stack.console_url}/api/v1/cases/{case_id}/transitions", headers=auth,
                             json={"to": "received", "reason": "x"}).status_code == 409

        # another inspector: 404, exactly like a case that does not exist
        other = sign_in(stack, outsider)
        assert requests.get(f"{stack.console_url}/api/v1/cases/{case_id}", headers=other).status_code == 404
        assert requests.get(f"{stack.console_url}/api/v1/cases/{uuid.uuid4()}", headers=other).status_code == 404

        # a redelivered report_submitted opens no second case and sends no second email
        (submitted,) = wiretap.events_of("report_submitted")
        assert submitted["report_id"] == report_id
        channel = wiretap.channel
        channel.basic_publish("intake.events", "report_submitted", json.dumps(submitted).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
        time.sleep(3)
        assert len(requests.get(f"{stack.console_url}/api/v1/cases", headers=auth).json()["cases"]) == 1
        assert len(smtp_sink.messages) == 1

        # every event published is valid against its contract schema
        wiretap.drain()
        seen = set()
        for kind, key, _headers, body in wiretap.captured:
            if kind == "event":
                validate_event(key, json.loads(body))
                seen.add(key)
        assert {"report_submitted", "evidence_stored", "case_opened", "case_assigned",
                "case_status_changed", "notification_sent"} <= seen
        # events are JSON for everyone; RPC is msgpack, so sealed bytes travel without base64
        assert wiretap.content_types == {("event", "application/json"), ("rpc", "application/x-msgpack")}

    # -- canaries -------------------------------------------------------------------------
    text_needles = [canary_text.encode(), canary_file, canary_agent.encode(), canary_ip.split(",")[0].encode(),
                    b"kanari;q=0.9", receipt.encode()]
    hex_needles = [n.hex().encode() for n in text_needles]
    assert scan_files(stack.log_dir, text_needles) == [], "canary in a log"
    assert scan_files(stack.data_dir, text_needles) == [], "canary on disk under the data dir"
    assert scan_files(stack.tmp_dir, text_needles) == [], "canary on disk under the temp dir"
    assert scan_databases(stack.env_database_urls(), [n.decode() for n in text_needles + hex_needles]) == []
    for kind, key, headers, body in wiretap.captured:
        blob = body + json.dumps(headers, default=str).encode()
        assert not [n for n in text_needles if n in blob], f"canary in a {kind} message {key}"
    for raw in smtp_sink.raw:
        assert not [n for n in text_needles if n in raw], "canary in an email"
    if store == "s3":
        from minio import Minio
        client = Minio(s3_server["endpoint"], access_key=s3_server["access_key"],
                       secret_key=s3_server["secret_key"], secure=False)
        objects = list(client.list_objects(s3_bucket, recursive=True))
        assert len(objects) >= 3  # three evidence files (the content is sealed in its row)
        for item in objects:
            data = client.get_object(s3_bucket, item.object_name).read()
            assert not [n for n in text_needles if n in data], "canary in a stored object"
    wiretap.close()

"""Findings 1-4 of the security review, replayed against the real broker and the four services
running as separate processes, each under its own broker identity (deploy/rabbitmq).

The attacker holds one service's broker credentials (or the wbs command's, without its admin
key) and tries every privileged RPC and forged event the review used. Each attempt must be
refused -- by RabbitMQ's permissions (ACCESS_REFUSED) or by the receiving service (Forbidden,
or a dead letter with the reason) -- and afterwards the report is intact, its case is the only
one, and exactly one email was sent.
"""
import io
import json
import time
import uuid

import msgpack
import pika
import pytest
import requests

from tests.fixtures import wait_until
from tests.stack import Stack
from tests.test_end_to_end import enrol, sign_in
from wbs_cli.broker import create_identities, definitions_module
from wbs_plumbing.reliable import DEAD_LETTER_QUEUE

IDENTITIES = ("intake", "storage", "verification", "notification", "admin")
# Broker users are global: the tests' users have their own prefix, so a `make run` on the same
# broker (users wbs-*) is not re-passworded under its feet, and fixed passwords, so concurrent
# test runs do not re-password each other's.
PREFIX = "wbs-test-"
TEST_PASSWORDS = {identity: f"wbs-test-{identity}-not-a-secret" for identity in IDENTITIES}


class Intruder:
    """A process holding one identity's broker credentials, speaking AMQP by hand."""

    def __init__(self, uri: str, reply_prefix: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.reply_prefix = reply_prefix

    def refused(self, exchange: str, routing_key: str, body: bytes = b"{}", **properties) -> str | None:
        """Publish with confirms; the broker's refusal text, or None if it took the message."""
        channel = self.connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties))
        except pika.exceptions.ChannelClosedByBroker as exc:
            return exc.reply_text
        channel.close()
        return None

    def call(self, service: str, method: str, *args, timeout: float = 15, **kwargs):
        """A nameko RPC made by hand (reply queue named as the identity's own services name
        theirs): the reply's ``error`` or ``result``; a broker refusal raises."""
        channel = self.connection.channel()
        key = str(uuid.uuid4())
        queue = f"rpc.reply-{self.reply_prefix}-{key}"
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        channel.queue_bind(queue, "nameko-rpc", key)
        channel.confirm_delivery()
        channel.basic_publish("nameko-rpc", f"{service}.{method}",
                              json.dumps({"args": list(args), "kwargs": kwargs}).encode(),
                              pika.BasicProperties(content_type="application/json", reply_to=key,
                                                   correlation_id=key, delivery_mode=2))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame, properties, body = channel.basic_get(queue, auto_ack=True)
            if frame is not None:
                channel.close()
                answer = (msgpack.unpackb(body, raw=False) if properties.content_type == "application/x-msgpack"
                          else json.loads(body))
                return answer
            time.sleep(0.05)
        raise AssertionError(f"no reply from {service}.{method}")

    def close(self):
        self.connection.close()


def refused_call(intruder, service, method, *args, **kwargs) -> str:
    """The broker's refusal of an RPC the identity may not even send."""
    try:
        intruder.call(service, method, *args, **kwargs)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_text
    raise AssertionError(f"{service}.{method} was not refused by the broker")


@pytest.fixture
def identities(rabbit_uri):
    return create_identities(rabbit_uri, TEST_PASSWORDS, prefix=PREFIX)


@pytest.fixture
def stack(tmp_path, rabbit_uri, pg_database, smtp_sink, identities):
    databases = {service: pg_database(service) for service in ("intake", "storage", "verification", "notification")}
    stack = Stack(tmp_path / "stack", rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port),
                  identities=identities)
    with stack.start():
        yield stack


def submit(stack) -> dict:
    report = {
        "unit": "att-dit", "category": "procurement", "title": "Pengadaan diarahkan ke satu vendor",
        "description": "Kronologi lengkap ada di lampiran; panitia bertemu vendor sebelum lelang.",
        "occurred": {"from": "2026-09-01", "to": "2026-10-15", "ongoing": False},
        "location": "Jakarta", "parties": [{"name": "Budi S.", "position": "Ketua panitia", "unit": "att-dit"}],
        "reporter": {"relationship": "employee", "involved": False}, "language": "id", "good_faith": True,
    }
    response = requests.post(f"{stack.intake_url}/api/v1/reports", files=[
        ("report", (None, json.dumps(report), "application/json")),
        ("evidence", ("bukti.txt", io.BytesIO(b"bukti rapat"), "text/plain"))], timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def dead_letters(admin_uri) -> list[dict]:
    """Reasons and queues of the dead letters, read without consuming them (as `wbs dlq list`)."""
    connection = pika.BlockingConnection(pika.URLParameters(admin_uri))
    try:
        channel = connection.channel()
        letters = []
        while True:
            frame, properties, _body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
            if frame is None:
                return letters
            letters.append({"queue": properties.headers.get("x-wbs-original-queue"),
                            "reason": properties.headers.get("x-wbs-reason")})
    finally:
        connection.close()


@pytest.mark.e2e
def test_one_service_s_broker_credentials_destroy_nothing_and_forge_nothing(stack, identities, smtp_sink):
    stack.wbs("unit", "add", "att-itjen", "--name", "Inspektorat Jenderal", "--inspectorate")
    stack.wbs("unit", "add", "att-dit", "--name", "Direktorat", "--parent", "att-itjen")
    inspector = enrol(stack, "att-inspektur", "att-itjen")
    submitted = submit(stack)  # the services work under least privilege: a case, one email
    report_id = submitted["report_id"]
    (mail,) = smtp_sink.wait_for(1, timeout=30)
    assert mail["To"] == "att-inspektur@itjen.example.go.id"

    intake = Intruder(identities["intake"], "intake")
    notification = Intruder(identities["notification"], "notification")
    admin = Intruder(identities["admin"], "standalone_rpc_proxy")
    try:
        # Finding 1: evidence destroyed without a grant.
        assert f"refused for user '{PREFIX}intake'" in refused_call(intake, "storage", "run_retention")
        answer = intake.call("storage", "discard_report", report_id)  # allowed on the broker ...
        assert answer["error"]["exc_type"] == "Forbidden"  # ... but not without intake's signed command
        assert admin.call("storage", "run_retention")["error"]["exc_type"] == "Forbidden"  # no admin key
        answer = admin.call("storage", "run_retention", now="2099-01-01T00:00:00Z")
        assert answer["error"]["exc_type"] == "IncorrectSignature"  # it takes no clock from anyone
        assert "refused" in intake.refused("verification.events", "case_status_changed", json.dumps({
            "schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2020-01-01T00:00:00Z",
            "case_id": str(uuid.uuid4()), "report_id": report_id, "from_state": "verification",
            "to_state": "not_actionable"}).encode(), content_type="application/json")
        # the same forged event pushed straight into storage's queue through the default exchange
        queue = "evt-verification-case_status_changed--storage.handle_case_status_changed"
        forged = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2020-01-01T00:00:00Z",
                  "case_id": str(uuid.uuid4()), "report_id": report_id, "from_state": "verification",
                  "to_state": "not_actionable"}
        assert notification.refused("", queue, json.dumps(forged).encode(), content_type="application/json",
                                    user_id=f"{PREFIX}notification", delivery_mode=2) is None
        assert "but authenticated user was" in notification.refused(
            "", queue, b"{}", user_id=f"{PREFIX}verification")  # the broker checks user_id

        # Finding 2: anyone becomes a supervisor.
        assert f"refused for user '{PREFIX}notification'" in refused_call(
            notification, "verification", "add_staff", "mallory", "m@example.org", "att-itjen", "supervisor")
        assert f"refused for user '{PREFIX}intake'" in refused_call(
            intake, "verification", "set_supervision", "att-inspektur", ["att-itjen"])
        for method, args in (("add_staff", ["mallory", "m@example.org", "att-itjen", "supervisor"]),
                             ("set_supervision", ["att-inspektur", ["att-itjen"]]),
                             ("move_staff", ["att-inspektur", "att-dit"]),
                             ("set_staff_active", ["att-inspektur", False]),
                             ("add_unit", ["att-evil", "Evil", None, True]),
                             ("unlock_staff", ["att-inspektur"])):
            answer = admin.call("verification", method, *args)  # the wbs command's broker user, no key
            assert answer["error"]["exc_type"] == "Forbidden", (method, answer)

        # Finding 3: reporter messages without the receipt.
        answer = intake.call("verification", "get_report_status", report_id, "id")
        assert answer["error"]["exc_type"] == "Forbidden"
        assert f"refused for user '{PREFIX}notification'" in refused_call(
            notification, "verification", "get_report_status", report_id, "id")

        # Finding 4: a forged report_submitted (intake's credentials, a report nobody stored).
        phantom = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-24T10:00:00Z",
                   "report_id": str(uuid.uuid4()), "unit": "att-dit", "category": "procurement",
                   "evidence_count": 0}
        assert intake.refused("intake.events", "report_submitted", json.dumps(phantom).encode(),
                              content_type="application/json", user_id=f"{PREFIX}intake", delivery_mode=2) is None
        assert "refused" in notification.refused("intake.events", "report_submitted", json.dumps(phantom).encode())

        def refusals():
            reasons = [letter["reason"] for letter in dead_letters(identities["admin"])]
            found = [r for r in reasons if "storage does not hold" in r or f"not published by {PREFIX}verification" in r]
            return found if len(found) >= 2 else None
        reasons = wait_until(refusals, timeout=30)
        assert any(f"not published by {PREFIX}verification (user_id '{PREFIX}notification')" in r for r in reasons)
        assert any("report_submitted for a report storage does not hold" in r for r in reasons)
    finally:
        for intruder in (intake, notification, admin):
            intruder.close()

    # nothing destroyed, nothing forged: the report is whole, one case, one email; the reporter's
    # status (intake's signed request) and the inspector's reading still work
    session = requests.post(f"{stack.intake_url}/api/v1/reporter/session",
                            json={"receipt": submitted["receipt"]}, timeout=10)
    assert session.status_code == 200, session.text
    status = requests.get(f"{stack.intake_url}/api/v1/reporter/report", timeout=10,
                          headers={"Authorization": f"Bearer {session.json()['token']}"})
    assert status.status_code == 200, status.text
    # anyone who knows a username can lock it (the lock stays); an administrator lifts it
    login = f"{stack.console_url}/api/v1/auth/login"
    for _ in range(5):
        requests.post(login, timeout=10, json={"username": "att-inspektur", "password": "wrong", "otp": "000000"})
    locked = requests.post(login, timeout=10, json={"username": "att-inspektur", "password": inspector["password"],
                                                     "otp": inspector["totp"].now()})
    assert locked.status_code == 401
    assert "att-inspektur: unlocked" in stack.wbs("inspector", "unlock", "att-inspektur")
    auth = sign_in(stack, inspector)
    (case,) = requests.get(f"{stack.console_url}/api/v1/cases", headers=auth, timeout=10).json()["cases"]
    detail = requests.get(f"{stack.console_url}/api/v1/cases/{case['case_id']}", headers=auth, timeout=10).json()
    assert "panitia bertemu vendor" in json.dumps(detail, ensure_ascii=False)
    assert len(detail["evidence"]) == 1
    time.sleep(2)  # let any late effect of the forged events land before counting
    assert len(smtp_sink.messages) == 1
    assert not any("report_submitted" in (letter["queue"] or "") and report_id in (letter["reason"] or "")
                   for letter in dead_letters(identities["admin"]))


def test_the_permission_matrix_names_every_exchange_for_every_identity():
    """Topic permissions allow everything on an exchange they do not name: every identity must
    name every exchange of ours, and only verification may publish verification's events."""
    definitions = definitions_module()
    matrix = definitions.identities()
    exchanges = {definitions.RPC_EXCHANGE, *definitions.EVENT_EXCHANGES}
    for identity, entry in matrix.items():
        assert set(entry["topic"]) == exchanges, identity
        for exchange in definitions.EVENT_EXCHANGES:
            owner = exchange.split(".")[0]
            assert (entry["topic"][exchange]["write"] != "^$") == (identity == owner), (identity, exchange)

"""The notification service in a real nameko container against real RabbitMQ, PostgreSQL and an
SMTP server (aiosmtpd) on loopback, with a fake verification service answering get_recipient.

What each test says must not be lost: the email (exactly one per event and recipient), and the
``notification_sent`` event that tells other systems it went out.
"""
import email
import json
import uuid
from email import policy
from pathlib import Path

import pika
import pytest
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.fixtures import SmtpSink, wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.migrations import schema_differences

from notification.models import Base, CaseReport, Notification
from notification.service import NotificationService

ALEMBIC_DIR = Path(__file__).resolve().parents[1] / "alembic"
CONSOLE = "https://console.itjen.example.go.id"
INSPECTOR_ID = str(uuid.uuid4())
RECIPIENT = {"email": "inspektur@itjen.example.go.id", "display_name": "Canary-Display-Name", "language": "en"}


class FakeVerification:
    """Stands in for verification: only the RPC the notification service calls."""

    name = "verification"
    calls = []
    contacts_calls = []

    disabled = set()

    @rpc
    def get_recipient(self, staff_id):
        FakeVerification.calls.append(staff_id)
        if staff_id in FakeVerification.disabled:
            return None
        return {INSPECTOR_ID: RECIPIENT, SUPERVISOR_ID: SUPERVISOR}.get(staff_id)

    @rpc
    def case_contacts(self, case_id):
        FakeVerification.contacts_calls.append(case_id)
        assignee = None if case_id in UNROUTED else INSPECTOR_ID
        return {"case_id": case_id, "assignee_id": assignee, "supervisor_ids": [SUPERVISOR_ID]}


UNROUTED = set()


SUPERVISOR_ID = "5e0c2a3b-1111-4222-8333-944455556666"
SUPERVISOR = {"email": "pengawas@itjen.example.org", "display_name": "Pengawas", "language": "en"}


class Broker:
    """An outside pika client, as another system integrating with the WBS would be."""

    def __init__(self, uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish_event(self, exchange, routing_key, body: dict):
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.channel.basic_publish(exchange, routing_key, json.dumps(body).encode(),
                                   pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def listen(self, exchange, routing_key):
        self.channel.exchange_declare(exchange, "topic", durable=True)
        queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(queue, exchange, routing_key)
        return queue

    def get_all(self, queue, expected, timeout=15):
        got = []

        def fetch():
            method, _properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method:
                got.append(json.loads(body))
            return len(got) >= expected
        wait_until(fetch, timeout)
        return got

    def close(self):
        self.connection.close()


def case_assigned(**overrides):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
            "case_id": str(uuid.uuid4()), "inspector_id": INSPECTOR_ID, "unit": "dit-smp"}
    body.update(overrides)
    validate_event("case_assigned", body)
    return body


def rows(config, model=Notification):
    engine = create_engine(config["DATABASE_URL"])
    try:
        with Session(engine) as session:
            return session.scalars(select(model)).all()
    finally:
        engine.dispose()


@pytest.fixture
def start(service_config, container_factory):
    """Start the fake verification and the notification service; return (config, broker)."""
    brokers, containers = [], []
    FakeVerification.calls, FakeVerification.contacts_calls, FakeVerification.disabled = [], [], set()

    def start(**overrides):
        settings = dict(WBS_CONSOLE_URL=CONSOLE, NOTIFY_SWEEP_INTERVAL_SECONDS=0.1,
                        NOTIFY_RETRY_BASE_SECONDS=0.2, NOTIFY_RETRY_MAX_SECONDS=0.5,
                        NOTIFY_RPC_TIMEOUT_SECONDS=5)
        settings.update(overrides)
        config = service_config("notification", **settings)
        fake = container_factory(FakeVerification, {"AMQP_URI": config["AMQP_URI"],
                                                    "serializer": "msgpack", "ACCEPT": ["msgpack", "json"]})
        fake.start()
        container = container_factory(NotificationService, config)
        container.start()
        containers.extend([container, fake])
        broker = Broker(config["AMQP_URI"])
        brokers.append(broker)
        return config, container, broker

    yield start
    for broker in brokers:
        broker.close()
    # Stop before the test's database and vhost are dropped, so no worker outlives them.
    for container in containers:
        container.stop()


def test_case_assigned_sends_exactly_one_content_free_email_even_when_delivered_twice(start, smtp_sink):
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    sent_events = broker.listen("notification.events", "notification_sent")
    event = case_assigned()

    with entrypoint_waiter(container, "handle_case_assigned"):
        broker.publish_event("verification.events", "case_assigned", event)
    (message,) = smtp_sink.wait_for(1)

    # the same event again (at-least-once delivery): nothing more happens
    with entrypoint_waiter(container, "handle_case_assigned"):
        broker.publish_event("verification.events", "case_assigned", event)
    (published,) = broker.get_all(sent_events, 1)
    assert len(smtp_sink.messages) == 1
    assert len(rows(config)) == 1

    link = "{}/cases/{}".format(CONSOLE, event["case_id"])
    assert message["To"] == RECIPIENT["email"]
    assert link in message.get_body().get_content()
    raw = smtp_sink.raw[0].decode()
    for forbidden in (RECIPIENT["display_name"], event["unit"], INSPECTOR_ID):
        assert forbidden not in raw

    validate_event("notification_sent", published)
    (row,) = rows(config)
    assert published["notification_id"] == row.notification_id
    assert (published["kind"], published["case_id"]) == ("case_assigned", event["case_id"])
    assert (row.status, row.attempts) == ("sent", 1)
    assert FakeVerification.calls == [INSPECTOR_ID]


def test_an_address_is_asked_once_and_never_used_after_the_staff_member_changed(start, smtp_sink):
    """Three emails to one inspector cost one get_recipient; once verification announces that
    the inspector changed (here: disabled), the remembered address is not used again."""
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    for _ in range(3):
        with entrypoint_waiter(container, "handle_case_assigned"):
            broker.publish_event("verification.events", "case_assigned", case_assigned())
    smtp_sink.wait_for(3)
    assert FakeVerification.calls == [INSPECTOR_ID]

    FakeVerification.disabled.add(INSPECTOR_ID)
    changed = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T11:00:00Z",
               "staff_id": INSPECTOR_ID, "display_name": "Inspektur", "role": "inspector",
               "unit": "itjen", "active": False}
    validate_event("staff_changed", changed)
    with entrypoint_waiter(container, "handle_staff_changed"):
        broker.publish_event("verification.events", "staff_changed", changed)
    with entrypoint_waiter(container, "handle_case_assigned"):
        broker.publish_event("verification.events", "case_assigned", case_assigned())
    assert FakeVerification.calls == [INSPECTOR_ID, INSPECTOR_ID]
    assert len(smtp_sink.messages) == 3
    assert sorted((row.status, row.last_error) for row in rows(config))[0] == ("failed", "no_recipient")


def test_two_copies_racing_still_give_one_email(start, smtp_sink):
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    event = case_assigned()
    done = []

    def both_done(worker_ctx, result, exc_info):
        if exc_info is None:
            done.append(1)
        return len(done) >= 2

    with entrypoint_waiter(container, "handle_case_assigned", callback=both_done, timeout=20):
        broker.publish_event("verification.events", "case_assigned", event)
        broker.publish_event("verification.events", "case_assigned", event)
    smtp_sink.wait_for(1)
    assert len(smtp_sink.messages) == 1
    assert len(rows(config)) == 1


def test_smtp_down_at_first_then_started_the_email_arrives_after_retry(start):
    sink = SmtpSink()  # not started yet: connections to its port are refused
    config, container, broker = start(SMTP_HOST=sink.host, SMTP_PORT=sink.port)
    sent_events = broker.listen("notification.events", "notification_sent")
    event = case_assigned()
    broker.publish_event("verification.events", "case_assigned", event)

    def failed_twice():
        found = rows(config)
        return found and found[0].attempts >= 2 and found[0].status == "pending"
    wait_until(failed_twice, timeout=60)
    assert rows(config)[0].last_error.startswith("mail:")

    sink.start()
    try:
        (message,) = sink.wait_for(1, timeout=60)
        assert event["case_id"] in message.get_body().get_content()
        (published,) = broker.get_all(sent_events, 1)
        validate_event("notification_sent", published)
        (row,) = rows(config)
        assert row.status == "sent" and row.attempts >= 3
        assert published["notification_id"] == row.notification_id
    finally:
        sink.stop()
    assert len(sink.messages) == 1


def test_smtp_never_back_gives_up_after_bounded_attempts(start):
    sink = SmtpSink()  # never started
    config, container, broker = start(SMTP_HOST=sink.host, SMTP_PORT=sink.port, NOTIFY_MAX_ATTEMPTS=3)
    broker.publish_event("verification.events", "case_assigned", case_assigned())
    wait_until(lambda: rows(config) and rows(config)[0].status == "failed", timeout=15)
    (row,) = rows(config)
    assert row.attempts == 3 and row.next_attempt_at is None


def test_outbox_folder_mode_writes_an_eml(start, tmp_path):
    config, container, broker = start()  # no SMTP_HOST
    event = case_assigned()
    broker.publish_event("verification.events", "case_assigned", event)
    outbox = Path(config["WBS_DATA_DIR"]) / "outbox"
    files = wait_until(lambda: sorted(outbox.glob("*.eml")), timeout=15)
    (row,) = rows(config)
    assert [f.name for f in files] == ["{}.eml".format(row.notification_id)]
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == RECIPIENT["email"]
    assert "{}/cases/{}".format(CONSOLE, event["case_id"]) in message.get_content()
    assert not [f for f in outbox.iterdir() if f.name.startswith(".tmp")]


def test_sla_breached_reaches_the_assignee(start, smtp_sink):
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    assigned = case_assigned()
    broker.publish_event("verification.events", "case_assigned", assigned)
    smtp_sink.wait_for(1)
    breach = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
              "case_id": assigned["case_id"], "clock": "feedback", "due_at": "2026-11-30T09:00:00Z"}
    validate_event("sla_breached", breach)
    broker.publish_event("verification.events", "sla_breached", breach)
    messages = smtp_sink.wait_for(3)
    by_address = {m["To"]: m for m in messages[1:]}
    assert "deadline" in by_address[RECIPIENT["email"]]["Subject"].lower()
    assert "oversee" in by_address[SUPERVISOR["email"]]["Subject"].lower()


def test_the_reporter_answering_emails_the_assignee_without_content(start, smtp_sink):
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    case_id = str(uuid.uuid4())
    for direction in ("to_reporter", "internal", "from_reporter"):
        event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
                 "case_id": case_id, "direction": direction, "message_id": str(uuid.uuid4())}
        validate_event("case_message_posted", event)
        broker.publish_event("verification.events", "case_message_posted", event)
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == RECIPIENT["email"] and "answered" in message["Subject"].lower() or "menjawab" in message["Subject"].lower()
    assert case_id in message.get_body().get_content()


def test_migrated_schema_equals_the_models(pg_url):
    assert schema_differences(ALEMBIC_DIR, pg_url, Base.metadata) == []


def test_migrated_sqlite_schema_equals_the_models(tmp_path):
    url = "sqlite:///{}".format(tmp_path / "notification.db")
    assert schema_differences(ALEMBIC_DIR, url, Base.metadata) == []


def test_a_case_nobody_could_take_emails_the_supervisors(start, smtp_sink):
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    routed, unrouted = str(uuid.uuid4()), str(uuid.uuid4())
    UNROUTED.add(unrouted)
    for case_id in (routed, unrouted):
        opened = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
                  "case_id": case_id, "report_id": str(uuid.uuid4()), "unit": "dit-smp",
                  "category": "fraud", "state": "received"}
        validate_event("case_opened", opened)
        broker.publish_event("verification.events", "case_opened", opened)
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == SUPERVISOR["email"] and "could not be assigned" in message["Subject"]
    assert unrouted in message.get_body().get_content()


def test_events_that_say_enough_cost_no_question_to_verification(start, smtp_sink):
    """``case_opened`` with ``assigned: true`` needs no supervisors (its ``case_assigned`` tells
    the inspector) and is not even written down, and ``case_assigned`` with its ``reference``
    names the case in the subject and brings the report id: neither asks verification's
    ``case_contacts``. Without ``assigned`` (an event published before it existed) verification
    is asked, as before."""
    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    assigned, older = str(uuid.uuid4()), str(uuid.uuid4())
    UNROUTED.update({assigned, older})  # were verification asked, it would say "nobody"
    for case_id, extra in ((assigned, {"assigned": True}), (older, {})):
        opened = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
                  "case_id": case_id, "report_id": str(uuid.uuid4()), "unit": "dit-smp",
                  "category": "fraud", "state": "received", "reference": "WBS/ITJEN/2026/00041", **extra}
        validate_event("case_opened", opened)
        with entrypoint_waiter(container, "handle_case_opened"):
            broker.publish_event("verification.events", "case_opened", opened)
    [routing_failed] = smtp_sink.wait_for(1)
    assert older in routing_failed.get_body().get_content()
    assert FakeVerification.contacts_calls == [older]
    assert assigned not in {row.case_id for row in rows(config, CaseReport)}

    report_id = str(uuid.uuid4())
    event = case_assigned(case_id=assigned, reference="WBS/ITJEN/2026/00042", report_id=report_id)
    with entrypoint_waiter(container, "handle_case_assigned"):
        broker.publish_event("verification.events", "case_assigned", event)
    message = smtp_sink.wait_for(2)[1]
    assert "WBS/ITJEN/2026/00042" in message["Subject"]
    assert FakeVerification.contacts_calls == [older]
    assert (assigned, report_id) in {(row.case_id, row.report_id) for row in rows(config, CaseReport)}


def test_a_template_edit_over_the_admin_rpc_changes_the_next_email(start, smtp_sink):
    from nameko.exceptions import RemoteError
    from nameko.standalone.rpc import ClusterRpcProxy
    from wbs_plumbing.grants import CommandSigner

    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    admin = CommandSigner.from_config(config, "admin")
    with ClusterRpcProxy(config, timeout=30) as rpc:
        with pytest.raises(RemoteError) as refused:  # broker access alone is not enough
            rpc.notification.set_template("case_assigned", "en", "x", "{{ link }}",
                                          command=CommandSigner.from_config(config, "intake").issue(
                                              "set_template", kind="case_assigned", language="en"))
        assert refused.value.exc_type == "Forbidden"
        preview = rpc.notification.preview_template(
            "case_assigned", "en", "Inspectorate General: a case for you", "Hotline 1500-123\n{{ link }}\n",
            command=admin.issue("preview_template", kind="case_assigned", language="en"))
        assert "Hotline 1500-123" in preview["text"]
        saved = rpc.notification.set_template(
            "case_assigned", "en", "Inspectorate General: a case for you", "Hotline 1500-123\n{{ link }}\n",
            command=admin.issue("set_template", kind="case_assigned", language="en"))
        assert saved["version"] == 1
        listed = rpc.notification.list_templates(command=admin.issue("list_templates"))
        in_use = {(t["kind"], t["language"]): t for t in listed}
        assert in_use["case_assigned", "en"]["version"] == 1 and in_use["case_assigned", "id"]["version"] == 0
        assert in_use["case_assigned", "en"]["text"] == "Hotline 1500-123\n{{ link }}\n"
        assert in_use["case_assigned", "id"]["subject"] == "Kasus memerlukan tindakan Anda"
        console = CommandSigner.from_config(config, "verification")
        with pytest.raises(RemoteError) as refused:  # the console must name the administrator
            rpc.notification.list_templates(command=console.issue("list_templates"))
        assert refused.value.exc_type == "Forbidden"
        assert len(rpc.notification.list_templates(command=console.issue("list_templates", actor="a-1"),
                                                   actor="a-1")) == len(listed)
    event = case_assigned()
    broker.publish_event("verification.events", "case_assigned", event)
    (message,) = smtp_sink.wait_for(1)
    assert message["Subject"].strip().startswith("[WBS] Inspectorate General: a case for you / ")
    assert "Hotline 1500-123" in message.get_body().get_content()
    assert "{}/cases/{}".format(CONSOLE, event["case_id"]) in message.get_body().get_content()


def test_a_registered_key_encrypts_the_next_email_which_decrypts_to_the_same_link(start, smtp_sink):
    from nameko.exceptions import RemoteError
    from nameko.standalone.rpc import ClusterRpcProxy
    from wbs_plumbing.grants import CommandSigner
    from pgp_keys import decrypt_pgp_mime, make_key

    config, container, broker = start(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port)
    private = make_key()
    console = CommandSigner.from_config(config, "verification")  # the console, for the staff member
    with ClusterRpcProxy(config, timeout=30) as rpc:
        with pytest.raises(RemoteError) as refused:
            rpc.notification.register_key(INSPECTOR_ID, str(private),
                                          command=console.issue("register_key", staff_id=INSPECTOR_ID))
        assert refused.value.exc_type == "Invalid" and "private key" in str(refused.value)
        registered = rpc.notification.register_key(INSPECTOR_ID, str(private.pubkey),
                                                   command=console.issue("register_key", staff_id=INSPECTOR_ID))
    assert registered["fingerprint"] == str(private.fingerprint).replace(" ", "")
    event = case_assigned()
    broker.publish_event("verification.events", "case_assigned", event)
    (message,) = smtp_sink.wait_for(1)
    link = "{}/cases/{}".format(CONSOLE, event["case_id"])
    assert event["case_id"] not in smtp_sink.raw[0].decode()
    assert message["To"] == RECIPIENT["email"]
    inner = decrypt_pgp_mime(message, private)
    assert link in inner.get_body(("plain",)).get_content()

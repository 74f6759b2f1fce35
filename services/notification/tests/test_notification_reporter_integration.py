"""Reporter notices end to end: real storage (file store) holding a sealed report with a contact
address, the notification service, a fake verification, RabbitMQ, PostgreSQL and aiosmtpd.

What must hold: the reporter gets "there is news" and nothing of the report (no canary, unit,
case or report id), at most once a day; the address is read from storage under notification's
own command (storage's read log says so) and lands in no notification table, log line or event;
a report whose key is gone gets no notice.
"""
import json
import logging
import uuid

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.grants import CommandSigner

from notification.models import Notification, OutboxMessage, ReporterNews
from notification.service import NotificationService
from storage.models import ContentRead
from storage.service import StorageService

from test_notification_integration import Broker, FakeVerification

FOLLOWUP = "https://lapor.example.go.id/follow-up"
CONTACT = "canary-reporter-7@example.org"
CANARIES = ("CANARY-NARRATIVE-41", "Canary-Suspect-Name", "dit-canary-unit")
REFERENCE = "WBS/ITJEN/2026/00042"  # in staff emails' subjects; never in a reporter's notice


def report_content(language="en", contact=CONTACT):
    reporter = {"relationship": "employee", "involved": False}
    if contact:
        reporter["contact_email"] = contact
    return json.dumps({"category": "fraud", "unit": CANARIES[2], "language": language,
                       "narrative": {"what": CANARIES[0]}, "parties": [{"name": CANARIES[1]}],
                       "reporter": reporter}).encode()


def verification_event(kind, case_id, **fields):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
            "case_id": case_id, **fields}
    validate_event(kind, body)
    return body


def on_database(config, read):
    """``read(engine)`` against a service's database, the engine disposed after."""
    engine = create_engine(config["DATABASE_URL"])
    try:
        return read(engine)
    finally:
        engine.dispose()


def table_text(config):
    """Every row of every notification table, as one string."""
    def dump(engine):
        with engine.connect() as connection:
            return "\n".join(str(list(connection.execute(text('SELECT * FROM "{}"'.format(name)))))
                             for name in inspect(connection).get_table_names())
    return on_database(config, dump)


def query(config, model):
    return on_database(config, lambda engine: list(Session(engine).scalars(select(model))))


@pytest.fixture
def stack(service_config, container_factory, smtp_sink):
    """storage, fake verification and notification on one vhost and data dir (one set of
    development command keys); returns (notification config, storage config, container,
    storage proxy, broker)."""
    storage_config = service_config("storage", REQUIRE_SEALED_TRANSIT=False)
    config = service_config("notification", WBS_FOLLOWUP_URL=FOLLOWUP, SMTP_HOST=smtp_sink.host,
                            SMTP_PORT=smtp_sink.port, NOTIFY_SWEEP_INTERVAL_SECONDS=0.1,
                            NOTIFY_RPC_TIMEOUT_SECONDS=10)
    storage = container_factory(StorageService, storage_config)
    fake = container_factory(FakeVerification, {"AMQP_URI": config["AMQP_URI"], "serializer": "msgpack",
                                                "ACCEPT": ["msgpack", "json"]})
    notification = container_factory(NotificationService, config)
    for container in (storage, fake, notification):
        container.start()
    proxy_ctx = ClusterRpcProxy(storage_config, timeout=30)
    broker = Broker(config["AMQP_URI"])
    yield config, storage_config, notification, proxy_ctx.start(), broker
    broker.close()
    proxy_ctx.stop()
    for container in (notification, fake, storage):
        container.stop()


def open_case(container, broker, report_id):
    case_id = str(uuid.uuid4())
    opened = verification_event("case_opened", case_id, report_id=report_id, unit=CANARIES[2],
                                category="fraud", state="received", reference=REFERENCE)
    with entrypoint_waiter(container, "handle_case_opened"):
        broker.publish_event("verification.events", "case_opened", opened)
    return case_id


def test_a_reporter_with_an_address_gets_one_content_free_notice_a_day(stack, smtp_sink, caplog):
    # Every logger at DEBUG except those config.yml quietens (nameko's RPC debug lines quote
    # reply bodies; production runs nameko at INFO and kombu/amqp at WARNING). "mail.log" is the
    # test's own mail server (aiosmtpd), which is meant to see the address.
    for name, level in (("nameko", logging.INFO), ("kombu", logging.WARNING), ("amqp", logging.WARNING),
                        ("mail.log", logging.WARNING)):
        caplog.set_level(level, logger=name)
    caplog.set_level(logging.DEBUG)  # last: set_level also sets the capturing handler's level
    config, storage_config, container, storage, broker = stack
    events = broker.listen("notification.events", "#")
    report_id = str(uuid.uuid4())
    storage.storage.store_report_content(report_id, report_content("en"))
    case_id = open_case(container, broker, report_id)

    message_event = verification_event("case_message_posted", case_id, direction="to_reporter",
                                       message_id=str(uuid.uuid4()))
    with entrypoint_waiter(container, "handle_case_message_posted"):
        broker.publish_event("verification.events", "case_message_posted", message_event)
    (message,) = smtp_sink.wait_for(1)

    # Later news the same day waits: marked, not sent.
    status_event = verification_event("case_status_changed", case_id, from_state="received",
                                      to_state="verification", report_id=report_id)
    with entrypoint_waiter(container, "handle_case_status_changed"):
        broker.publish_event("verification.events", "case_status_changed", status_event)
    (news,) = query(config, ReporterNews)
    assert news.news_since is not None and news.last_notice_day is not None
    assert len(smtp_sink.messages) == 1

    assert message["To"] == CONTACT
    assert message["From"] == "Layanan Pemberitahuan <wbs@localhost>"
    assert message["Subject"] == "New notice"
    assert FOLLOWUP in message.get_body().get_content()
    raw = smtp_sink.raw[0].decode()
    for forbidden in CANARIES + (case_id, report_id, REFERENCE, "WBS/", "whistle", "WBS]", "Whistle"):
        assert forbidden not in raw

    # Where the address is not: any notification table, any log line, any event.
    assert CONTACT not in table_text(config)
    assert [(r.name, r.levelname) for r in caplog.records if CONTACT in r.getMessage()] == []
    assert "notification.domain" in {r.name for r in caplog.records}  # the logs were captured
    assert query(config, OutboxMessage) == []  # no notification_sent for a reporter's notice
    assert broker.channel.basic_get(events, auto_ack=True)[0] is None
    (row,) = [r for r in query(config, Notification) if r.recipient_id.startswith("reporter:")]
    assert row.status == "sent" and row.kind == "reporter_news"
    # storage recorded the read, by notification, under its command.
    reads = [r for r in query(storage_config, ContentRead) if r.report_id == report_id]
    assert [(r.staff_id, r.object_id) for r in reads] == [("notification", "content")]


def test_no_address_or_a_shredded_report_means_no_notice_and_no_further_reads(stack, smtp_sink):
    config, storage_config, container, storage, broker = stack
    silent, shredded = str(uuid.uuid4()), str(uuid.uuid4())
    storage.storage.store_report_content(silent, report_content(contact=None))
    storage.storage.store_report_content(shredded, report_content())
    command = CommandSigner.from_config(storage_config, "intake").issue("discard_report", report_id=shredded)
    storage.storage.discard_report(shredded, command=command)
    for report_id in (silent, shredded):
        case_id = open_case(container, broker, report_id)
        for _ in range(2):
            event = verification_event("case_message_posted", case_id, direction="to_reporter",
                                       message_id=str(uuid.uuid4()))
            with entrypoint_waiter(container, "handle_case_message_posted"):
                broker.publish_event("verification.events", "case_message_posted", event)
    wait_until(lambda: all(n.no_contact for n in query(config, ReporterNews))
               and len(query(config, ReporterNews)) == 2, timeout=15)
    assert smtp_sink.messages == []
    reads = [r.report_id for r in query(storage_config, ContentRead)]
    assert reads == [silent]  # asked once; a shredded report has nothing left to read


def test_only_notification_can_read_a_contact(stack):
    _config, storage_config, _container, storage, _broker = stack
    report_id = str(uuid.uuid4())
    storage.storage.store_report_content(report_id, report_content())
    for issuer in ("intake", "admin"):
        forged = CommandSigner.from_config(storage_config, issuer).issue("read_reporter_contact",
                                                                         report_id=report_id)
        with pytest.raises(RemoteError) as refused:
            storage.storage.read_reporter_contact(report_id, command=forged)
        assert refused.value.exc_type == "Forbidden"
    other = CommandSigner.from_config(storage_config, "notification").issue(
        "read_reporter_contact", report_id=str(uuid.uuid4()))
    with pytest.raises(RemoteError):
        storage.storage.read_reporter_contact(report_id, command=other)
    own = CommandSigner.from_config(storage_config, "notification").issue("read_reporter_contact",
                                                                         report_id=report_id)
    assert storage.storage.read_reporter_contact(report_id, command=own) == {"email": CONTACT, "language": "en"}

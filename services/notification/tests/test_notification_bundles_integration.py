"""Daily bundles, register references in subjects and OpenPGP key warnings, with two
notification replicas on one database, real RabbitMQ, PostgreSQL and aiosmtpd.

* A staff member who chose "daily" gets their case emails in one ``daily_bundle`` a day (links
  and references only), exactly once however often both replicas plan; a colleague on
  "immediate" gets theirs at once, the case's register reference in the subject.
* A key about to expire is reported once to its owner and once to each administrator, in clear
  and without a case link; an expired key holds its owner's case emails (never sent in clear in
  its place) until the key is removed.
"""
import uuid
from datetime import timedelta

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.fixtures import wait_until
from wbs_contracts.events import validate_event
from wbs_plumbing.clock import utcnow
from wbs_plumbing.grants import CommandSigner

from notification.models import StaffKey
from notification.service import NotificationService

from pgp_keys import make_key
from test_notification_integration import (CONSOLE, INSPECTOR_ID, RECIPIENT, SUPERVISOR, SUPERVISOR_ID, Broker,
                                            FakeVerification)
from test_notification_integration import rows as notifications

ADMIN_ID = "ad000000-1111-4222-8333-944455556666"
ADMIN = {"email": "admin@itjen.example.go.id", "display_name": "Admin", "language": "id"}


class QuietVerification(FakeVerification):
    """The fake verification: no deadlines, no digests, one administrator; counts the plans."""

    plans = []

    @rpc
    def get_recipient(self, staff_id):
        return {INSPECTOR_ID: RECIPIENT, SUPERVISOR_ID: SUPERVISOR, ADMIN_ID: ADMIN}.get(staff_id)

    @rpc
    def deadlines_ahead(self, working_days):
        QuietVerification.plans.append(working_days)
        return []

    @rpc
    def supervisor_digests(self, since):
        return []

    @rpc
    def administrator_ids(self):
        return [ADMIN_ID]


def event(kind, case_id, **fields):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-30T10:00:00Z",
            "case_id": case_id, **fields}
    validate_event(kind, body)
    return body


def subject(message):
    """The Subject header unfolded (a long one arrives folded over lines)."""
    return " ".join(str(message["Subject"]).split())


def start_replicas(config, container_factory, count):
    replicas = [container_factory(NotificationService, config) for _ in range(count)]
    for replica in replicas:
        replica.start()
    return replicas


def fake_verification(config, container_factory):
    QuietVerification.plans = []
    fake = container_factory(QuietVerification, {"AMQP_URI": config["AMQP_URI"], "serializer": "msgpack",
                                                 "ACCEPT": ["msgpack", "json"]})
    fake.start()
    return fake


def test_daily_delivery_bundles_case_emails_once_a_day_with_two_replicas(service_config, container_factory,
                                                                         smtp_sink):
    base = dict(SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port, WBS_CONSOLE_URL=CONSOLE,
                NOTIFY_SWEEP_INTERVAL_SECONDS=0.1, NOTIFY_PLAN_INTERVAL_SECONDS=0.1)
    # First before the digest hour (24: never), so the day's case emails are all held.
    config = service_config("notification", NOTIFY_DIGEST_HOUR=24, **base)
    fake_verification(config, container_factory)
    (early,) = start_replicas(config, container_factory, 1)
    console = CommandSigner.from_config(config, "verification")
    with ClusterRpcProxy(config, timeout=30) as proxy:
        proxy.notification.set_preference(INSPECTOR_ID, delivery="daily",
                                          command=console.issue("set_preference", staff_id=INSPECTOR_ID))
    broker = Broker(config["AMQP_URI"])
    cases = {str(uuid.uuid4()): "WBS/ITJEN/2026/{:05d}".format(n) for n in (41, 42)}
    for case_id, reference in cases.items():
        with entrypoint_waiter(early, "handle_case_opened"):
            broker.publish_event("verification.events", "case_opened", event(
                "case_opened", case_id, report_id=str(uuid.uuid4()), reference=reference, unit="dit-smp",
                category="fraud", state="received"))
        with entrypoint_waiter(early, "handle_case_assigned"):
            broker.publish_event("verification.events", "case_assigned", event(
                "case_assigned", case_id, inspector_id=INSPECTOR_ID, unit="dit-smp"))
    first = next(iter(cases))
    with entrypoint_waiter(early, "handle_sla_breached"):
        broker.publish_event("verification.events", "sla_breached", event(
            "sla_breached", first, clock="verification", due_at="2026-11-29T10:00:00Z"))
    # The supervisor (immediate) is told at once, the reference in the subject.
    (escalated,) = smtp_sink.wait_for(1)
    assert escalated["To"] == SUPERVISOR["email"]
    assert subject(escalated).startswith("[WBS] {}: ".format(cases[first]))
    held = [r for r in notifications(config) if r.recipient_id == INSPECTOR_ID]
    assert sorted(r.kind for r in held) == ["case_assigned", "case_assigned", "sla_breached"]
    assert all(r.held and r.status == "pending" and r.next_attempt_at is None for r in held)
    early.stop()

    # From the digest hour on (0: now), two replicas plan again and again: one bundle.
    config["NOTIFY_DIGEST_HOUR"] = 0
    start_replicas(config, container_factory, 2)
    wait_until(lambda: len(QuietVerification.plans) >= 20, timeout=60)
    messages = smtp_sink.wait_for(2)
    wait_until(lambda: len(QuietVerification.plans) >= 40, timeout=60)
    assert len(smtp_sink.messages) == 2
    bundle = messages[1]
    assert bundle["To"] == RECIPIENT["email"]
    assert subject(bundle) == "[WBS] Your case emails of the day / Email kasus Anda hari ini"
    body = bundle.get_body().get_content().replace("\r\n", "\n")
    for case_id, reference in cases.items():
        assert body.count("- {}/cases/{} ({})\n".format(CONSOLE, case_id, reference)) == 2  # once per language
    rows = notifications(config)
    (bundle_row,) = [r for r in rows if r.kind == "daily_bundle"]
    assert bundle_row.status == "sent" and bundle_row.recipient_id == INSPECTOR_ID
    assert {(r.status, r.bundle_id) for r in rows if r.held} == {("sent", bundle_row.notification_id)}
    broker.close()


def test_an_expiring_key_is_reported_once_and_an_expired_one_holds_mail_until_removed(
        service_config, container_factory, smtp_sink):
    config = service_config("notification", SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port,
                            WBS_CONSOLE_URL=CONSOLE, NOTIFY_SWEEP_INTERVAL_SECONDS=0.1,
                            NOTIFY_PLAN_INTERVAL_SECONDS=0.1, NOTIFY_DIGEST_HOUR=24, NOTIFY_KEY_WARNING_DAYS=14)
    fake_verification(config, container_factory)
    start_replicas(config, container_factory, 2)
    admin = CommandSigner.from_config(config, "admin")
    key = make_key(expires=timedelta(days=5))
    with ClusterRpcProxy(config, timeout=30) as proxy:
        registered = proxy.notification.register_key(SUPERVISOR_ID, str(key.pubkey),
                                                     command=admin.issue("register_key", staff_id=SUPERVISOR_ID))
    warnings = smtp_sink.wait_for(2)
    wait_until(lambda: len(QuietVerification.plans) >= 30, timeout=60)
    assert len(smtp_sink.messages) == 2
    by_address = {m["To"]: m for m in warnings}
    own, told = by_address[SUPERVISOR["email"]], by_address[ADMIN["email"]]
    for message in (own, told):
        assert message.get_content_type() == "text/plain"  # in clear: it must reach its reader
        assert registered["fingerprint"] in message.get_body().get_content()
        assert "/cases" not in message.get_body().get_content()
    assert subject(own) == ("[WBS] Your OpenPGP key expires soon / Kunci OpenPGP Anda segera kedaluwarsa")
    assert "{}/me/notifications".format(CONSOLE) in own.get_body().get_content()
    assert "{}/admin/staff/{}".format(CONSOLE, SUPERVISOR_ID) in told.get_body().get_content()
    assert subject(told).startswith("[WBS] Kunci OpenPGP seorang pegawai segera kedaluwarsa")

    # The key runs out (its expiry moved into the past here): the next case email is held, not
    # sent in clear; owner and administrator are told once more; removing the key releases it.
    engine = create_engine(config["DATABASE_URL"])
    with Session(engine) as session, session.begin():
        session.get(StaffKey, SUPERVISOR_ID).expires_at = utcnow() - timedelta(days=1)
    engine.dispose()
    broker = Broker(config["AMQP_URI"])
    case_id = str(uuid.uuid4())
    broker.publish_event("verification.events", "sla_breached", event(
        "sla_breached", case_id, clock="verification", due_at="2026-11-29T10:00:00Z"))
    expired = smtp_sink.wait_for(5)  # the inspector's sla_breached, and the two key_expired warnings
    wait_until(lambda: any(r.last_error == "key_expired" for r in notifications(config)), timeout=30)
    assert len(smtp_sink.messages) == 5
    subjects = sorted(subject(m) for m in expired[2:])
    assert any(s.startswith("[WBS] Your OpenPGP key has expired") for s in subjects)
    assert any("telah kedaluwarsa" in s and "pegawai" in s for s in subjects)
    assert SUPERVISOR["email"] not in [m["To"] for m in expired[2:] if "deadline" in subject(m).lower()]
    (held,) = [r for r in notifications(config) if r.kind == "sla_escalated"]
    assert held.status == "pending" and held.last_error == "key_expired"
    with ClusterRpcProxy(config, timeout=30) as proxy:
        assert proxy.notification.remove_key(SUPERVISOR_ID, command=admin.issue(
            "remove_key", staff_id=SUPERVISOR_ID)) == {"removed": True}
    released = smtp_sink.wait_for(6)[5]
    assert released["To"] == SUPERVISOR["email"] and released.get_content_type() == "text/plain"
    assert "{}/cases/{}".format(CONSOLE, case_id) in released.get_body().get_content()
    broker.close()

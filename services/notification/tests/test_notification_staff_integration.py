"""Staff reminders and supervisors' digests with two notification replicas on one database,
real RabbitMQ, PostgreSQL and aiosmtpd: each goes out exactly once per clock and per period,
however often both replicas plan; the digest carries counts by unit and nothing else."""
import uuid

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.fixtures import wait_until
from wbs_plumbing.grants import CommandSigner

from notification.models import Notification
from notification.service import NotificationService

from test_notification_integration import INSPECTOR_ID, RECIPIENT, SUPERVISOR, SUPERVISOR_ID, FakeVerification

CASE_ID = str(uuid.uuid4())
COUNTS = {"unit": "dit-smp", "new": 3, "waiting": 5, "overdue": 1, "awaiting_reporter": 2}


class PlanningVerification(FakeVerification):
    """The fake verification, plus the two RPCs the planner asks (counting the calls)."""

    planned = []

    @rpc
    def deadlines_ahead(self, working_days):
        PlanningVerification.planned.append(working_days)
        return [{"case_id": CASE_ID, "clock": "verification", "due_at": "2026-12-01T03:00:00Z",
                 "assignee_id": INSPECTOR_ID}]

    @rpc
    def supervisor_digests(self, since):
        return [{"supervisor_id": SUPERVISOR_ID, "units": [dict(COUNTS, reference="CANARY-REF")]}]


def test_reminders_and_digests_go_out_once_with_two_replicas(service_config, container_factory, smtp_sink):
    PlanningVerification.planned = []
    config = service_config("notification", SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port,
                            NOTIFY_PLAN_INTERVAL_SECONDS=0.1, NOTIFY_SWEEP_INTERVAL_SECONDS=0.1,
                            NOTIFY_DIGEST_HOUR=0, NOTIFY_REMINDER_WORKING_DAYS=3,
                            WBS_CONSOLE_URL="https://console.example.go.id")
    fake = container_factory(PlanningVerification, {"AMQP_URI": config["AMQP_URI"], "serializer": "msgpack",
                                                    "ACCEPT": ["msgpack", "json"]})
    fake.start()
    replicas = [container_factory(NotificationService, config) for _ in range(2)]
    for replica in replicas:
        replica.start()
    # Both replicas plan again and again (each tick asks verification once).
    wait_until(lambda: len(PlanningVerification.planned) >= 20, timeout=30)
    messages = smtp_sink.wait_for(2)
    wait_until(lambda: len(PlanningVerification.planned) >= 30, timeout=30)
    engine = create_engine(config["DATABASE_URL"])
    try:
        with Session(engine) as session:
            rows = session.scalars(select(Notification)).all()
    finally:
        engine.dispose()
    for replica in replicas:
        replica.stop()
    assert sorted((r.kind, r.recipient_id, r.status) for r in rows) == [
        ("sla_reminder", INSPECTOR_ID, "sent"), ("supervisor_digest", SUPERVISOR_ID, "sent")]
    assert len(smtp_sink.messages) == 2 and set(PlanningVerification.planned) == {3}
    by_address = {m["To"]: m for m in messages}
    reminder = by_address[RECIPIENT["email"]]
    assert "coming up" in reminder["Subject"] and CASE_ID in reminder.get_body().get_content()
    digest = by_address[SUPERVISOR["email"]].get_body().get_content()
    assert "dit-smp: 3 new, 5 waiting, 1 overdue, 2 awaiting the reporter" in digest
    assert "CANARY-REF" not in digest and CASE_ID not in digest


def test_a_preference_is_set_over_a_signed_rpc(service_config, container_factory):
    config = service_config("notification")
    container = container_factory(NotificationService, config)
    container.start()
    console = CommandSigner.from_config(config, "verification")
    with ClusterRpcProxy(config, timeout=30) as proxy:
        saved = proxy.notification.set_preference(SUPERVISOR_ID, digest="weekly",
                                                  command=console.issue("set_preference", staff_id=SUPERVISOR_ID))
    assert saved == {"staff_id": SUPERVISOR_ID, "delivery": "immediate", "digest": "weekly"}

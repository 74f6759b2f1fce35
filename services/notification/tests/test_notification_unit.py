"""Unit tests: templates, backoff, and the delivery state machine on an in-memory SQLite database
with fake collaborators (no broker, no SMTP)."""
import email
import json
import os
import time
from functools import partial
from datetime import datetime, timedelta, timezone
from email import policy

import jinja2.meta
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from wbs_contracts.events import validate_event
from wbs_plumbing.db import session_scope

from notification import domain, mailer, planning
from notification.mailer import (
    KINDS, LANGUAGES, STAFF_KINDS, MailSender, MailTransportError, OutboxFolderTransport, TEMPLATE_VARIABLES,
    render,
)
from notification.models import Base, CaseAssignee, Notification, OutboxMessage, ProcessedEvent
from notification.settings import Settings
from wbs_plumbing.config import ConfigError

CASE_ID = "6f1c2a3b-1111-4222-8333-944455556666"
INSPECTOR_ID = "0a0b0c0d-1111-4222-8333-944455556666"
OTHER_INSPECTOR = "0a0b0c0d-2222-4222-8333-944455556666"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)

# Things that must never reach an email: a recipient's name, a unit, and (for good measure)
# strings that look like report content.
CANARIES = ["Canary-Budi-Santoso", "dit-canary-unit", "CANARY-NARRATIVE", "canary-reporter@example.org"]


def case_assigned_event(event_id="11111111-2222-4333-8444-555555555555", inspector=INSPECTOR_ID,
                        occurred_at="2026-11-23T09:00:00Z"):
    return {"schema_version": 1, "event_id": event_id, "occurred_at": occurred_at,
            "case_id": CASE_ID, "inspector_id": inspector, "unit": "dit-canary-unit"}


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


class RecordingTransport:
    def __init__(self):
        self.sent = []
        self.fail_next = 0

    def send(self, message, key):
        if self.fail_next:
            self.fail_next -= 1
            raise MailTransportError("SMTPServerDisconnected")
        self.sent.append((key, message))


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=str(tmp_path), console_url="https://console.example.go.id",
                    retry_base_seconds=10, retry_max_seconds=60, max_attempts=4, claim_seconds=120)


@pytest.fixture
def engine():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def transaction(engine):
    return partial(session_scope, engine)


@pytest.fixture
def transport():
    return RecordingTransport()


@pytest.fixture
def sender(settings, transport):
    return MailSender(settings, transport)


def directory(recipient=None, error=None):
    calls = []

    def lookup(staff_id, changed_since=None):
        calls.append(staff_id)
        if error is not None:
            raise error
        return recipient if recipient is not None else {
            "email": "inspektur@itjen.example.go.id", "display_name": CANARIES[0], "language": "id"}
    lookup.calls = calls
    return lookup


def record(transaction, event=None, now=T0):
    event = event or case_assigned_event()
    with transaction() as session:
        session.add(ProcessedEvent(event_id=event["event_id"], consumer=""))
        return domain.record_case_assigned(session, event, now)


def row(transaction, notification_id):
    with transaction() as session:
        return session.get(Notification, notification_id)


# --- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_templates_use_only_the_link(kind, language):
    env = mailer.default_env(language)
    source = env.loader.get_source(env, "{}.txt".format(kind))[0]
    used = jinja2.meta.find_undeclared_variables(env.parse(source))
    expected = mailer.allowed_variables(kind)
    assert used == set(mailer.allowed_variables(kind)) == expected and set(TEMPLATE_VARIABLES) == {"link"}


@pytest.mark.parametrize("kind", mailer.CASE_KINDS)
def test_rendered_email_is_bilingual_and_links_to_the_case(kind):
    rendered = render(kind, CASE_ID, "https://console.example.go.id/", "en")
    link = "https://console.example.go.id/cases/" + CASE_ID
    assert rendered.body.count(link) == 2
    assert "Please sign in" in rendered.body and "Silakan masuk" in rendered.body
    # preferred language first
    assert rendered.body.index("Please sign in") < rendered.body.index("Silakan masuk")
    assert render(kind, CASE_ID, "https://c", "id").body.index("Silakan") < \
        render(kind, CASE_ID, "https://c", "id").body.index("Please")
    assert render(kind, CASE_ID, "https://c", None).body.startswith(render(kind, CASE_ID, "https://c", "id").body[:20])


def test_render_refuses_unknown_kinds():
    with pytest.raises(ValueError):
        render("case_opened", CASE_ID, "https://c")


def test_delivered_message_carries_no_content_fields(transaction, sender, transport, settings):
    notification_id = record(transaction)
    status = domain.deliver(notification_id, transaction=transaction, lookup_recipient=directory(),
                            mailer=sender, settings=settings, clock=Clock())
    assert status == "sent"
    (key, message), = transport.sent
    assert key == notification_id
    raw = message.as_string()
    for canary in CANARIES:
        assert canary not in raw
    assert message["To"] == "inspektur@itjen.example.go.id"
    assert message["Message-ID"] == "<{}@localhost>".format(notification_id)
    body = message.get_content()
    assert "https://console.example.go.id/cases/" + CASE_ID in body
    # The only variable part of the body is the link: the body equals the rendered template.
    assert body.strip() == render("case_assigned", CASE_ID, settings.console_url, "id").body.strip()


# --- backoff -----------------------------------------------------------------------------------


def test_backoff_schedule_doubles_and_is_capped():
    assert [domain.backoff_seconds(n, 30, 3600) for n in range(1, 10)] == \
        [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert Settings().retry_schedule == (30, 60, 120, 240, 480, 960, 1920, 3600, 3600)
    with pytest.raises(ValueError):
        domain.backoff_seconds(0, 30, 3600)


def test_failed_attempts_are_rescheduled_with_backoff_then_failed(transaction, sender, transport, settings):
    clock = Clock()
    transport.fail_next = 100
    notification_id = record(transaction)
    kwargs = dict(transaction=transaction, lookup_recipient=directory(), mailer=sender,
                  settings=settings, clock=clock)

    waits = []
    for attempt in range(1, settings.max_attempts + 1):
        status = domain.deliver(notification_id, **kwargs)
        current = row(transaction, notification_id)
        assert current.attempts == attempt
        if attempt < settings.max_attempts:
            assert status == "pending"
            wait = (domain.as_utc(current.next_attempt_at) - clock.now).total_seconds()
            waits.append(wait)
            # not due before its time: a sweep a second early does nothing
            clock.advance(wait - 1)
            assert domain.deliver(notification_id, **kwargs) is None
            clock.advance(1)
        else:
            assert status == "failed"
    assert waits == [10, 20, 40]
    final = row(transaction, notification_id)
    assert final.status == "failed" and final.next_attempt_at is None
    assert final.last_error == "mail:SMTPServerDisconnected"
    assert transport.sent == []


def test_a_retry_after_an_smtp_failure_sends_once_and_announces_it(transaction, sender, transport, settings, engine):
    clock = Clock()
    transport.fail_next = 1
    notification_id = record(transaction)
    kwargs = dict(transaction=transaction, lookup_recipient=directory(), mailer=sender,
                  settings=settings, clock=clock)
    assert domain.deliver(notification_id, **kwargs) == "pending"
    assert domain.sweep(**kwargs) == 0  # not due yet
    clock.advance(settings.retry_base_seconds)
    assert domain.sweep(**kwargs) == 1
    assert domain.sweep(**kwargs) == 0
    assert len(transport.sent) == 1
    current = row(transaction, notification_id)
    assert current.status == "sent" and current.attempts == 2
    with Session(engine) as session:
        outbox = session.scalars(select(OutboxMessage)).all()
    assert len(outbox) == 1 and outbox[0].event_type == "notification_sent"
    assert outbox[0].exchange == "notification.events"
    body = json.loads(outbox[0].body)
    validate_event("notification_sent", body)
    assert {k: body[k] for k in ("notification_id", "kind", "case_id")} == \
        {"notification_id": notification_id, "kind": "case_assigned", "case_id": CASE_ID}


def test_directory_outage_is_retried_and_unknown_recipient_fails_at_once(transaction, sender, transport, settings):
    clock = Clock()
    first = record(transaction)
    status = domain.deliver(first, transaction=transaction, lookup_recipient=directory(error=TimeoutError()),
                            mailer=sender, settings=settings, clock=clock)
    assert status == "pending"
    assert row(transaction, first).last_error == "recipient_lookup:TimeoutError"

    second = record(transaction, case_assigned_event(event_id="21111111-2222-4333-8444-555555555555"))
    status = domain.deliver(second, transaction=transaction, lookup_recipient=directory(recipient={}),
                            mailer=sender, settings=settings, clock=clock)
    assert status == "failed"
    assert row(transaction, second).last_error == "no_recipient"
    assert transport.sent == []


# --- exactly one row per (event, recipient) ------------------------------------------------------


def test_recording_is_idempotent_per_event_and_recipient(transaction):
    event = case_assigned_event()
    with transaction() as session:
        first = domain.record_case_assigned(session, event, T0)
        again = domain.record_case_assigned(session, event, T0)
    assert first == again
    with transaction() as session:
        assert session.scalars(select(Notification)).all()[0].notification_id == first
        assert len(session.scalars(select(Notification)).all()) == 1


def test_the_unique_constraint_refuses_a_second_row(transaction):
    record(transaction)
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        with transaction() as session:
            session.add(Notification(notification_id="x", event_id=case_assigned_event()["event_id"],
                                     recipient_id=INSPECTOR_ID, kind="case_assigned", case_id=CASE_ID,
                                     status="pending", attempts=0, created_at=T0))


def test_a_claimed_row_is_not_sent_twice(transaction, settings):
    notification_id = record(transaction)
    with transaction() as session:
        assert domain.claim(session, notification_id, T0, settings) is not None
    with transaction() as session:
        assert domain.claim(session, notification_id, T0, settings) is None
    with transaction() as session:  # the claim expires: a crashed sender's row goes out again
        later = T0 + timedelta(seconds=settings.claim_seconds)
        assert domain.claim(session, notification_id, later, settings).attempt == 2


def test_sla_breached_goes_to_the_latest_assignee(transaction):
    with transaction() as session:
        domain.record_case_assigned(session, case_assigned_event(
            event_id="31111111-2222-4333-8444-555555555555", inspector=OTHER_INSPECTOR,
            occurred_at="2026-11-23T10:00:00Z"), T0)
        # an older assignment delivered late does not win
        domain.record_case_assigned(session, case_assigned_event(
            event_id="41111111-2222-4333-8444-555555555555", occurred_at="2026-11-23T08:00:00Z"), T0)
    sla = {"schema_version": 1, "event_id": "51111111-2222-4333-8444-555555555555",
           "occurred_at": "2026-11-30T09:00:00Z", "case_id": CASE_ID, "clock": "acknowledge",
           "due_at": "2026-11-30T09:00:00Z"}
    validate_event("sla_breached", sla)
    with transaction() as session:
        [notification_id] = domain.record_sla_breached(session, sla, T0)
    current = row(transaction, notification_id)
    assert (current.kind, current.recipient_id) == ("sla_breached", OTHER_INSPECTOR)
    unknown = dict(sla, event_id="61111111-2222-4333-8444-555555555555",
                   case_id="7f1c2a3b-1111-4222-8333-944455556666")
    with transaction() as session:
        assert domain.record_sla_breached(session, unknown, T0) == []


SUPERVISOR = "9a1c2a3b-1111-4222-8333-944455556666"


def test_sla_breached_emails_the_assignee_and_each_overseeing_supervisor_once(transaction):
    sla = {"schema_version": 1, "event_id": "71111111-2222-4333-8444-555555555555",
           "occurred_at": "2026-11-30T09:00:00Z", "case_id": CASE_ID, "clock": "verification",
           "due_at": "2026-11-30T09:00:00Z"}
    contacts = {"case_id": CASE_ID, "assignee_id": OTHER_INSPECTOR, "supervisor_ids": [SUPERVISOR]}
    with transaction() as session:
        ids = domain.record_sla_breached(session, sla, T0, contacts)
    with transaction() as session:
        assert domain.record_sla_breached(session, sla, T0, contacts) == ids  # redelivery: same rows
    assert sorted((row(transaction, i).kind, row(transaction, i).recipient_id) for i in ids) == [
        ("sla_breached", OTHER_INSPECTOR), ("sla_escalated", SUPERVISOR)]


def test_reporter_answer_emails_the_assignee_only(transaction):
    base = {"schema_version": 1, "occurred_at": "2026-11-30T09:00:00Z", "case_id": CASE_ID,
            "message_id": "8a1c2a3b-1111-4222-8333-944455556666"}
    answer = dict(base, event_id="81111111-2222-4333-8444-555555555555", direction="from_reporter")
    validate_event("case_message_posted", answer)
    with transaction() as session:
        [notification_id] = domain.record_reporter_replied(session, answer, T0, {"assignee_id": OTHER_INSPECTOR})
        assert domain.record_reporter_replied(session, dict(base, event_id="91111111-2222-4333-8444-555555555555",
                                                           direction="to_reporter"), T0) == []
    assert (row(transaction, notification_id).kind, row(transaction, notification_id).recipient_id) == (
        "reporter_replied", OTHER_INSPECTOR)


# --- outbox folder ------------------------------------------------------------------------------


def test_outbox_folder_writes_one_complete_eml_per_notification(tmp_path, settings):
    folder = tmp_path / "outbox"
    sender = MailSender(settings, OutboxFolderTransport(str(folder)))
    sender.send_notification(key="n-1", to_address="a@example.org", kind="case_assigned", case_id=CASE_ID)
    sender.send_notification(key="n-1", to_address="a@example.org", kind="case_assigned", case_id=CASE_ID)
    assert sorted(os.listdir(folder)) == ["n-1.eml"]  # a resend overwrites; no temp files left
    parsed = email.message_from_bytes((folder / "n-1.eml").read_bytes(), policy=policy.default)
    assert parsed["To"] == "a@example.org"
    assert "/cases/" + CASE_ID in parsed.get_content()


def test_outbox_folder_failure_is_a_transport_error(tmp_path, settings):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sender = MailSender(settings, OutboxFolderTransport(str(blocker / "outbox")))
    with pytest.raises(MailTransportError):
        sender.send_notification(key="n", to_address="a@example.org", kind="case_assigned", case_id=CASE_ID)


# --- settings -------------------------------------------------------------------------------------


def test_settings_from_config_and_production_refusals(tmp_path):
    s = Settings.from_config({"SMTP_HOST": "mail", "SMTP_PORT": "2525", "SMTP_STARTTLS": "true",
                              "WBS_CONSOLE_URL": "https://c/", "SMTP_PASSWORD": None})
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls, s.console_url, s.smtp_password) == \
        ("mail", 2525, True, "https://c", "")
    assert Settings.from_config({}).uses_smtp is False
    assert Settings.from_config({"WBS_DATA_DIR": "/x"}).outbox_dir == "/x/outbox"
    # the reporter's link: on the reporter site a deployment names once, unless given itself
    assert Settings.from_config({}).followup_url == "http://localhost:8000/follow-up"
    assert Settings.from_config({"WBS_PUBLIC_URL": "https://lapor.example.go.id/"}).followup_url == \
        "https://lapor.example.go.id/follow-up"
    assert Settings.from_config({"WBS_PUBLIC_URL": "https://lapor.example.go.id",
                                 "WBS_FOLLOWUP_URL": "https://x.example/pantau"}).followup_url == "https://x.example/pantau"
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_ENV": "production", "WBS_CONSOLE_URL": "https://c"})
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_ENV": "production", "SMTP_HOST": "mail"})
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_ENV": "production", "SMTP_HOST": "mail", "WBS_CONSOLE_URL": "https://c",
                              "SMTP_USERNAME": "u"})
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = Settings.from_config({"WBS_ENV": "production", "SMTP_HOST": "mail", "WBS_CONSOLE_URL": "https://c",
                              "SMTP_USERNAME": "u", "SMTP_PASSWORD_FILE": str(secret)})
    assert s.smtp_password == "s3cret" and "s3cret" not in repr(s)


def test_routing_failure_asks_each_supervisor_once_and_a_routed_case_nobody(transaction):
    opened = {"schema_version": 1, "event_id": "a1111111-2222-4333-8444-555555555555",
              "occurred_at": "2026-11-30T09:00:00Z", "case_id": CASE_ID, "report_id": CASE_ID,
              "unit": "dit-smp", "category": "fraud", "state": "received"}
    validate_event("case_opened", opened)
    with transaction() as session:
        ids = domain.record_routing_failed(session, opened, T0, {"assignee_id": None, "supervisor_ids": [SUPERVISOR]})
        assert domain.record_routing_failed(session, opened, T0, {"assignee_id": OTHER_INSPECTOR,
                                                                  "supervisor_ids": [SUPERVISOR]}) == []
    assert [(row(transaction, i).kind, row(transaction, i).recipient_id) for i in ids] == [("routing_failed", SUPERVISOR)]


# --- reporter notices -------------------------------------------------------------------------

REPORT_ID = "7e1c2a3b-1111-4222-8333-944455556666"


def verification_event(event_id, **fields):
    return {"schema_version": 1, "event_id": event_id, "occurred_at": "2026-11-23T09:00:00Z",
            "case_id": CASE_ID, **fields}


def test_only_news_the_reporter_sees_is_news():
    assert domain.news_for_reporter(verification_event("e", direction="to_reporter"))
    assert not domain.news_for_reporter(verification_event("e", direction="internal"))
    assert not domain.news_for_reporter(verification_event("e", direction="from_reporter"))
    assert domain.news_for_reporter(verification_event("e", from_state="received", to_state="verification"))
    assert not domain.news_for_reporter(verification_event("e", from_state="analysis", to_state="analysis"))


def test_a_case_assigned_teaches_the_report_a_message_notice_needs(transaction):
    """An assigned case's case_opened is not handled at all: its case_assigned carries the
    report id, which a later case_message_posted (that has none) is matched to. One from a
    verification older than that field teaches no report, and the notice is skipped, logged."""
    older = case_assigned_event()
    record(transaction, older)
    with transaction() as session:
        assert domain.note_reporter_news(session, verification_event("m-1", direction="to_reporter"),
                                         T0) is None
    record(transaction, {**case_assigned_event("22222222-2222-4333-8444-555555555555"), "report_id": REPORT_ID})
    with transaction() as session:
        assert domain.note_reporter_news(session, verification_event("m-2", direction="to_reporter"),
                                         T0) == REPORT_ID


def test_reporter_news_is_one_notice_a_day_and_later_news_waits(transaction, settings, sender, transport):
    with transaction() as session:
        domain.remember_case_report(session, CASE_ID, REPORT_ID)
    contact = {"email": "canary-reporter@example.org", "language": "en"}
    lookups = []

    def lookup(recipient_id, changed_since=None):
        lookups.append(recipient_id)
        return contact

    def news(event_id, now):
        with transaction() as session:
            assert domain.note_reporter_news(session, verification_event(event_id, direction="to_reporter"), now)
            return domain.plan_reporter_notices(session, now, settings)

    first = news("a1111111-2222-4333-8444-000000000001", T0)
    assert len(first) == 1
    assert domain.deliver(first[0], transaction=transaction, lookup_recipient=lookup, mailer=sender,
                          settings=settings, clock=Clock()) == "sent"
    # More news the same local day: nothing planned now, nothing by the sweep either.
    assert news("a1111111-2222-4333-8444-000000000002", T0 + timedelta(hours=2)) == []
    assert domain.sweep(transaction=transaction, lookup_recipient=lookup, mailer=sender,
                        settings=settings, clock=Clock(T0 + timedelta(hours=3))) == 0
    # The next local day the sweep sends the waiting news, once.
    tomorrow = Clock(T0 + timedelta(days=1))
    assert domain.sweep(transaction=transaction, lookup_recipient=lookup, mailer=sender,
                        settings=settings, clock=tomorrow) == 1
    assert domain.sweep(transaction=transaction, lookup_recipient=lookup, mailer=sender,
                        settings=settings, clock=tomorrow) == 0
    assert len(transport.sent) == 2 and lookups == ["reporter:" + REPORT_ID] * 2
    message = transport.sent[0][1]
    assert message["To"] == contact["email"]
    assert message["From"] == "Layanan Pemberitahuan <wbs@localhost>"
    assert message["Subject"] == "New notice"
    body = message.get_content()
    assert settings.followup_url in body and CASE_ID not in message.as_string()
    assert REPORT_ID not in message.as_string() and "Silakan" not in body
    with transaction() as session:  # no event announces a reporter's notice
        assert session.scalars(select(OutboxMessage)).all() == []


def test_a_reporter_without_address_is_asked_for_once_and_a_shredded_report_forgotten(transaction, settings, sender, transport):
    with transaction() as session:
        domain.remember_case_report(session, CASE_ID, REPORT_ID)
        domain.note_reporter_news(session, verification_event("e1", direction="to_reporter"), T0)
        (first,) = domain.plan_reporter_notices(session, T0, settings)
    assert domain.deliver(first, transaction=transaction, lookup_recipient=lambda r, changed_since=None: None, mailer=sender,
                          settings=settings, clock=Clock()) == "failed"
    later = T0 + timedelta(days=2)
    with transaction() as session:
        domain.note_reporter_news(session, verification_event("e2", direction="to_reporter"), later)
        assert domain.plan_reporter_notices(session, later, settings) == []
        domain.forget_report(session, REPORT_ID)
        assert session.scalars(select(domain.ReporterNews)).all() == []
        assert session.scalars(select(domain.CaseReport)).all() == []
    assert transport.sent == []


def test_reporter_subject_and_sender_are_configurable(tmp_path, transport):
    settings = Settings(data_dir=str(tmp_path), reporter_subject="Info", reporter_sender_name="Layanan",
                        reporter_mail_from="info@layanan.example.id", followup_url="https://lapor.example.id/follow-up")
    MailSender(settings, transport).send_notification(key="k", to_address="r@example.org",
                                                      kind="reporter_news", case_id=CASE_ID, language="id")
    message = transport.sent[0][1]
    assert (message["Subject"], message["From"]) == ("Info", "Layanan <info@layanan.example.id>")
    assert message["Message-ID"] == "<k@layanan.example.id>"
    assert "https://lapor.example.id/follow-up" in message.get_content() and CASE_ID not in message.as_string()


# --- template overrides -----------------------------------------------------------------------


def test_an_override_changes_the_next_email_and_a_broken_one_falls_back(transaction, sender, transport, settings, caplog):
    from notification import overrides
    checked = overrides.check("case_assigned", "id", "Kasus baru - Itjen Kemdikbud",
                              "Hotline 1500-123\n{{ link }}\n", "<p>Hotline <a href='{{ link }}'>{{ link }}</a></p>")
    with transaction() as session:
        assert overrides.save(session, checked, "case_assigned", "id", "admin:j1", T0) == 1
    first = record(transaction)
    domain.deliver(first, transaction=transaction, lookup_recipient=directory(), mailer=sender,
                   settings=settings, clock=Clock())
    message = transport.sent[-1][1]
    assert message["Subject"].startswith("[WBS] Kasus baru - Itjen Kemdikbud / ")
    assert "Hotline 1500-123" in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "https://console.example.go.id/cases/" + CASE_ID in html and "<pre>" in html  # en part escaped
    # A version that fails at send time (here: inserted without the upload check) -> default, logged.
    with transaction() as session:
        session.add(domain.overrides.TemplateVersion(kind="case_assigned", language="id", version=2,
                                                     subject="x", text="{{ link.__class__.__mro__ }}",
                                                     created_at=T0, created_by="test"))
    second = record(transaction, case_assigned_event(event_id="11111111-2222-4333-8444-000000000009"))
    assert domain.deliver(second, transaction=transaction, lookup_recipient=directory(), mailer=sender,
                          settings=settings, clock=Clock()) == "sent"
    assert transport.sent[-1][1].get_content().strip() == render("case_assigned", CASE_ID, settings.console_url, "id").body.strip()
    assert "template override case_assigned.id v2 failed to render (SecurityError)" in caplog.text


@pytest.mark.parametrize("subject,text,reason", [
    ("s", "{{ narrative }}", "may use only link"),
    ("s", "{% for %}", "syntax error"),
    ("s", "{{ link.__class__ }}", "does not render"),
    ("two\nlines", "{{ link }}", "one line"),
    ("", "{{ link }}", "non-empty"),
])
def test_an_override_is_checked_at_upload(subject, text, reason):
    from notification import overrides
    from wbs_contracts.errors import Invalid
    with pytest.raises(Invalid, match=reason):
        overrides.check("case_assigned", "en", subject, text)
    with pytest.raises(Invalid, match="unknown template kind"):
        overrides.check("case_shredded", "en", "s", "{{ link }}")


# --- OpenPGP ------------------------------------------------------------------------------------


def test_a_key_is_checked_at_upload():
    from notification import pgp
    from wbs_contracts.errors import Invalid
    from pgp_keys import make_key
    good = make_key()
    checked = pgp.check_key(str(good.pubkey))
    assert checked.fingerprint == str(good.fingerprint).replace(" ", "") and checked.expires_at is None
    expired = make_key(expires=timedelta(days=1), created=datetime.now(timezone.utc) - timedelta(days=2))
    for armored, reason in ((str(good), "private key"), ("hello", "not an OpenPGP key"),
                            (str(make_key(encryption_subkey=False).pubkey), "no \\(unexpired\\) subkey"),
                            (str(expired.pubkey), "expired")):
        with pytest.raises(Invalid, match=reason):
            pgp.check_key(armored)


def test_an_email_to_a_staff_member_with_a_key_is_pgp_mime_and_decrypts_to_the_same_link(transaction, sender, transport, settings):
    from notification import pgp
    from pgp_keys import decrypt_pgp_mime, make_key
    private = make_key()
    with transaction() as session:
        planning.register_key(session, INSPECTOR_ID, pgp.check_key(str(private.pubkey)), T0)
    notification_id = record(transaction)
    assert domain.deliver(notification_id, transaction=transaction, lookup_recipient=directory(),
                          mailer=sender, settings=settings, clock=Clock()) == "sent"
    message = transport.sent[-1][1]
    wire = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    link = "https://console.example.go.id/cases/" + CASE_ID
    assert link not in message.as_string() and CASE_ID not in message.as_string()
    assert wire["Subject"] == pgp.ENCRYPTED_SUBJECT and wire["To"] == "inspektur@itjen.example.go.id"
    inner = decrypt_pgp_mime(wire, private)
    assert link in inner.get_body(("plain",)).get_content()
    assert inner["Subject"].startswith("[WBS] ")


def test_a_reference_not_yet_learned_is_asked_once_and_kept(transaction, sender, transport, settings):
    asked = []

    def lookup(case_id):
        asked.append(case_id)
        return "WBS/ITJEN/2026/00042"
    first = record(transaction)
    assert domain.deliver(first, transaction=transaction, lookup_recipient=directory(), mailer=sender,
                          settings=settings, clock=Clock(), lookup_reference=lookup) == "sent"
    second = record(transaction, case_assigned_event(event_id="11111111-2222-4333-8444-000000000042"))
    domain.deliver(second, transaction=transaction, lookup_recipient=directory(), mailer=sender,
                   settings=settings, clock=Clock(), lookup_reference=lookup)
    assert asked == [CASE_ID]  # the second email reads what the first learned
    assert [m["Subject"].startswith("[WBS] WBS/ITJEN/2026/00042: ") for _, m in transport.sent[-2:]] == [True, True]

    def away(case_id):
        raise TimeoutError()
    with transaction() as session:
        session.query(domain.CaseReference).delete()
    third = record(transaction, case_assigned_event(event_id="11111111-2222-4333-8444-000000000043"))
    assert domain.deliver(third, transaction=transaction, lookup_recipient=directory(), mailer=sender,
                          settings=settings, clock=Clock(), lookup_reference=away) == "sent"
    assert transport.sent[-1][1]["Subject"].startswith("[WBS] Kasus")  # sent without it, not held


# --- the first attempt claimed with the record; remembered addresses ------------------------------


def test_case_assigned_is_claimed_in_its_own_transaction_and_sent_once(transaction, sender, transport, settings):
    event = case_assigned_event()
    with transaction() as session:
        session.add(ProcessedEvent(event_id=event["event_id"], consumer=""))
        prepared = domain.claim_case_assigned(session, event, T0, settings)
    assert prepared.claimed.attempt == 1
    notification_id = prepared.claimed.notification_id
    kwargs = dict(transaction=transaction, lookup_recipient=directory(), mailer=sender, settings=settings,
                  clock=Clock())
    assert domain.deliver(notification_id, **kwargs) is None  # claimed: no sweep sends it meanwhile
    assert domain.attempt(prepared, **kwargs) == "sent"
    assert len(transport.sent) == 1 and row(transaction, notification_id).attempts == 1


def test_case_assigned_to_an_inspector_who_reads_a_daily_bundle_is_not_attempted(transaction, settings):
    event = case_assigned_event()
    with transaction() as session:
        planning.set_preference(session, INSPECTOR_ID, "daily", None, T0)
    with transaction() as session:
        assert domain.claim_case_assigned(session, event, T0, settings) is None
    with transaction() as session:
        (held,) = session.scalars(select(Notification)).all()
    assert held.held and held.attempts == 0


def test_a_staff_change_is_noted_and_prepared_with_the_email(transaction, settings):
    with transaction() as session:
        domain.note_staff_changed(session, INSPECTOR_ID, T0)
    with transaction() as session:
        domain.note_staff_changed(session, INSPECTOR_ID, T0 + timedelta(minutes=1))  # the latest wins
    event = case_assigned_event()
    with transaction() as session:
        prepared = domain.claim_case_assigned(session, event, T0, settings)
    assert prepared.recipient_changed_at == T0 + timedelta(minutes=1)
    with transaction() as session:
        assert domain.staff_facts(session, "reporter:" + CASE_ID) == domain.StaffFacts()
        assert domain.staff_facts(session, INSPECTOR_ID).changed_at == T0 + timedelta(minutes=1)


def test_a_remembered_address_is_used_until_it_expires_or_its_owner_changed():
    from notification.dependencies import RecipientCache

    cache = RecipientCache(seconds=60)
    answer = {"email": "a@example.go.id"}
    assert cache.get("s-1", None) == (False, None)
    cache.put("s-1", answer, T0)
    assert cache.get("s-1", None) == (True, answer)
    assert cache.get("s-1", T0 - timedelta(seconds=1)) == (True, answer)  # changed before it was asked
    assert cache.get("s-1", T0) == (False, None)  # changed when (or after) it was asked: stale
    assert cache.get("s-1", None) == (False, None)  # and forgotten
    cache.put("s-1", None, T0)  # "unknown or disabled" is remembered too
    assert cache.get("s-1", None) == (True, None)
    cache.forget("s-1")
    assert cache.get("s-1", None) == (False, None)
    expired = RecipientCache(seconds=0.01)
    expired.put("s-2", answer, T0)
    time.sleep(0.02)
    assert expired.get("s-2", None) == (False, None)
    off = RecipientCache(seconds=0)
    off.put("s-3", answer, T0)
    assert off.get("s-3", None) == (False, None)


def test_smtp_connections_are_kept_between_emails_and_dropped_once_the_server_closed_them():
    from email.message import EmailMessage

    from notification.mailer import SmtpTransport
    from tests.fixtures import SmtpSink

    def message(n):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "wbs@example.go.id", "inspektur@example.go.id", f"n{n}"
        m.set_content("link")
        return m

    first = SmtpSink()
    first.start()
    transport = SmtpTransport(Settings(smtp_host=first.host, smtp_port=first.port))
    try:
        for n in range(3):
            transport.send(message(n), f"k{n}")
        first.wait_for(3)
    finally:
        first.stop()  # the server goes away: the kept connection is closed under the client
    assert len(set(first.peers)) == 1  # one connection for three emails

    second = SmtpSink(port=first.port)  # another server on the same port
    second.start()
    try:
        transport.send(message(3), "k3")
        (received,) = second.wait_for(1)
        transport.close()
    finally:
        second.stop()
    assert received["Subject"] == "n3"


def test_a_case_assigned_email_claimed_by_a_process_that_died_is_sent_by_the_sweep(transaction, sender, transport,
                                                                                    settings):
    """Recorded and claimed in the handler's transaction, then the process dies before its
    attempt: the claim runs out and the retry sweep sends the email, once."""
    event = case_assigned_event()
    with transaction() as session:
        session.add(ProcessedEvent(event_id=event["event_id"], consumer=""))
        domain.claim_case_assigned(session, event, T0, settings)  # ... and the process dies here
    clock = Clock()
    kwargs = dict(transaction=transaction, lookup_recipient=directory(), mailer=sender, settings=settings,
                  clock=clock)
    assert domain.sweep(**kwargs) == 0  # still claimed by the dead process
    clock.advance(settings.claim_seconds)
    assert domain.sweep(**kwargs) == 1
    assert domain.sweep(**kwargs) == 0
    assert len(transport.sent) == 1

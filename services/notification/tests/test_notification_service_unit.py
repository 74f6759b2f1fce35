"""The entrypoints with nameko's worker_factory (every dependency a mock): they stay thin."""
from contextlib import contextmanager
from unittest import mock

from nameko.testing.services import worker_factory

from notification import domain
from notification.service import NotificationService

EVENT = {"schema_version": 1, "event_id": "11111111-2222-4333-8444-555555555555",
         "occurred_at": "2026-11-23T09:00:00Z", "case_id": "6f1c2a3b-1111-4222-8333-944455556666",
         "inspector_id": "0a0b0c0d-1111-4222-8333-944455556666", "unit": "dit-smp"}


def service_with(session):
    service = worker_factory(NotificationService)

    @contextmanager
    def handle_once(event_id, model):
        assert event_id == EVENT["event_id"]
        yield session
    service.db.handle_once.side_effect = handle_once
    return service


def test_a_redelivered_event_does_nothing():
    service = service_with(None)
    with mock.patch.object(domain, "claim_case_assigned") as record, \
            mock.patch.object(domain, "attempt") as attempt:
        service.handle_case_assigned(EVENT)
    record.assert_not_called()
    attempt.assert_not_called()


def test_a_new_event_is_recorded_and_claimed_then_attempted_outside_the_transaction():
    session = object()
    service = service_with(session)
    calls = []
    with mock.patch.object(domain, "claim_case_assigned",
                           side_effect=lambda s, e, now, settings: calls.append("record") or "prepared"), \
            mock.patch.object(domain, "attempt", side_effect=lambda p, **kw: calls.append(("attempt", p))) as attempt:
        service.handle_case_assigned(EVENT)
    assert calls == ["record", ("attempt", "prepared")]
    kwargs = attempt.call_args.kwargs
    assert kwargs["transaction"] is service.db.transaction
    assert kwargs["lookup_recipient"]("staff-1") is service.directory.get_recipient.return_value
    service.directory.get_recipient.assert_called_once_with("staff-1", None)
    assert kwargs["lookup_recipient"]("reporter:r-1") is service.contacts.reporter_contact.return_value
    service.contacts.reporter_contact.assert_called_once_with("r-1")
    assert kwargs["mailer"] is service.mailer


def test_an_event_held_for_the_daily_bundle_is_not_attempted():
    service = service_with(object())
    with mock.patch.object(domain, "claim_case_assigned", return_value=None), \
            mock.patch.object(domain, "attempt") as attempt:
        service.handle_case_assigned(EVENT)
    attempt.assert_not_called()


def test_an_sla_breach_without_assignee_sends_nothing():
    service = service_with(object())
    with mock.patch.object(domain, "record_sla_breached", return_value=[]), \
            mock.patch.object(domain, "remember_case_reference"), \
            mock.patch.object(domain, "deliver") as deliver:
        service.handle_sla_breached(dict(EVENT))
    deliver.assert_not_called()


def test_the_timer_sweeps_with_the_service_collaborators():
    service = worker_factory(NotificationService)
    with mock.patch.object(domain, "sweep") as sweep:
        service.retry_pending()
    sweep.assert_called_once_with(transaction=service.db.transaction,
                                  lookup_recipient=service._recipient,
                                  mailer=service.mailer, settings=service.settings,
                                  lookup_reference=service._reference)

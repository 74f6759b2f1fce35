"""Events from intake and storage, and the deadline timer (the worker tier)."""
from __future__ import annotations

from wbs_contracts import errors as contract_errors
from wbs_plumbing.reliable import event_handler
from wbs_plumbing.timers import configured_timer

from .. import casefile, cases, deadlines
from ..errors import InvalidInput
from ..models import ProcessedEvent
from .base import Dependencies


class EventsAndTimers(Dependencies):
    @event_handler("intake", "report_submitted")
    def handle_report_submitted(self, event):
        """Open, route and announce the case for a submitted report.

        Input: ``report_submitted`` {report_id, unit, category, evidence_count} (schema-checked).
        The report's parties are read from storage first (grant subject ``verification``), so
        routing can exclude anyone named in them.
        Emits: ``case_opened``; ``case_assigned`` when someone eligible was found.
        Errors: a malformed event is dead-lettered at once (PermanentError); storage or database
        failures are retried, then dead-lettered; a report storage does not hold is dead-lettered
        with the reason (a forged event) and opens no case. Redelivery does nothing (processed_events +
        unique report_id).
        """
        try:
            parties, note = casefile.routing_parties(self.vault, event.get("report_id") or "")
            if note == "parties_unavailable":
                # intake stores a report's content before it announces it: an event for a report
                # storage does not hold came from somewhere else and opens no case (docs/architecture.md §10)
                raise contract_errors.PermanentError("refused: report_submitted for a report storage does not hold")
            with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
                if session is None:
                    return
                cases.open_case(session, event, parties=parties, parties_note=note, now=self.clock(),
                                calendar=self.settings.calendar)
        except InvalidInput as exc:
            raise contract_errors.PermanentError(exc.message) from None

    @event_handler("intake", "reporter_message_posted")
    def handle_reporter_message_posted(self, event):
        """Record the reporter's answer on the case.

        Input: ``reporter_message_posted`` {report_id, message_id} (the text is in storage).
        Emits: ``case_message_posted`` {case_id, direction: from_reporter, message_id}; and
        ``case_status_changed`` when the case was waiting for the reporter (back to verification).
        Errors: malformed -> dead-lettered; no case yet -> retried, then dead-lettered.
        """
        try:
            with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
                if session is None:
                    return
                cases.record_reporter_message(session, event, now=self.clock(), calendar=self.settings.calendar)
        except InvalidInput as exc:
            raise contract_errors.PermanentError(exc.message) from None

    @event_handler("storage", "report_shredded")
    def handle_report_shredded(self, event):
        """Mark the case's content destroyed (retention ran): pages stop asking storage for it.

        Input: ``report_shredded`` {report_id}. Emits nothing. Errors: database failures are
        retried, then dead-lettered; an unknown report is fine (nothing to mark).
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            cases.mark_content_destroyed(session, event.get("report_id") or "", now=self.clock())

    @configured_timer(interval=60, config_key="DEADLINE_CHECK_SECONDS")
    def check_deadlines(self):
        """Publish ``sla_breached`` once for each clock past its due time.

        Input: none (timer; time from the Clock dependency). Emits: ``sla_breached`` {case_id,
        clock, due_at}. Errors: a database failure is logged by nameko; the next tick retries.
        """
        with self.db.transaction() as session:
            deadlines.check_breaches(session, self.clock())

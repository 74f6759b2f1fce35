"""RPCs other services call: intake (the reporter's status page) and notification (who to
tell, where to write). Answers carry ids, addresses and reporter labels, never case content."""
from __future__ import annotations

import datetime as dt

from wbs_plumbing.clock import as_utc
from wbs_plumbing.queues import rpc  # rpc-verification is a quorum queue (deploy/rabbitmq/README.md)

from .. import casefile, directory, notices, safeguards
from .base import EXPECTED, Dependencies, remote_errors


class ServiceRpc(Dependencies):
    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def case_contacts(self, case_id):
        """Input: case id. Returns {case_id, assignee_id, supervisor_ids, reference} (ids and the
        register reference only) or None. For notification's staff emails. Emits nothing."""
        with self.db.transaction() as session:
            return directory.case_contacts(session, case_id)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def deadlines_ahead(self, working_days):
        """Input: a number of working days (notification's reminder lead). Returns [{case_id,
        clock, due_at, assignee_id}] of running clocks due within that many working days (ids
        only; verification.notices). Emits nothing."""
        now = self.clock()
        until = self.settings.calendar.add_working_days(now, max(0, int(working_days)))
        with self.db.transaction() as session:
            return notices.deadlines_ahead(session, now, until)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def supervisor_digests(self, since):
        """Input: ISO time the period began. Returns [{supervisor_id, units: [{unit, new,
        waiting, overdue, awaiting_reporter}]}] (counts only; verification.notices). Emits
        nothing."""
        with self.db.transaction() as session:
            return notices.supervisor_digests(session, self.clock(),
                                              as_utc(dt.datetime.fromisoformat(str(since).replace("Z", "+00:00"))))

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def get_recipient(self, staff_id):
        """Input: staff id. Returns {email, display_name, language} or None (unknown/inactive).
        Emits nothing. For notification's content-free emails."""
        with self.db.transaction() as session:
            return directory.get_recipient(session, staff_id)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def get_report_status(self, report_id, language="id", command=None):
        """Input: report id (intake, for the reporter's status page). Returns {state: {code,
        label}, history: [{code, label, at}], messages: [{message_id, direction, at}], grant}
        with reporter labels, or None. ``grant`` lets the reporter read exactly those messages
        from storage (null when there are none). Emits nothing. Never returns staff names,
        internal reasons or internal notes. ``command``: intake's signed ``get_report_status``
        for this report, which intake signs only for a live reporter session of it; without it
        Forbidden, so broker credentials alone yield no reporter grant."""
        self.commands(command, "get_report_status", ("intake",), report_id=str(report_id))
        return casefile.report_status(self.db, self.signer, report_id, language)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def case_retention_state(self, report_id):
        """Input: report id (storage, before it shreds). Returns {state, since, legal_hold} of
        the report's case, or None: storage shreds only what this confirms, never on an event
        alone. Emits nothing."""
        with self.db.transaction() as session:
            return safeguards.retention_state(session, report_id)

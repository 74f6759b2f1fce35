"""RPCs other services call: intake (the reporter's status page) and notification (who to
tell, where to write). Answers carry ids, addresses and reporter labels, never case content."""
from __future__ import annotations

from wbs_plumbing.queues import rpc  # rpc-verification is a quorum queue (deploy/rabbitmq/README.md)

from .. import casefile, directory, safeguards
from .base import EXPECTED, Dependencies, remote_errors


class ServiceRpc(Dependencies):
    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def case_contacts(self, case_id):
        """Input: case id. Returns {case_id, assignee_id, supervisor_ids} (ids only) or None.
        For notification's deadline emails. Emits nothing."""
        with self.db.transaction() as session:
            return directory.case_contacts(session, case_id)

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

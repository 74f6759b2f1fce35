"""The administrator's RPCs behind `wbs unit list|import`, `wbs staff list|import` and
`wbs inspector reset-password|reset-totp`: the same use cases as the admin console (``admin``,
``directory_import``), each needing the admin key's signed command before any effect (reads
too: the staff list holds e-mail addresses), each audited with the actor ``system``."""
from __future__ import annotations

from wbs_plumbing.queues import rpc

from .. import admin, directory_import
from ..models import SYSTEM_ACTOR
from .base import EXPECTED, Dependencies, remote_errors


class DirectoryRpc(Dependencies):
    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def unit_tree(self, command=None):
        """Input: the admin's signed command. Returns every unit depth first with parent, flags,
        time zone, clocks and number of cases. Emits nothing."""
        self.commands(command, "unit_tree", ("admin",))
        with self.db.transaction() as session:
            return admin.unit_tree(session)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def list_staff(self, q=None, unit=None, role=None, active=None, command=None):
        """Input: filters (text, unit with sub-units, role, active|disabled); signed. Returns the
        accounts (no password or TOTP material). Emits nothing."""
        self.commands(command, "list_staff", ("admin",))
        with self.db.transaction() as session:
            return admin.list_staff(session, q=q, unit=unit, role=role, active=active)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def import_units(self, text, dry_run=False, command=None):
        """Input: a units CSV's text; signed. All or nothing: {ok, errors: [{line, message}],
        added, changed, unchanged}; ``dry_run`` checks without writing. Emits unit_changed per
        added or changed unit."""
        self.commands(command, "import_units", ("admin",))
        with self.db.transaction() as session:
            if dry_run:
                _, errors = directory_import.check_units(session, text)
                return {"ok": not errors, "errors": errors, "added": [], "changed": [], "unchanged": 0}
            return directory_import.import_units_text(session, SYSTEM_ACTOR, text)  # nothing written if bad

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def import_staff(self, text, command=None):
        """Input: a staff CSV's text; signed. All or nothing: {ok, errors, created: [{username,
        staff_id, password, totp_secret, otpauth_uri}], existing}. The secrets are in this answer
        only. Emits staff_changed per new account."""
        self.commands(command, "import_staff", ("admin",))
        with self.db.transaction() as session:
            return directory_import.import_staff_text(session, self.passwords, SYSTEM_ACTOR, text)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def reset_password(self, staff, command=None):
        """Input: username or staff id; signed. A one-time password (in this answer only), a
        forced change at the next sign-in, every session ended. Errors: NotFound."""
        self.commands(command, "reset_password", ("admin",))
        with self.db.transaction() as session:
            return admin.reset_password(session, self.passwords, SYSTEM_ACTOR, staff)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def reset_totp(self, staff, command=None):
        """Input: username or staff id; signed. A new TOTP enrolment (in this answer only); the
        old authenticator is refused from now on; every session ended. Errors: NotFound."""
        self.commands(command, "reset_totp", ("admin",))
        with self.db.transaction() as session:
            return admin.reset_totp(session, SYSTEM_ACTOR, staff)

"""The directory and audit RPCs the ``wbs`` command calls (units, accounts, supervision,
clocks, the audit chain, the demo seed).

Every change needs the admin key's signed command (``command``, wbs_plumbing.grants), checked
before any effect and audited: broker credentials alone change nothing (docs/architecture.md §10)."""
from __future__ import annotations

from wbs_plumbing.queues import rpc  # rpc-verification is a quorum queue (deploy/rabbitmq/README.md)

from .. import audit, demo, directory, safeguards
from .base import EXPECTED, Dependencies, remote_errors


class AdminRpc(Dependencies):
    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def list_units(self):
        """Input: none. Returns [{code, name, parent, inspectorate}]. Emits nothing."""
        with self.db.transaction() as session:
            return directory.list_units(session)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def add_unit(self, code, name, parent=None, inspectorate=False, command=None):
        """Input: unit code, name, optional parent code and inspectorate flag. Returns the unit.
        Emits unit_changed. Errors: Invalid (bad code, unknown parent), Conflict (code exists)."""
        self.commands(command, "add_unit", ("admin",))
        with self.db.transaction() as session:
            return directory.add_unit(session, code, name, parent, inspectorate)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def add_staff(self, username, email, unit, role="inspector", display_name=None, nip=None,
                  escalation_pool=False, oversees=None, command=None):
        """Input: username, email, home unit code, role; optional NIP, escalation-pool flag and
        overseen units (supervisors; default their home unit). Returns {staff_id, username, role,
        unit, password, totp_secret, otpauth_uri}: the password is shown this once. Emits
        staff_changed. Errors: Invalid (bad field, unknown unit), Conflict (username taken)."""
        self.commands(command, "add_staff", ("admin",))
        with self.db.transaction() as session:
            return directory.add_staff(session, self.passwords, username, email, unit, role,
                                       display_name=display_name, nip=nip, escalation_pool=escalation_pool,
                                       oversees=oversees)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def set_staff_active(self, staff, active, command=None):
        """Input: username or staff id, active flag. Disabling revokes every session at once.
        Returns the account with ``sessions_revoked``. Emits staff_changed. Errors: NotFound."""
        self.commands(command, "set_staff_active", ("admin",))
        with self.db.transaction() as session:
            return directory.set_staff_active(session, staff, bool(active))

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def announce_directory(self, command=None):
        """Input: none. Emits unit_changed for every unit and staff_changed for every account, as
        they are now (integrators' lookups; `wbs events announce-directory`). Returns {units, staff}."""
        self.commands(command, "announce_directory", ("admin",))
        with self.db.transaction() as session:
            return directory.announce_directory(session)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def revoke_sessions(self, staff, command=None):
        """Input: username or staff id. Ends every open session of the account at once (a lost
        laptop) without disabling it. Returns {staff_id, sessions_revoked}. Emits nothing.
        Errors: NotFound."""
        self.commands(command, "revoke_sessions", ("admin",))
        with self.db.transaction() as session:
            return directory.revoke_staff_sessions(session, staff)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def move_staff(self, staff, unit, command=None):
        """Input: username or staff id, new home unit. Returns the account. Emits staff_changed.
        Errors: NotFound, Invalid (unknown unit)."""
        self.commands(command, "move_staff", ("admin",))
        with self.db.transaction() as session:
            return directory.move_staff(session, staff, unit)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def set_supervision(self, staff, units, command=None):
        """Input: a supervisor's username or id, the unit codes they oversee (replaces the
        list). Returns {staff_id, oversees}. Emits nothing. Errors: NotFound, Invalid."""
        self.commands(command, "set_supervision", ("admin",))
        with self.db.transaction() as session:
            return directory.set_supervision(session, staff, list(units or []))

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def set_unit_clocks(self, code, command=None, **clocks):
        """Input: unit code; ack_days, ack_working_days, verification_days,
        verification_working_days, feedback_months. Returns the unit's clocks. Emits nothing.
        Errors: NotFound, Invalid."""
        self.commands(command, "set_unit_clocks", ("admin",))
        with self.db.transaction() as session:
            return directory.set_unit_clocks(session, code, **clocks)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def verify_audit_chain(self):
        """Input: none. Walks the audit chain. Returns {ok, entries, first_bad_seq, problem,
        head_hash}. Emits nothing. Used by ``wbs audit verify``."""
        with self.db.transaction() as session:
            return audit.verify(session).as_dict()

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def seed_demo(self, command=None):
        """Input: none. Creates the demo directory once. Returns {inspector, supervisor} with
        username, password and TOTP secret (fixed in development; random, shown once,
        otherwise). Emits nothing."""
        self.commands(command, "seed_demo", ("admin",))
        with self.db.transaction() as session:
            return demo.seed_demo(session, self.passwords, development=self.settings.development)

    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def unlock_staff(self, staff, command=None):
        """Input: username or staff id; the admin's signed command. Clears the sign-in lock and
        the failure count (anyone who knows a username can lock it with wrong passwords; the
        lock stays, an administrator lifts it). Returns {staff_id, unlocked}. Emits nothing.
        Errors: Forbidden, NotFound."""
        self.commands(command, "unlock_staff", ("admin",))
        with self.db.transaction() as session:
            return safeguards.unlock_staff(session, staff)

"""DependencyProviders of the notification service, one per outside thing.

* ``Mailer`` (in ``mailer.py``): the SMTP server or the outbox folder.
* ``RecipientDirectory``: verification's ``get_recipient`` RPC, with a deadline
  (``wbs_plumbing.deadline``): a notification attempt must fail (and be retried by the sweep)
  when verification is down, so the worker and its greenlet are not held hostage.
* ``ReporterContacts``: storage's ``read_reporter_contact`` RPC, asked with this service's own
  signed command for the one report (``wbs_plumbing.grants``, issuer ``notification``): storage
  accepts that command from no one else, so only this service can read a reporter's address,
  and only the address. A shredded report answers NotFound: no address, no notice.
* ``NotificationSettings``: the parsed, typed config (parsed once per container and shared
  with every provider), so workers never read raw config keys.
"""
from __future__ import annotations

from typing import Optional

from nameko.exceptions import RemoteError
from wbs_plumbing.queues import RpcProxy  # transient reply queue (survives a broker node's loss)

from wbs_plumbing.config import SettingsProvider, service_settings
from wbs_plumbing.deadline import call_with_deadline
from wbs_plumbing.grants import CommandSigner

from notification.settings import Settings



class NotificationSettings(SettingsProvider):
    parse = staticmethod(Settings.from_config)


class _Directory:
    def __init__(self, proxy, timeout: float):
        self._proxy = proxy
        self._timeout = timeout

    def get_recipient(self, staff_id: str) -> Optional[dict]:
        """``{"email", "display_name", "language"}`` or None for an unknown staff id."""
        return call_with_deadline(self._proxy.get_recipient, self._timeout, staff_id)

    def deadlines_ahead(self, working_days: int) -> list:
        """``[{case_id, clock, due_at, assignee_id}]`` due within that many working days."""
        return call_with_deadline(self._proxy.deadlines_ahead, self._timeout, working_days)

    def supervisor_digests(self, since: str) -> list:
        """``[{supervisor_id, units: [{unit, new, waiting, overdue, awaiting_reporter}]}]``."""
        return call_with_deadline(self._proxy.supervisor_digests, self._timeout, since)

    def administrator_ids(self) -> list:
        """The ids of the active administrators (told when a staff member's OpenPGP key runs out)."""
        return call_with_deadline(self._proxy.administrator_ids, self._timeout)

    def case_contacts(self, case_id: str) -> Optional[dict]:
        """``{"assignee_id", "supervisor_ids"}`` (ids only) or None for an unknown case."""
        return call_with_deadline(self._proxy.case_contacts, self._timeout, case_id)


class RecipientDirectory(RpcProxy):
    def __init__(self, **options):
        super().__init__("verification", **options)

    def setup(self):
        super().setup()
        self.timeout = service_settings(self.container, Settings.from_config).rpc_timeout_seconds

    def get_dependency(self, worker_ctx):
        return _Directory(super().get_dependency(worker_ctx), self.timeout)


class _Contacts:
    def __init__(self, proxy, signer: CommandSigner, timeout: float):
        self._proxy, self._signer, self._timeout = proxy, signer, timeout

    def reporter_contact(self, report_id: str) -> Optional[dict]:
        """``{"email", "language"}``, or None: no address given, or the report was shredded.
        Held in the caller's memory for one send; never stored or logged."""
        command = self._signer.issue("read_reporter_contact", report_id=report_id)
        try:
            return call_with_deadline(self._proxy.read_reporter_contact, self._timeout, report_id,
                                      command=command)
        except RemoteError as exc:
            if exc.exc_type == "NotFound":
                return None
            raise


class ReporterContacts(RpcProxy):
    def __init__(self, **options):
        super().__init__("storage", **options)

    def setup(self):
        super().setup()
        self.timeout = service_settings(self.container, Settings.from_config).rpc_timeout_seconds
        self.signer = CommandSigner.from_config(self.container.config, "notification")

    def get_dependency(self, worker_ctx):
        return _Contacts(super().get_dependency(worker_ctx), self.signer, self.timeout)

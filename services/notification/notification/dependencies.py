"""DependencyProviders of the notification service, one per outside thing.

* ``Mailer`` (in ``mailer.py``): the SMTP server or the outbox folder.
* ``RecipientDirectory``: verification's ``get_recipient`` RPC, with a deadline
  (``wbs_plumbing.deadline``): a notification attempt must fail (and be retried by the sweep)
  when verification is down, so the worker and its greenlet are not held hostage. An answer is
  remembered in this process's memory (``RecipientCache``) so that each email does not cost an
  RPC, but never past a change of that staff member: ``staff_changed`` is noted in the database
  (``StaffChange``, id and time) by whichever replica handles it, and an answer asked for
  before that time is asked again. ``NOTIFY_RECIPIENT_CACHE_SECONDS`` bounds it besides.
* ``ReporterContacts``: storage's ``read_reporter_contact`` RPC, asked with this service's own
  signed command for the one report (``wbs_plumbing.grants``, issuer ``notification``): storage
  accepts that command from no one else, so only this service can read a reporter's address,
  and only the address. A shredded report answers NotFound: no address, no notice.
* ``NotificationSettings``: the parsed, typed config (parsed once per container and shared
  with every provider), so workers never read raw config keys.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Optional

from nameko.exceptions import RemoteError
from wbs_plumbing.queues import RpcProxy  # transient reply queue (survives a broker node's loss)

from wbs_plumbing.clock import utcnow
from wbs_plumbing.config import SettingsProvider, service_settings
from wbs_plumbing.deadline import call_with_deadline
from wbs_plumbing.grants import CommandSigner

from notification.settings import Settings



class NotificationSettings(SettingsProvider):
    parse = staticmethod(Settings.from_config)


class RecipientCache:
    """verification's answers to ``get_recipient``, per process: staff id -> (answer, when it
    was asked, monotonic expiry). An answer counts only if it was asked after the staff member's
    last change this service knows of, and before it expires."""

    LIMIT = 10_000  # staff members remembered at most; past that the cache starts afresh

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._answers: dict = {}

    def get(self, staff_id: str, changed_since: Optional[datetime]):
        """(True, answer) when a usable answer is remembered, else (False, None)."""
        entry = self._answers.get(staff_id)
        if entry is None:
            return False, None
        answer, asked_at, expires = entry
        if time.monotonic() >= expires or (changed_since is not None and asked_at <= changed_since):
            self._answers.pop(staff_id, None)
            return False, None
        return True, answer

    def put(self, staff_id: str, answer, asked_at: datetime) -> None:
        if self.seconds <= 0:
            return
        if len(self._answers) >= self.LIMIT:
            self._answers.clear()
        self._answers[staff_id] = (answer, asked_at, time.monotonic() + self.seconds)

    def forget(self, staff_id: str) -> None:
        self._answers.pop(staff_id, None)


class _Directory:
    def __init__(self, proxy, timeout: float, cache: RecipientCache):
        self._proxy = proxy
        self._timeout = timeout
        self._cache = cache

    def get_recipient(self, staff_id: str, changed_since: Optional[datetime] = None) -> Optional[dict]:
        """``{"email", "display_name", "language"}`` or None for an unknown or disabled staff id.
        ``changed_since``: when this service last learned of a change of them (``StaffChange``)."""
        known, answer = self._cache.get(staff_id, changed_since)
        if known:
            return answer
        asked_at = utcnow()  # before asking: a change noted while the answer travels makes it stale
        answer = call_with_deadline(self._proxy.get_recipient, self._timeout, staff_id)
        self._cache.put(staff_id, answer, asked_at)
        return answer

    def forget(self, staff_id: str) -> None:
        """Drop what this process remembers of a staff member (it just handled their change)."""
        self._cache.forget(staff_id)

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
        settings = service_settings(self.container, Settings.from_config)
        self.timeout = settings.rpc_timeout_seconds
        self.cache = RecipientCache(settings.recipient_cache_seconds)

    def get_dependency(self, worker_ctx):
        return _Directory(super().get_dependency(worker_ctx), self.timeout, self.cache)


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

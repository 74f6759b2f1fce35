"""DependencyProviders of the notification service, one per outside thing.

* ``Mailer`` (in ``mailer.py``): the SMTP server or the outbox folder.
* ``RecipientDirectory``: verification's ``get_recipient`` RPC, with a timeout. nameko's RPC
  proxy waits for a reply forever; a notification attempt must instead fail (and be retried by
  the sweep) when verification is down, so the worker and its greenlet are not held hostage.
* ``NotificationSettings``: the parsed, typed config, so workers never read raw config keys.
"""
from __future__ import annotations

from typing import Optional

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy

from notification.settings import Settings


class RecipientLookupTimeout(Exception):
    """verification did not answer get_recipient in time."""


class NotificationSettings(DependencyProvider):
    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


class _Directory:
    def __init__(self, proxy, timeout: float):
        self._proxy = proxy
        self._timeout = timeout

    def get_recipient(self, staff_id: str) -> Optional[dict]:
        """``{"email", "display_name", "language"}`` or None for an unknown staff id."""
        return self._wait(self._proxy.get_recipient.call_async(staff_id))

    def case_contacts(self, case_id: str) -> Optional[dict]:
        """``{"assignee_id", "supervisor_ids"}`` (ids only) or None for an unknown case."""
        return self._wait(self._proxy.case_contacts.call_async(case_id))

    def _wait(self, reply):
        try:
            with eventlet.Timeout(self._timeout):
                return reply.result()
        except eventlet.Timeout:
            raise RecipientLookupTimeout() from None


class RecipientDirectory(RpcProxy):
    def __init__(self, **options):
        super().__init__("verification", **options)

    def setup(self):
        super().setup()
        self.timeout = Settings.from_config(self.container.config).rpc_timeout_seconds

    def get_dependency(self, worker_ctx):
        return _Directory(super().get_dependency(worker_ctx), self.timeout)

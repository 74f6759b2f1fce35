"""Intake's DependencyProviders: its settings and the unit directory; and verification's
answers for the reporter's follow-up (`Casework`).

Each hands workers a small object with domain verbs, never a raw client. storage is reached
through plumbing's one client (`wbs_plumbing.storage_client.StorageClient`), every call with a
deadline (`wbs_plumbing.deadline`): a dead peer answers 503 instead of hanging the reporter.
"""

from __future__ import annotations

import logging
import time

from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider

from wbs_plumbing.config import SettingsProvider, service_settings
from wbs_plumbing.deadline import Unavailable, call_with_deadline

from intake.settings import Settings

log = logging.getLogger(__name__)


class IntakeSettings(SettingsProvider):
    """Parses the config once at container setup; refuses to start on unsafe config."""

    parse = staticmethod(Settings.from_config)


class UnitDirectory(DependencyProvider):
    """The units verification knows (`verification.list_units()`), cached briefly.

    Why cache: every submission and every page view needs the list, and it changes rarely (an
    administrator adds a unit). Why briefly: a new or renamed unit must be offered within seconds
    (5 s by default, ``INTAKE_UNITS_CACHE_SECONDS``), and a disabled one withdrawn as fast.
    If verification is unreachable, a stale list is better than refusing a reporter; with no
    list at all, submissions answer 503.
    """

    def __init__(self, rpc_attribute: str = "verification"):
        self.rpc_attribute = rpc_attribute
        self._units: list[dict] | None = None
        self._fetched = 0.0

    def setup(self):
        settings = service_settings(self.container, Settings.from_config)
        self.ttl = settings.units_cache_seconds
        self.timeout = min(settings.rpc_timeout_seconds, 10.0)

    def get_dependency(self, worker_ctx):
        return Units(self, worker_ctx)


class Units:
    def __init__(self, provider: UnitDirectory, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx

    def listing(self) -> list[dict]:
        p = self._provider
        if p._units is not None and time.monotonic() - p._fetched < p.ttl:
            return p._units
        proxy = getattr(self._worker_ctx.service, p.rpc_attribute)
        try:
            units = call_with_deadline(proxy.list_units, p.timeout)
        except (Unavailable, RemoteError):
            if p._units is not None:
                log.warning("verification.list_units failed; using the cached list")
                return p._units
            raise Unavailable("units") from None
        p._units = [
            {"code": u["code"], "name": u.get("name") or u["code"], "parent": u.get("parent")}
            for u in units
        ]
        p._fetched = time.monotonic()
        return p._units

    def codes(self) -> set[str]:
        return {u["code"] for u in self.listing()}


class Casework:
    """verification's answers about a report's case, for the reporter's follow-up."""

    def __init__(self, proxy, timeout: float, commands=None):
        self._proxy = proxy
        self._timeout = timeout
        self._commands = commands  # intake's CommandSigner (wbs_plumbing.grants)

    def report_status(self, report_id: str, language: str) -> dict | None:
        """{state, history, messages, grant} with reporter labels, or None before the case
        exists. Never staff names, reasons or internal notes (verification filters them).

        Called only for the report of a live reporter session (the follow-up pages resolve the
        session first); intake's signed command, bound to the report, is that proof: without it
        verification hands out no reporter grant."""
        command = self._commands.issue("get_report_status", report_id=report_id) if self._commands else None
        return call_with_deadline(self._proxy.get_report_status, self._timeout, report_id, language,
                                  command=command)

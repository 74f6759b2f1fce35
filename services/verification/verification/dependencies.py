"""DependencyProviders of the verification service, one per outside thing.

* ``Database`` (from wbs_plumbing): the service's own tables and its outbox relay.
* ``VerificationSettings``: the typed config, parsed once per container
  (``wbs_plumbing.config.service_settings``) and shared by every provider here.
* ``PasswordHashing``: Argon2id at the configured cost, off the eventlet hub.
* ``Vault``: storage's content RPCs through plumbing's one client
  (``wbs_plumbing.storage_client.StorageClient``): every call has a deadline, so an inspector's
  page fails with a clear error when storage is away instead of hanging (callers fetch content
  after their database transaction closed); content comes back sealed to this process's
  in-memory transit key. What verification adds is the grant: each read carries one signed
  with verification's Ed25519 key (``wbs_plumbing.grants``) for exactly that read.
* ``GrantSigning``: the same signer, for the reporter's message grant.
* ``Clock``: the current time, settable by tests.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from wbs_plumbing.config import SettingsProvider, service_settings
from wbs_plumbing.grants import GrantSigner
from wbs_plumbing.rpc import RoutedRpcProxy
from wbs_plumbing.storage_client import StorageClient
from wbs_plumbing.transit import TransitKeyPair

from .auth import Passwords
from .settings import Settings


class VerificationSettings(SettingsProvider):
    parse = staticmethod(Settings.from_config)


class PasswordHashing(DependencyProvider):
    def setup(self):
        self.passwords = Passwords(service_settings(self.container, Settings.from_config).password_cost)

    def get_dependency(self, worker_ctx):
        return self.passwords


@dataclass(frozen=True)
class Reader:
    """Who reads (a staff id, ``verification`` for routing, or ``reporter``) and for which case:
    the subject and case of the grant signed for each storage read."""

    sub: str
    case_id: str


class GrantedReads:
    """storage's verbs the console and routing need: the shared client, each read with a grant
    signed here for exactly that read (subject, case, report, scope, message ids)."""

    def __init__(self, client: StorageClient, signer: GrantSigner):
        self._client = client
        self._signer = signer

    def _grant(self, reader: Reader, report_id: str, scope, message_ids=None) -> str:
        return self._signer.issue(sub=reader.sub, case_id=reader.case_id, report_id=report_id,
                                  scope=scope, message_ids=message_ids)

    def read_report_content(self, report_id: str, reader: Reader) -> bytes:
        return self._client.read_report_content(report_id, self._grant(reader, report_id, ["content"]))

    def read_report_parties(self, report_id: str, reader: Reader) -> dict:
        """Only the people the report names (a ``parties`` grant: routing needs no more)."""
        return self._client.read_report_parties(report_id, self._grant(reader, report_id, ["parties"]))

    def list_evidence(self, report_id: str, reader: Reader) -> list[dict]:
        return self._client.list_evidence(report_id, self._grant(reader, report_id, ["evidence"]))

    def read_evidence_chunk(self, report_id: str, evidence_id: str, index: int, reader: Reader) -> dict:
        return self._client.read_evidence_chunk(evidence_id, index, self._grant(reader, report_id, ["evidence"]))

    def read_messages(self, report_id: str, message_ids: list[str], reader: Reader) -> dict[str, str]:
        if not message_ids:
            return {}
        grant = self._grant(reader, report_id, ["messages"], message_ids)
        return {m["message_id"]: m["text"] for m in self._client.read_messages(report_id, message_ids, grant)}

    def store_message(self, report_id: str, message_id: str, text: str) -> None:
        self._client.store_message(report_id, message_id, text)


class Vault(RoutedRpcProxy):
    def __init__(self, **options):
        super().__init__("storage", **options)

    def setup(self):
        super().setup()
        self.timeout = service_settings(self.container, Settings.from_config).storage_timeout_seconds
        self.transit_keys = TransitKeyPair()
        self.signer = GrantSigner.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        client = StorageClient(super().get_dependency(worker_ctx), self.timeout, reader_keys=self.transit_keys)
        return GrantedReads(client, self.signer)


class GrantSigning(DependencyProvider):
    """The grant signer alone (for the reporter's grant in ``get_report_status``)."""

    def setup(self):
        self.signer = GrantSigner.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.signer


class Clock(DependencyProvider):
    """The current time. Tests set ``fixed`` on the provider to move time without sleeping
    (deadline breaches months ahead are checked in milliseconds)."""

    fixed: dt.datetime | None = None

    def get_dependency(self, worker_ctx):
        return self.now

    def now(self) -> dt.datetime:
        return self.fixed or dt.datetime.now(dt.timezone.utc)

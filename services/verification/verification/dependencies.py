"""DependencyProviders of the verification service, one per outside thing.

* ``Database`` (from wbs_plumbing): the service's own tables and its outbox relay.
* ``VerificationSettings``: the parsed, typed config.
* ``PasswordHashing``: Argon2id at the configured cost, off the eventlet hub.
* ``Vault``: storage's content RPCs, with a timeout. nameko's RPC proxy waits for ever; an
  inspector's page must instead fail with a clear error when storage is away, and never hold a
  database transaction while waiting (callers fetch content after their transaction closed).
  Content comes back sealed to this process's in-memory transit key (``wbs_plumbing.transit``),
  so plaintext never sits in a RabbitMQ reply queue.
"""
from __future__ import annotations

import json

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy

from wbs_plumbing.transit import TransitKeyPair

from .auth import Passwords
from .settings import Settings


class VaultUnavailable(Exception):
    """storage did not answer in time."""


class VerificationSettings(DependencyProvider):
    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


class PasswordHashing(DependencyProvider):
    def setup(self):
        self.passwords = Passwords(Settings.from_config(self.container.config).password_cost)

    def get_dependency(self, worker_ctx):
        return self.passwords


class _VaultClient:
    """The three storage verbs the console needs; ``reader`` is who reads, for storage's audit."""

    def __init__(self, proxy, timeout: float, keys: TransitKeyPair):
        self._proxy = proxy
        self._timeout = timeout
        self._keys = keys

    def _call(self, method: str, *args):
        reply = getattr(self._proxy, method).call_async(*args, reader_key=self._keys.public_key)
        try:
            with eventlet.Timeout(self._timeout):
                return reply.result()
        except eventlet.Timeout:
            raise VaultUnavailable(method) from None

    def _open(self, answer: dict, context: str) -> bytes:
        return self._keys.receiver(bytes(answer["sender_key"]), context).open(bytes(answer["sealed"]))

    def read_report_content(self, report_id: str, reader: dict) -> bytes:
        return self._open(self._call("read_report_content", report_id, reader), report_id)

    def list_evidence(self, report_id: str, reader: dict) -> list[dict]:
        return json.loads(self._open(self._call("list_evidence", report_id, reader), report_id))

    def read_evidence_chunk(self, evidence_id: str, index: int, reader: dict) -> dict:
        answer = self._call("read_evidence_chunk", evidence_id, index, reader)
        return {"data": self._open(answer, f"{evidence_id}:{index}"), "last": answer["last"]}


class Vault(RpcProxy):
    def __init__(self, **options):
        super().__init__("storage", **options)

    def setup(self):
        super().setup()
        self.timeout = Settings.from_config(self.container.config).storage_timeout_seconds
        self.transit_keys = TransitKeyPair()

    def get_dependency(self, worker_ctx):
        return _VaultClient(super().get_dependency(worker_ctx), self.timeout, self.transit_keys)

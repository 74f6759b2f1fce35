"""DependencyProviders of the verification service, one per outside thing.

* ``Database`` (from wbs_plumbing): the service's own tables and its outbox relay.
* ``VerificationSettings``: the parsed, typed config.
* ``PasswordHashing``: Argon2id at the configured cost, off the eventlet hub.
* ``Vault``: storage's content RPCs, with a timeout. nameko's RPC proxy waits for ever; an
  inspector's page must instead fail with a clear error when storage is away, and never hold a
  database transaction while waiting (callers fetch content after their transaction closed).
  Content comes back sealed to this process's in-memory transit key (``wbs_plumbing.transit``),
  so plaintext never sits in a RabbitMQ reply queue. Each read carries a grant signed with
  verification's Ed25519 key (``wbs_plumbing.grants``): storage serves only what a grant covers.
* ``GrantSigning``: the same signer, for the reporter's message grant.
* ``Clock``: the current time, settable by tests.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import eventlet
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider

from wbs_plumbing.grants import GrantSigner
from wbs_plumbing.rpc import RoutedRpcProxy
from wbs_plumbing.transit import TransitKeyPair, TransitSender

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


@dataclass(frozen=True)
class Reader:
    """Who reads (a staff id, ``verification`` for routing, or ``reporter``) and for which case:
    the subject and case of the grant signed for each storage read."""

    sub: str
    case_id: str


class _VaultClient:
    """storage's verbs the console needs. Every read carries a grant signed here for exactly
    that read (subject, case, report, scope); content comes back sealed to this process."""

    def __init__(self, proxy, timeout: float, keys: TransitKeyPair, signer: GrantSigner):
        self._proxy = proxy
        self._timeout = timeout
        self._keys = keys
        self._signer = signer

    def grant(self, reader: Reader, report_id: str, scope, message_ids=None) -> str:
        return self._signer.issue(sub=reader.sub, case_id=reader.case_id, report_id=report_id,
                                  scope=scope, message_ids=message_ids)

    def _wait(self, reply, method: str):
        try:
            with eventlet.Timeout(self._timeout):
                return reply.result()
        except eventlet.Timeout:
            raise VaultUnavailable(method) from None

    def _call(self, method: str, *args):
        try:
            reply = getattr(self._proxy, method).call_async(*args, reader_key=self._keys.public_key)
        except UnknownService:
            # storage has not declared its queue yet (e.g. still starting): as good as down.
            raise VaultUnavailable(method) from None
        return self._wait(reply, method)

    def _open(self, answer: dict, context: str) -> bytes:
        return self._keys.receiver(bytes(answer["sender_key"]), context).open(bytes(answer["sealed"]))

    def read_report_content(self, report_id: str, reader: Reader) -> bytes:
        grant = self.grant(reader, report_id, ["content"])
        return self._open(self._call("read_report_content", report_id, grant), report_id)

    def list_evidence(self, report_id: str, reader: Reader) -> list[dict]:
        grant = self.grant(reader, report_id, ["evidence"])
        return json.loads(self._open(self._call("list_evidence", report_id, grant), report_id))

    def read_evidence_chunk(self, report_id: str, evidence_id: str, index: int, reader: Reader) -> dict:
        grant = self.grant(reader, report_id, ["evidence"])
        answer = self._call("read_evidence_chunk", evidence_id, index, grant)
        return {"data": self._open(answer, f"{evidence_id}:{index}"), "last": answer["last"]}

    def read_messages(self, report_id: str, message_ids: list[str], reader: Reader) -> dict[str, str]:
        if not message_ids:
            return {}
        grant = self.grant(reader, report_id, ["messages"], message_ids)
        items = json.loads(self._open(self._call("read_messages", report_id, list(message_ids), grant), report_id))
        return {item["message_id"]: item["text"] for item in items}

    def store_message(self, report_id: str, message_id: str, text: str) -> None:
        """Hand a message's text to storage sealed to one storage instance's transit key (the
        same way intake hands over report content), then that instance stores it encrypted."""
        opened = self._wait(self._proxy.open_transit.call_async(), "open_transit")
        sender = TransitSender(bytes(opened["transit_key"]), report_id)
        target = self._proxy.route(opened["route"]).store_message
        self._wait(target.call_async(report_id, message_id, sender.seal(text.encode("utf-8")),
                                     sender_key=sender.public_key), "store_message")


class Vault(RoutedRpcProxy):
    def __init__(self, **options):
        super().__init__("storage", **options)

    def setup(self):
        super().setup()
        self.timeout = Settings.from_config(self.container.config).storage_timeout_seconds
        self.transit_keys = TransitKeyPair()
        self.signer = GrantSigner.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return _VaultClient(super().get_dependency(worker_ctx), self.timeout, self.transit_keys, self.signer)


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

"""Intake's DependencyProviders: its settings, the unit directory, and the vault adapter.

Each hands workers a small object with domain verbs, never a raw client.
"""

from __future__ import annotations

import json
import logging
import time

import eventlet
from nameko.exceptions import MethodNotFound, RemoteError, UnknownService
from nameko.extensions import DependencyProvider

from wbs_plumbing.transit import TransitKeyPair, TransitSender

from intake.errors import Unavailable
from intake.settings import Settings

log = logging.getLogger(__name__)


class IntakeSettings(DependencyProvider):
    """Parses the config once at container setup; refuses to start on unsafe config."""

    def setup(self):
        self.settings = Settings.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.settings


def _call(method, timeout: float, *args):
    """An RPC with a deadline: a dead peer answers 503 instead of hanging the reporter."""
    try:
        with eventlet.Timeout(timeout):
            return method.call_async(*args).result()
    except eventlet.Timeout:
        raise Unavailable("timeout") from None
    except (UnknownService, MethodNotFound):
        # the peer is an older version without this method (a rolling upgrade): same as down
        raise Unavailable("unknown_service") from None
    except RemoteError as exc:
        # the peer failed; its reason stays in its own logs (it may name internals)
        log.warning("RPC %s failed remotely: %s", getattr(method, "identifier", "?"), exc.exc_type)
        raise Unavailable("remote_error") from None


class UnitDirectory(DependencyProvider):
    """The units verification knows (`verification.list_units()`), cached briefly.

    Why cache: every submission and every page view needs the list, and it changes rarely (an
    administrator adds a unit). Why briefly: a new unit should be reportable within a minute.
    If verification is unreachable, a stale list is better than refusing a reporter; with no
    list at all, submissions answer 503.
    """

    def __init__(self, rpc_attribute: str = "verification"):
        self.rpc_attribute = rpc_attribute
        self._units: list[dict] | None = None
        self._fetched = 0.0

    def setup(self):
        config = self.container.config
        self.ttl = float(config.get("INTAKE_UNITS_CACHE_SECONDS") or 30)
        self.timeout = min(float(config.get("INTAKE_RPC_TIMEOUT_SECONDS") or 30), 10.0)

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
            units = _call(proxy.list_units, p.timeout)
        except Unavailable:
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


class Vault:
    """storage's intake-facing verbs over RPC, each with a deadline, with content sealed in transit.

    Why sealed: intake and storage talk only through RabbitMQ, whose queues are persistent and
    may page to disk; report content, file names and evidence must not lie there in plaintext
    (DOMAIN.md: "never ... in a queue ... in plaintext"). For each report, intake asks one storage
    instance for its in-memory transit key (`open_transit`), makes a `TransitSender` (ephemeral
    X25519 + HKDF + AES-GCM, context = the report id, increasing counters) and sends every
    content-bearing call to that instance's route (wbs_plumbing.transit, storage/README.md).
    The same instance then holds the upload's encryptor and running hash, so the chunks go there
    too. There is no plaintext mode on this side.
    """

    def __init__(self, proxy, timeout: float):
        self._proxy = proxy
        self._timeout = timeout
        self._channels: dict[str, tuple[str, TransitSender]] = {}
        self._upload_senders: dict[str, TransitSender] = {}

    def _channel(self, report_id: str) -> tuple[str, TransitSender]:
        if report_id not in self._channels:
            opened = _call(self._proxy.open_transit, self._timeout)
            self._channels[report_id] = (opened["route"],
                                         TransitSender(bytes(opened["transit_key"]), report_id))
        return self._channels[report_id]

    def begin_evidence(self, report_id: str, filename: str, media_type: str) -> dict:
        route, sender = self._channel(report_id)
        upload = _call(self._proxy.route(route).begin_evidence, self._timeout, report_id,
                       sender.seal(filename.encode("utf-8")), sender.seal(media_type.encode("utf-8")),
                       sender.public_key)
        self._upload_senders[upload["upload_id"]] = sender
        return upload

    def append_evidence(self, route: str, upload_id: str, chunk: bytes) -> None:
        sender = self._upload_senders[upload_id]
        _call(self._proxy.route(route).append_evidence, self._timeout, upload_id, sender.seal(chunk))

    def finish_evidence(self, route: str, upload_id: str) -> dict:
        return _call(self._proxy.route(route).finish_evidence, self._timeout, upload_id)

    def abort_evidence(self, route: str, upload_id: str) -> None:
        _call(self._proxy.route(route).abort_evidence, self._timeout, upload_id)

    def store_report_content(self, report_id: str, content: bytes) -> None:
        route, sender = self._channel(report_id)
        _call(self._proxy.route(route).store_report_content, self._timeout, report_id,
              sender.seal(content), sender.public_key)

    def store_message(self, report_id: str, message_id: str, text: str) -> None:
        """The reporter's message, sealed in transit like report content (storage keeps it
        encrypted under the report's data key; idempotent per message id)."""
        route, sender = self._channel(report_id)
        _call(self._proxy.route(route).store_message, self._timeout, report_id, message_id,
              sender.seal(text.encode("utf-8")), sender.public_key)

    def read_messages(self, report_id: str, message_ids: list[str], grant: str) -> list[dict]:
        """Message texts, read with verification's reporter grant and sealed back to a key pair
        made for this one read (context: the report id), so no text crosses the broker in clear.
        Returns [{"message_id", "text"}] in the order asked."""
        keypair = TransitKeyPair()
        answer = _call(self._proxy.read_messages, self._timeout, report_id, list(message_ids),
                       grant, keypair.public_key)
        if isinstance(answer, dict) and "sealed" in answer:
            raw = keypair.receiver(bytes(answer["sender_key"]), report_id).open(bytes(answer["sealed"]))
            answer = json.loads(raw.decode("utf-8"))
        return [{"message_id": str(m["message_id"]), "text": str(m["text"])} for m in answer or []]

    def discard_report(self, report_id: str) -> None:
        # plain @rpc: any instance can shred, even if the one we talked to is gone
        _call(self._proxy.discard_report, self._timeout, report_id)


class Casework:
    """verification's answers about a report's case, for the reporter's follow-up."""

    def __init__(self, proxy, timeout: float):
        self._proxy = proxy
        self._timeout = timeout

    def report_status(self, report_id: str, language: str) -> dict | None:
        """{state, history, messages, grant} with reporter labels, or None before the case
        exists. Never staff names, reasons or internal notes (verification filters them)."""
        return _call(self._proxy.get_report_status, self._timeout, report_id, language)

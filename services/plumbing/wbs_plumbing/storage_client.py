"""The one client of storage's RPCs, used by intake (the reporter's side) and verification
(the inspectors' side).

Every call has a deadline (:mod:`wbs_plumbing.deadline`). Content never crosses RabbitMQ in
plaintext, whose queues are persistent and may page to disk:

* going in (report content, file names, evidence chunks, messages), the client asks one storage
  instance for its in-memory transit key (``open_transit``, once per process while that instance
  lives), seals with a
  :class:`~wbs_plumbing.transit.TransitSender` (context: the report id) and sends every
  content-bearing call to that instance's own route, which also holds an upload's encryptor;
* coming out (content, the evidence list, chunks, messages), storage seals its answer to the
  reader's transit key; a client made without one uses a fresh key pair per read.

Reads carry a grant the caller signed (only verification holds the signing key); this client
passes it through and never makes one. The verbs and their arguments are storage's ``@rpc``
and ``@instance_rpc`` entrypoints (storage/service.py); a test holds the shared test fake to
the same signatures.
"""
from __future__ import annotations

import json

from wbs_plumbing.deadline import Unavailable, call_with_deadline
from wbs_plumbing.transit import TransitKeyPair, TransitSender


class StorageClient:
    """Per worker: ``StorageClient(proxy, timeout)`` where ``proxy`` is a ``RoutedRpcProxy("storage")``
    dependency (``proxy.route(route)`` reaches one instance)."""

    def __init__(self, proxy, timeout: float, reader_keys: TransitKeyPair | None = None,
                 commands=None):
        self._proxy = proxy
        self._commands = commands  # the caller's CommandSigner (wbs_plumbing.grants), for discards
        self._timeout = timeout
        self._reader_keys = reader_keys
        self._channels: dict[str, tuple[str, TransitSender]] = {}
        self._upload_senders: dict[str, TransitSender] = {}

    def _call(self, method, *args, **kwargs):
        return call_with_deadline(method, self._timeout, *args, **kwargs)

    def _channel(self, report_id: str) -> tuple[str, TransitSender]:
        """One instance and one sender per report for this worker's calls.

        The instance's route and transit key are kept for the life of this process
        (``_instance``): they hold as long as that storage process lives, and asking for them
        for every report was one RPC in five of a submission.
        """
        if report_id not in self._channels:
            route, transit_key = self._instance()
            self._channels[report_id] = (route, TransitSender(transit_key, report_id))
        return self._channels[report_id]

    _instances: dict[str, tuple[str, bytes]] = {}  # service name -> (route, transit key), per process

    def _instance(self) -> tuple[str, bytes]:
        known = self._instances.get(self._proxy.service_name)
        if known is None:
            opened = self._call(self._proxy.open_transit)
            known = self._instances[self._proxy.service_name] = (opened["route"], bytes(opened["transit_key"]))
        return known

    def _to_instance(self, report_id: str, method: str, *args) -> object:
        """Call ``method`` on this report's instance with ``(*sealed args, sender public key)``.

        The sealed ``args`` are made by ``args`` given as callables of the sender. If the
        instance is gone (its route is unroutable: the broker returned the call, so nothing
        happened), forget it and try once more on a live one.
        """
        def call():
            route, sender = self._channel(report_id)
            return self._call(getattr(self._proxy.route(route), method),
                              *[a(sender) if callable(a) else a for a in args], sender.public_key)
        try:
            return call()
        except Unavailable as exc:
            if exc.reason != "unknown_service":
                raise
        self._instances.pop(self._proxy.service_name, None)
        self._channels.pop(report_id, None)
        return call()

    def _read(self, method: str, context: str, *args):
        """Call a read RPC with a reader key and open the sealed answer: (answer, plaintext)."""
        keys = self._reader_keys or TransitKeyPair()
        answer = self._call(getattr(self._proxy, method), *args, reader_key=keys.public_key)
        return answer, keys.receiver(bytes(answer["sender_key"]), context).open(bytes(answer["sealed"]))

    # -- writing (intake, and verification's messages) ---------------------------------------

    def begin_evidence(self, report_id: str, filename: str, media_type: str) -> dict:
        upload = self._to_instance(report_id, "begin_evidence", report_id,
                                   lambda s: s.seal(filename.encode("utf-8")),
                                   lambda s: s.seal(media_type.encode("utf-8")))
        self._upload_senders[upload["upload_id"]] = self._channels[report_id][1]
        return upload

    def append_evidence(self, route: str, upload_id: str, chunk: bytes) -> None:
        sender = self._upload_senders[upload_id]
        self._call(self._proxy.route(route).append_evidence, upload_id, sender.seal(chunk))

    def finish_evidence(self, route: str, upload_id: str) -> dict:
        return self._call(self._proxy.route(route).finish_evidence, upload_id)

    def abort_evidence(self, route: str, upload_id: str) -> None:
        self._call(self._proxy.route(route).abort_evidence, upload_id)

    def store_report_content(self, report_id: str, content: bytes) -> None:
        self._to_instance(report_id, "store_report_content", report_id, lambda s: s.seal(content))

    def store_report(self, report_id: str, content: bytes, files: list[dict]) -> list[dict]:
        """A new report at once: content and files (``filename``, ``media_type``, ``data``,
        each at most one chunk). Returns ``[{"evidence_id", "size_bytes", "sha256"}]``."""
        def sealed_files(sender):
            return [{"filename": sender.seal(f["filename"].encode("utf-8")),
                     "media_type": sender.seal(f["media_type"].encode("utf-8")),
                     "data": sender.seal(f["data"])} for f in files]
        return self._to_instance(report_id, "store_report", report_id, lambda s: s.seal(content), sealed_files)

    def store_message(self, report_id: str, message_id: str, text: str) -> None:
        """A message's text (reporter's or inspector's); storage keeps it encrypted under the
        report's data key, idempotent per message id."""
        self._to_instance(report_id, "store_message", report_id, message_id,
                          lambda s: s.seal(text.encode("utf-8")))

    def discard_report(self, report_id: str) -> None:
        """Shred a report that was not accepted (plain @rpc: any instance can, even if the one
        the upload talked to is gone)."""
        command = self._commands.issue("discard_report", report_id=report_id) if self._commands else None
        self._call(self._proxy.discard_report, report_id, command=command)

    # -- reading (with a grant) ----------------------------------------------------------------

    def read_report_content(self, report_id: str, grant: str) -> bytes:
        return self._read("read_report_content", report_id, report_id, grant)[1]

    def read_report_parties(self, report_id: str, grant: str) -> dict:
        """``{"format", "parties", "valid"}``: only the people the report names."""
        return json.loads(self._read("read_report_parties", report_id, report_id, grant)[1])

    def list_evidence(self, report_id: str, grant: str) -> list[dict]:
        return json.loads(self._read("list_evidence", report_id, report_id, grant)[1])

    def read_evidence_chunk(self, evidence_id: str, index: int, grant: str) -> dict:
        answer, data = self._read("read_evidence_chunk", f"{evidence_id}:{index}",
                                  evidence_id, index, grant)
        return {"data": data, "last": answer["last"]}

    def read_messages(self, report_id: str, message_ids: list[str], grant: str) -> list[dict]:
        """``[{"message_id", "text"}]`` in the order asked."""
        if not message_ids:
            return []
        items = json.loads(self._read("read_messages", report_id, report_id, list(message_ids), grant)[1])
        return [{"message_id": str(m["message_id"]), "text": str(m["text"])} for m in items]

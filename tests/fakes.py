"""One fake of the storage service for every test that runs intake or verification without the
real vault: a real nameko service on the test's broker, so the callers' RPC (the sticky
per-instance route, sealed transit, grants, deadlines) runs for real.

It serves the same entrypoints as storage, with the same names, arguments and defaults, under
the same decorators (``@rpc`` and/or ``@instance_rpc``); tests/test_fakes_match_storage.py
fails when they differ, or when the one storage client (wbs_plumbing.storage_client) calls
anything the fake does not serve. What it keeps lives in ``VAULT`` (a `FakeVault`), which a
test resets and inspects: what was stored (as storage opened it), every call, every sealed
value as it crossed the broker, the reads with the grant's subject and case.

Like storage it refuses plaintext on the wire (a content-bearing call without ``sender_key``)
and any read whose grant does not verify with ``VAULT.grant_verifier`` (raising ``Forbidden``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import uuid

from wbs_plumbing.queues import rpc  # the quorum rpc-<service> storage itself declares

from wbs_contracts.errors import Forbidden
from wbs_plumbing.grants import GrantError
from wbs_plumbing.rpc import InstanceRoute, instance_rpc
from wbs_plumbing.transit import TransitKeyPair, TransitSender


class FakeVault:
    """The fake's memory. `reset()` empties it in place, so names bound to its parts stay valid."""

    def __init__(self):
        self.transit = TransitKeyPair()
        self.calls: list[tuple] = []
        self.uploads: dict[str, dict] = {}
        self.content: dict[str, bytes] = {}  # report_id -> report content as storage opened it
        self.messages: dict[tuple[str, str], str] = {}  # (report_id, message_id) -> text
        self.evidence: dict[str, dict] = {}  # evidence_id -> {report_id, data, filename, media_type}
        self.wire: list[bytes] = []  # every sealed argument as it crossed RabbitMQ
        self.reads: list[tuple] = []  # (what, id..., {"sub", "case_id"}) per granted read
        self.fail: dict[str, bool] = {}  # method name -> raise instead of storing
        self.altered: set[str] = set()  # evidence ids whose chunks come back altered
        self.default_content: bytes | None = None  # read_report_content of an unknown report
        self.grant_verifier = None
        self.chunk_bytes = 1024 * 1024
        self._receivers: dict = {}

    def reset(self) -> None:
        for part in (self.calls, self.uploads, self.content, self.messages, self.evidence,
                     self.wire, self.reads, self.fail, self.altered, self._receivers):
            part.clear()
        self.default_content = None

    def put_report(self, report_id: str, content: dict) -> None:
        self.content[report_id] = json.dumps(content).encode("utf-8")

    def open(self, report_id: str, sender_key, sealed) -> bytes:
        """Unseal what a caller sealed in transit for this fake (context: the report id)."""
        assert sender_key is not None, "plaintext content on the wire"
        self.wire.append(bytes(sealed))
        key = (report_id, bytes(sender_key))
        if key not in self._receivers:
            self._receivers[key] = self.transit.receiver(bytes(sender_key), report_id)
        return self._receivers[key].open(bytes(sealed))

    def check(self, grant, report_id: str, scope: str, message_id: str | None = None) -> dict:
        try:
            claims = self.grant_verifier.check(grant, report_id=report_id, scope=scope,
                                               message_id=message_id)
        except GrantError:
            raise Forbidden("grant refused") from None
        return {"sub": claims["sub"], "case_id": claims["case_id"]}

    def failing(self, method: str) -> None:
        if self.fail.get(method):
            raise RuntimeError(f"{method}: the vault is sealed shut")


VAULT = FakeVault()
EXPECTED = (Forbidden,)


def _granted_content(report_id, grant, scope: str) -> bytes:
    """A report's stored content for a ``scope`` read the grant allows (the read is noted)."""
    VAULT.reads.append((scope, report_id, VAULT.check(grant, report_id, scope)))
    content = VAULT.content.get(report_id, VAULT.default_content)
    if content is None:
        from wbs_contracts.errors import NotFound
        raise NotFound("no such report")
    return content


def sealed_for(reader_key, context: str, data: bytes) -> dict:
    """What storage answers a read: ``data`` sealed to the reader's transit key."""
    assert reader_key is not None, "plaintext answer on the wire"
    sender = TransitSender(bytes(reader_key), context)
    sealed = sender.seal(data)
    VAULT.wire.append(sealed)
    return {"sender_key": sender.public_key, "sealed": sealed}


def _report_of_grant(grant) -> str:
    """The report a grant names (unverified: the check that follows verifies it)."""
    try:
        return json.loads(base64.urlsafe_b64decode(grant.split(".")[0] + "==="))["report_id"]
    except (AttributeError, ValueError, KeyError, TypeError):
        raise Forbidden("grant refused") from None


class FakeStorage:
    name = "storage"
    route = InstanceRoute()

    @rpc(expected_exceptions=EXPECTED)
    def open_transit(self):
        VAULT.calls.append(("open_transit",))
        return {"route": self.route, "transit_key": VAULT.transit.public_key}

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def begin_evidence(self, report_id, filename, media_type, sender_key=None):
        filename = VAULT.open(report_id, sender_key, filename).decode()
        media_type = VAULT.open(report_id, sender_key, media_type).decode()
        upload_id = uuid.uuid4().hex
        VAULT.uploads[upload_id] = {"report_id": report_id, "filename": filename,
                                    "sender_key": sender_key, "media_type": media_type,
                                    "data": bytearray(), "chunks": [], "finished": False,
                                    "aborted": False}
        VAULT.calls.append(("begin_evidence", report_id, filename, media_type))
        return {"upload_id": upload_id, "route": self.route, "transit_key": VAULT.transit.public_key}

    @instance_rpc(expected_exceptions=EXPECTED)
    def append_evidence(self, upload_id, chunk):
        assert isinstance(chunk, bytes)
        upload = VAULT.uploads[upload_id]
        plain = VAULT.open(upload["report_id"], upload["sender_key"], chunk)
        upload["data"] += plain
        upload["chunks"].append(len(plain))
        VAULT.calls.append(("append_evidence", upload_id, len(plain)))

    @instance_rpc(expected_exceptions=EXPECTED)
    def finish_evidence(self, upload_id):
        upload = VAULT.uploads[upload_id]
        upload["finished"] = True
        VAULT.calls.append(("finish_evidence", upload_id))
        evidence_id = str(uuid.uuid4())
        data = bytes(upload["data"])
        VAULT.evidence[evidence_id] = {"report_id": upload["report_id"], "data": data,
                                       "filename": upload["filename"],
                                       "media_type": upload["media_type"]}
        return {"evidence_id": evidence_id, "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}

    @instance_rpc(expected_exceptions=EXPECTED)
    def abort_evidence(self, upload_id):
        if upload_id in VAULT.uploads:
            VAULT.uploads[upload_id]["aborted"] = True
        VAULT.calls.append(("abort_evidence", upload_id))

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_report_content(self, report_id, content, sender_key=None):
        VAULT.calls.append(("store_report_content", report_id))
        VAULT.failing("store_report_content")
        VAULT.content[report_id] = VAULT.open(report_id, sender_key, content)

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_report(self, report_id, content, files, sender_key=None):
        """As storage: content and small files at once. Each file is also kept as a finished
        upload in ``VAULT.uploads``, so a test reads evidence the same whichever way it came."""
        VAULT.calls.append(("store_report", report_id, len(files)))
        VAULT.failing("store_report")
        VAULT.content[report_id] = VAULT.open(report_id, sender_key, content)
        results = []
        for item in files:
            filename = VAULT.open(report_id, sender_key, item["filename"]).decode()
            media_type = VAULT.open(report_id, sender_key, item["media_type"]).decode()
            data = VAULT.open(report_id, sender_key, item["data"])
            evidence_id = str(uuid.uuid4())
            VAULT.uploads[uuid.uuid4().hex] = {"report_id": report_id, "filename": filename,
                                               "sender_key": sender_key, "media_type": media_type,
                                               "data": bytearray(data), "chunks": [len(data)],
                                               "finished": True, "aborted": False}
            VAULT.evidence[evidence_id] = {"report_id": report_id, "data": data,
                                           "filename": filename, "media_type": media_type}
            results.append({"evidence_id": evidence_id, "size_bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
        return results

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def discard_report(self, report_id, command=None):
        VAULT.calls.append(("discard_report", report_id))
        VAULT.content.pop(report_id, None)

    @rpc(expected_exceptions=EXPECTED)
    def read_report_content(self, report_id, grant, reader_key=None):
        return sealed_for(reader_key, report_id, _granted_content(report_id, grant, "content"))

    @rpc(expected_exceptions=EXPECTED)
    def read_report_parties(self, report_id, grant, reader_key=None):
        from wbs_contracts.report_content import parties_view
        view = parties_view(_granted_content(report_id, grant, "parties"))
        return sealed_for(reader_key, report_id, json.dumps(view).encode("utf-8"))

    @rpc(expected_exceptions=EXPECTED)
    def list_evidence(self, report_id, grant, reader_key=None):
        who = VAULT.check(grant, report_id, "evidence")
        VAULT.reads.append(("list", report_id, who))
        listing = [{"evidence_id": eid, "size_bytes": len(e["data"]),
                    "sha256": hashlib.sha256(e["data"]).hexdigest(), "filename": e["filename"],
                    "media_type": e["media_type"]}
                   for eid, e in VAULT.evidence.items() if e["report_id"] in (None, report_id)]
        return sealed_for(reader_key, report_id, json.dumps(listing).encode())

    @rpc(expected_exceptions=EXPECTED)
    def read_evidence_chunk(self, evidence_id, index, grant, reader_key=None):
        entry = VAULT.evidence[evidence_id]
        who = VAULT.check(grant, entry["report_id"] or _report_of_grant(grant), "evidence")
        VAULT.reads.append(("chunk", evidence_id, index, who))
        size = VAULT.chunk_bytes
        piece = entry["data"][index * size:(index + 1) * size]
        if evidence_id in VAULT.altered:
            piece = piece.lower()
        return {**sealed_for(reader_key, f"{evidence_id}:{index}", piece),
                "last": (index + 1) * size >= len(entry["data"])}

    @rpc(expected_exceptions=EXPECTED)
    @instance_rpc(expected_exceptions=EXPECTED)
    def store_message(self, report_id, message_id, text, sender_key=None):
        plain = VAULT.open(report_id, sender_key, text)
        assert len(plain) <= 64 * 1024
        VAULT.calls.append(("store_message", report_id, message_id))
        VAULT.messages.setdefault((report_id, message_id), plain.decode("utf-8"))

    @rpc(expected_exceptions=EXPECTED)
    def read_messages(self, report_id, message_ids, grant, reader_key=None):
        for message_id in message_ids:
            VAULT.check(grant, report_id, "messages", message_id)
        VAULT.calls.append(("read_messages", report_id, tuple(message_ids)))
        VAULT.reads.append(("messages", report_id, tuple(message_ids)))
        items = [{"message_id": m, "text": VAULT.messages[(report_id, m)]} for m in message_ids]
        return sealed_for(reader_key, report_id, json.dumps(items).encode())

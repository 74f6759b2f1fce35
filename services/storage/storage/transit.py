"""Storage's side of sealed transit (``wbs_plumbing.transit``): content never crosses RabbitMQ
in plaintext.

RabbitMQ queues are persistent and may page to disk, so report content, evidence bytes and file
names travel sealed when the caller opts in (plain calls keep working for tests and tools):

* **into the vault** (intake): this process holds an X25519 key pair in memory only
  (:class:`TransitChannels`); ``open_transit`` / ``begin_evidence`` hand out its public half with
  the process's sticky route. The sender seals with one ephemeral key per report (context = the
  report id) and names its public key (``sender_key``) on each sealed call. Receivers are kept per
  (report, sender key), so the increasing counter in every message refuses replays and reordering.
* **out of the vault** (verification): the reader passes its own public key (``reader_key``);
  :func:`seal_for_reader` seals the answer to it under a fresh ephemeral key, with a context that
  names exactly what was read (report id, or evidence id and chunk index), so one answer cannot be
  passed off as another.

When this process exits its private key is gone: no copy of the queue traffic can ever be opened
(forward secrecy against a broker disk image). A sealed message that does not open is refused
with ``Invalid`` and a message that says nothing about its content.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from wbs_contracts.errors import Invalid
from wbs_plumbing.transit import TransitError, TransitKeyPair, TransitSender

KEY_SIZE = 32
SEAL_OVERHEAD = 8 + 16  # counter + GCM tag


def _check_key(value, field_name: str) -> bytes:
    if isinstance(value, (bytes, bytearray)) and len(value) == KEY_SIZE:
        return bytes(value)
    raise Invalid(f"{field_name} must be a 32-byte X25519 public key")


class TransitChannels:
    """This process's transit key pair and the receivers of the senders talking to it."""

    def __init__(self, idle_seconds: float = 3600.0, max_channels: int = 100_000,
                 required: bool = False):
        self._keypair = TransitKeyPair()
        self.required = required  # REQUIRE_SEALED_TRANSIT: refuse plaintext content
        self.public_key = self._keypair.public_key
        self.idle_seconds = idle_seconds
        self.max_channels = max_channels
        self._channels: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self):
        return f"TransitChannels({len(self._channels)} channel(s))"

    def open(self, context: str, sender_key, sealed) -> bytes:
        """Open one sealed message of the sender ``sender_key`` about ``context``."""
        sender_key = _check_key(sender_key, "sender_key")
        if not isinstance(sealed, (bytes, bytearray)):
            raise Invalid("sealed value must be bytes")
        with self._lock:
            entry = self._channels.get((context, sender_key))
            if entry is None:
                try:
                    channel = self._keypair.receiver(sender_key, context)
                except TransitError:
                    raise Invalid("sealed transit failed: malformed sender key") from None
                entry = [channel, 0.0]
                self._channels[(context, sender_key)] = entry
                while len(self._channels) > self.max_channels:
                    self._channels.popitem(last=False)
            self._channels.move_to_end((context, sender_key))
            entry[1] = time.monotonic()
            try:
                return entry[0].open(bytes(sealed))
            except TransitError as exc:
                raise Invalid(f"sealed transit failed ({exc})") from None

    def reap(self, now: float | None = None) -> int:
        """Forget senders idle for ``idle_seconds``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [k for k, (_c, used) in self._channels.items()
                     if now - used >= self.idle_seconds]
            for key in stale:
                del self._channels[key]
        return len(stale)


def seal_for_reader(reader_key, context: str, plaintext: bytes) -> dict:
    """Seal an answer to the reader's public key: ``{"sender_key", "sealed"}``."""
    reader_key = _check_key(reader_key, "reader_key")
    try:
        sender = TransitSender(reader_key, context)
    except ValueError:
        raise Invalid("reader_key is not a valid X25519 public key") from None
    return {"sender_key": sender.public_key, "sealed": sender.seal(plaintext)}

"""Sealed transit: report content and evidence cross RabbitMQ encrypted, never in plaintext.

intake must hand plaintext to storage, and their only channel is RabbitMQ, whose queues are
persistent and may page messages to disk. So the two seal every payload that carries content:

* each storage process makes an X25519 key pair at start and keeps it in memory only; `@rpc`
  answers hand out its public half together with the process's sticky route;
* for each report, intake makes an ephemeral X25519 key pair, derives an AES-256-GCM key with
  HKDF-SHA256 (the report id is in the HKDF info and in every message's associated data), and
  sends its ephemeral public key along with the first sealed message;
* every sealed message carries an 8-byte counter used as the nonce; the receiver refuses a
  counter that does not increase, so a captured message cannot be replayed into another upload.

Nothing here is stored: when the storage process exits, no key exists that could open a copy of
the queue traffic (forward secrecy against a broker disk image).
"""
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"wbs-transit-v1:"
_RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


class TransitError(Exception):
    """A sealed message failed to open: tampered, replayed, reordered or for another report."""


def _derive(private: X25519PrivateKey, peer_public: bytes, context: str) -> AESGCM:
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + context.encode()).derive(shared)
    return AESGCM(key)


class _Channel:
    def __init__(self, aead: AESGCM, context: str):
        self._aead, self._aad = aead, context.encode()
        self._counter = 0

    def seal(self, data: bytes) -> bytes:
        self._counter += 1
        prefix = struct.pack(">Q", self._counter)
        return prefix + self._aead.encrypt(b"\0\0\0\0" + prefix, bytes(data), self._aad)

    def open(self, sealed: bytes) -> bytes:
        if len(sealed) < 8 + 16:
            raise TransitError("sealed message too short")
        (counter,) = struct.unpack(">Q", sealed[:8])
        if counter <= self._counter:
            raise TransitError("sealed message replayed or out of order")
        try:
            plaintext = self._aead.decrypt(b"\0\0\0\0" + sealed[:8], sealed[8:], self._aad)
        except InvalidTag:
            raise TransitError("sealed message failed authentication") from None
        self._counter = counter
        return plaintext


class TransitSender(_Channel):
    """intake's side: one per report and storage process. `public_key` goes with the first call."""

    def __init__(self, recipient_public: bytes, context: str):
        ephemeral = X25519PrivateKey.generate()
        self.public_key = ephemeral.public_key().public_bytes(**_RAW)
        super().__init__(_derive(ephemeral, recipient_public, context), context)


class TransitKeyPair:
    """storage's side: one per process, in memory only."""

    def __init__(self):
        self._private = X25519PrivateKey.generate()
        self.public_key = self._private.public_key().public_bytes(**_RAW)

    def receiver(self, sender_public: bytes, context: str) -> _Channel:
        try:
            return _Channel(_derive(self._private, sender_public, context), context)
        except ValueError:
            raise TransitError("malformed sender key") from None

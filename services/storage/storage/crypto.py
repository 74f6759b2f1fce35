"""Envelope encryption for the vault: the one place in the system that touches key material.

Why one module of some 650 lines (much of it this explanation): a security review of the key
hierarchy and every stored format should need to read exactly one file.

Why envelope encryption
-----------------------
Every report gets its own random 256-bit *data key*. Everything stored for the report (the sealed
report content, every evidence file, the evidence file names) is encrypted under that data key.
The data key itself is stored only *wrapped*: encrypted with AES-256-GCM under a *key-encryption
key* (KEK) that lives outside the database, in the key file (``WBS_KEY_FILE``). This gives:

* **crypto-shredding** -- deleting one database row (the wrapped data key) makes every object of
  the report unreadable, including copies in backups of the object store;
* **rotation without re-encryption** -- a new KEK only means re-wrapping 32-byte data keys
  (``KeyRing.rewrap``), never re-encrypting gigabytes of evidence;
* **separation** -- a stolen database dump without the key file, or a stolen bucket without both,
  yields nothing.

Wrapped data key format (stored in ``data_keys.wrapped``)
---------------------------------------------------------
::

    b"WBSK" | version (1 byte, = 1) | nonce (12 random bytes) | AES-256-GCM(KEK, data key) + tag

associated data = ``b"WBSK" | version | len(report_id) u16 | report_id | len(kek_id) u16 | kek_id
| data key id (16 bytes)``. Binding the report id stops an attacker with database write access from
moving report A's wrapped key onto report B's row; binding the KEK id stops a confused re-wrap
from being accepted under the wrong KEK; binding the data key id ties the wrapped key to the
objects whose headers name it.

Object format (evidence files and report content)
-------------------------------------------------
Large files must stream with bounded memory (docs/architecture.md §4.6), so an object is not one GCM message but a
sequence of independently authenticated *segments* (the STREAM construction of Hoang, Reyhanitabar,
Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", as used
by Tink's streaming AEAD and age)::

    header (32 bytes):
        magic           b"WBSE"     -- recognise our objects; refuse anything else early
        version         1 byte = 1  -- lets a future format coexist with this one
        data key id     16 bytes    -- which data key sealed this object (detects a wrong key
                                       before any decryption work, and survives key re-wrapping)
        nonce prefix    7 bytes     -- random per object, so the many objects of a report that
                                       share one data key never share a nonce
        segment size    u32 BE      -- plaintext bytes per segment (64 KiB); recorded so a reader
                                       can compute segment offsets for random access
    The header of every object is also recorded in its database row when it is written and
    compared on every read, so an older version of the same object put back (replay) fails.

    segment 0 .. n-1:
        AES-256-GCM(data key, nonce_i, plaintext_i, associated data) = ciphertext_i | tag (16 bytes)

    nonce_i         = nonce prefix (7) | segment counter i (u32 BE) | last flag (1 byte: 1 on the
                      final segment, 0 otherwise)
    associated data = header | len(report_id) u16 | report_id | len(object_id) u16 | object_id

Why each piece of the nonce and associated data exists:

* the **counter** in the nonce makes every segment position unique: a dropped, duplicated or
  reordered segment is decrypted with the wrong nonce and fails authentication;
* the **last flag** in the nonce makes truncation at a segment boundary detectable: a stream that
  ends without a segment sealed as "last" is refused, and a final segment cannot be moved earlier;
* the **header** in the associated data authenticates the header itself (a flipped nonce prefix,
  key id or segment size fails on the first segment);
* **report id and object id** (the evidence id, or ``"content"`` for the report content) in the
  associated data stop ciphertext from being swapped between objects or reports that happen to be
  readable with the same key -- e.g. replacing evidence 1 with evidence 2 of the same report, or
  pasting one report's content object under another's row. They are length-prefixed so that the
  concatenation is unambiguous.

Every segment but the last carries exactly ``segment size`` plaintext bytes; the last carries
``0 <= r < segment size`` bytes (an empty final segment is emitted when the plaintext length is a
multiple of the segment size). So the segment count is ``size // segment_size + 1``, a full-size
segment is never final, and a reader can tell segment boundaries apart from the total length
alone. 56 random prefix bits per object keep the nonce-collision probability under one data key
negligible (birthday bound ~2^28 objects per report); the 32-bit counter caps an object at
256 TiB.

A decryptor releases plaintext segment by segment, each one authenticated. A caller streaming
plaintext onwards must still treat a later ``IntegrityError`` (including "missing final segment"
from ``finalize()``) as failing the whole object. ``IntegrityError`` messages never contain
plaintext or key material.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import stat
import struct
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wbs_contracts import errors as contract_errors

log = logging.getLogger(__name__)

MAGIC = b"WBSE"
FORMAT_VERSION = 1
SEGMENT_SIZE = 64 * 1024
TAG_SIZE = 16
KEY_SIZE = 32
KEY_ID_SIZE = 16
NONCE_PREFIX_SIZE = 7
_HEADER = struct.Struct(">4sB16s7sI")
HEADER_SIZE = _HEADER.size  # 32
MAX_SEGMENT_SIZE = 16 * 1024 * 1024  # refuse absurd headers before buffering for them
MAX_SEGMENTS = 2 ** 32

WRAP_MAGIC = b"WBSK"
WRAP_VERSION = 1
_WRAP_NONCE_SIZE = 12

KEY_FILE_FORMAT = "wbs-keys"
KEY_FILE_VERSION = 1


class CryptoError(Exception):
    """Base class for errors of this module. Messages never carry plaintext or key bytes."""


class IntegrityError(CryptoError, contract_errors.IntegrityError):
    """Ciphertext failed authentication: tampered, truncated, reordered, swapped, or wrong key.

    Subclasses the contract's ``IntegrityError`` so RPC callers see that type name.
    """


class KeyFileError(CryptoError):
    """The key file is missing, malformed, or not acceptable in this environment."""


# ---------------------------------------------------------------------------------------------
# Data keys
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataKey:
    """A per-report data key and its public id. ``repr`` never shows the key."""

    key_id: bytes
    key: bytes

    def __post_init__(self):
        if len(self.key_id) != KEY_ID_SIZE or len(self.key) != KEY_SIZE:
            raise CryptoError("a data key is 32 bytes with a 16-byte id")

    @classmethod
    def generate(cls) -> "DataKey":
        return cls(key_id=secrets.token_bytes(KEY_ID_SIZE), key=secrets.token_bytes(KEY_SIZE))

    def __repr__(self):
        return f"DataKey(key_id={self.key_id.hex()})"


def _lp(value: str | bytes) -> bytes:
    """Length-prefixed encoding, so that concatenated associated data is unambiguous."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) > 0xFFFF:
        raise CryptoError("identifier too long")
    return struct.pack(">H", len(raw)) + raw


# ---------------------------------------------------------------------------------------------
# Key-encryption keys and the key file
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrappedKey:
    kek_id: str
    wrapped: bytes


class KeyRing:
    """The key-encryption keys, one of them active for wrapping new data keys.

    Retired KEKs stay in the ring so that data keys wrapped under them can still be unwrapped
    until ``rewrap`` has moved them to the active KEK.
    """

    def __init__(self, keks: dict[str, bytes], active_id: str):
        if active_id not in keks:
            raise KeyFileError("active key-encryption key is not in the key ring")
        for kek_id, kek in keks.items():
            if not kek_id or len(kek) != KEY_SIZE:
                raise KeyFileError("every key-encryption key must be 32 bytes with an id")
        self._keks = dict(keks)
        self.active_id = active_id

    def __repr__(self):
        return f"KeyRing(active={self.active_id!r}, ids={sorted(self._keks)!r})"

    @property
    def kek_ids(self) -> list[str]:
        return sorted(self._keks)

    @staticmethod
    def _wrap_ad(report_id: str, kek_id: str, key_id: bytes) -> bytes:
        return WRAP_MAGIC + bytes([WRAP_VERSION]) + _lp(report_id) + _lp(kek_id) + key_id

    def wrap(self, report_id: str, data_key: DataKey) -> WrappedKey:
        """Seal ``data_key`` under the active KEK, bound to ``report_id``."""
        kek_id = self.active_id
        nonce = secrets.token_bytes(_WRAP_NONCE_SIZE)
        sealed = AESGCM(self._keks[kek_id]).encrypt(
            nonce, data_key.key, self._wrap_ad(report_id, kek_id, data_key.key_id))
        return WrappedKey(kek_id, WRAP_MAGIC + bytes([WRAP_VERSION]) + nonce + sealed)

    def unwrap(self, report_id: str, key_id: bytes, kek_id: str, wrapped: bytes) -> DataKey:
        """Open a wrapped data key; ``IntegrityError`` if anything does not match."""
        kek = self._keks.get(kek_id)
        if kek is None:
            raise IntegrityError("data key is wrapped under an unknown key-encryption key")
        head = len(WRAP_MAGIC) + 1
        if len(wrapped) < head + _WRAP_NONCE_SIZE + TAG_SIZE or wrapped[:4] != WRAP_MAGIC:
            raise IntegrityError("wrapped data key is malformed")
        if wrapped[4] != WRAP_VERSION:
            raise IntegrityError("wrapped data key has an unknown format version")
        nonce = wrapped[head:head + _WRAP_NONCE_SIZE]
        try:
            key = AESGCM(kek).decrypt(nonce, wrapped[head + _WRAP_NONCE_SIZE:],
                                      self._wrap_ad(report_id, kek_id, key_id))
        except InvalidTag:
            raise IntegrityError("wrapped data key failed authentication") from None
        return DataKey(key_id=key_id, key=key)

    def rewrap(self, report_id: str, key_id: bytes, kek_id: str, wrapped: bytes) -> WrappedKey:
        """Move a wrapped data key to the active KEK (key rotation); no object is touched."""
        return self.wrap(report_id, self.unwrap(report_id, key_id, kek_id, wrapped))

    # -- key file ------------------------------------------------------------------------------

    @classmethod
    def from_document(cls, doc: dict) -> "KeyRing":
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise KeyFileError("not a WBS key file")
        if doc.get("version") != KEY_FILE_VERSION:
            raise KeyFileError("unsupported key file version")
        keks = {}
        for entry in doc.get("keys") or []:
            try:
                kek_id = str(entry["id"])
                key = base64.b64decode(entry["key"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                raise KeyFileError("malformed key entry in key file") from None
            if kek_id in keks:
                raise KeyFileError("duplicate key id in key file")
            keks[kek_id] = key
        if not keks:
            raise KeyFileError("key file holds no key-encryption keys")
        return cls(keks, str(doc.get("active")))

    @classmethod
    def load(cls, path: str, production: bool) -> "KeyRing":
        """Load the key file; in development create it on first start.

        Production refuses (SecureDrop style: better not to start than to run insecurely):
        a missing file (a silently generated key would make data depend on an unmanaged file),
        a file generated by the development default (marked ``"generated": true``; operators
        create production keys deliberately, e.g. with :func:`new_key_document`) and a file
        readable or writable by everyone.
        """
        if not os.path.exists(path):
            if production:
                raise KeyFileError(f"key file {path} does not exist (WBS_ENV=production "
                                   "never generates keys)")
            _create_key_file(path, new_key_document(generated=True))
            log.warning("generated a development key file at %s", path)
        st = os.stat(path)
        world = stat.S_IMODE(st.st_mode) & 0o007
        if world:
            if production:
                raise KeyFileError(f"key file {path} is accessible to every user "
                                   f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
            log.warning("key file %s is accessible to every user; chmod 600 it", path)
        try:
            with open(path, "rb") as fh:
                doc = json.loads(fh.read())
        except (OSError, ValueError):
            raise KeyFileError(f"key file {path} cannot be read as JSON") from None
        if production and doc.get("generated"):
            raise KeyFileError(f"key file {path} was generated by the development default; "
                               "WBS_ENV=production needs a key file provisioned by an operator")
        return cls.from_document(doc)


def _new_kek_entry() -> dict:
    now = datetime.now(timezone.utc)
    return {
        "id": f"kek-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}",
        "key": base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii"),
        "created_at": now.isoformat(timespec="seconds"),
    }


def new_key_document(generated: bool = False) -> dict:
    """A fresh key file document with one active KEK.

    ``generated`` marks files made by the development default, which production refuses.
    """
    entry = _new_kek_entry()
    return {"format": KEY_FILE_FORMAT, "version": KEY_FILE_VERSION, "generated": generated,
            "active": entry["id"], "keys": [entry]}


def add_kek(doc: dict) -> str:
    """Add a new KEK to a key file document and make it active; returns its id.

    Older KEKs stay in the file (retired) until every data key has been re-wrapped.
    """
    entry = _new_kek_entry()
    for old in doc["keys"]:
        if old["id"] == doc["active"]:
            old["retired_at"] = entry["created_at"]
    doc["keys"].append(entry)
    doc["active"] = entry["id"]
    return entry["id"]


def _write_private_temp(path: str, doc: dict) -> str:
    """Write `doc` to a fresh 0600 temp file beside `path`, fsynced; return its name."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(doc, indent=2).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_key_file(path: str, doc: dict) -> None:
    """Replace the key file atomically, mode 0600 (temp file, fsync, rename)."""
    tmp = _write_private_temp(path, doc)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _create_key_file(path: str, doc: dict) -> None:
    """Create the key file only if absent: two processes starting at once agree on one file."""
    tmp = _write_private_temp(path, doc)
    try:
        os.link(tmp, path)  # atomic create-if-absent, never a half-written file
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Segmented object format
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    key_id: bytes
    nonce_prefix: bytes
    segment_size: int
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> "Header":
        if len(raw) < HEADER_SIZE:
            raise IntegrityError("object is truncated inside its header")
        raw = bytes(raw[:HEADER_SIZE])
        magic, version, key_id, prefix, segment_size = _HEADER.unpack(raw)
        if magic != MAGIC:
            raise IntegrityError("not a WBS encrypted object (bad magic)")
        if version != FORMAT_VERSION:
            raise IntegrityError("unknown encrypted object format version")
        if not 0 < segment_size <= MAX_SEGMENT_SIZE:
            raise IntegrityError("encrypted object header has an invalid segment size")
        return cls(key_id, prefix, segment_size, raw)


def _check_recorded(header: Header, expected: bytes | None) -> None:
    """The header recorded in the database when the object was written must be the one read.

    Report id and object id in the associated data stop swaps between objects; they cannot stop
    a *replay*: an older version of the same object (same data key, same ids, e.g. the report
    content before it was replaced, kept by a versioned bucket or a backup) put back in place.
    Its random nonce prefix differs from the recorded header's, so it is refused here.
    """
    if expected is not None and bytes(expected) != header.raw:
        raise IntegrityError("object is not the version recorded for it (replayed or swapped)")


def _associated_data(header: bytes, report_id: str, object_id: str) -> bytes:
    return header + _lp(report_id) + _lp(object_id)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= MAX_SEGMENTS:
        raise CryptoError("object too large for the segment counter")
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def segment_count(plain_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Number of segments for ``plain_size`` bytes (the last one is always short, maybe empty)."""
    return plain_size // segment_size + 1


def ciphertext_size(plain_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    return HEADER_SIZE + plain_size + segment_count(plain_size, segment_size) * TAG_SIZE


def plain_size_from_ciphertext(ct_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    body = ct_size - HEADER_SIZE
    full, rest = divmod(body, segment_size + TAG_SIZE)
    if body < TAG_SIZE or rest < TAG_SIZE:
        raise IntegrityError("encrypted object has an impossible length")
    return full * segment_size + rest - TAG_SIZE


class SegmentEncryptor:
    """Streaming encryption of one object; holds back less than one segment of plaintext.

    ``update`` returns the ciphertext ready so far (the header comes out with the first call),
    ``finalize`` seals the remainder as the final segment. Both return ``bytes``.
    """

    def __init__(self, data_key: DataKey, report_id: str, object_id: str,
                 segment_size: int = SEGMENT_SIZE):
        if not 0 < segment_size <= MAX_SEGMENT_SIZE:
            raise CryptoError("invalid segment size")
        self._aead = AESGCM(data_key.key)
        self._prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
        self.header = _HEADER.pack(MAGIC, FORMAT_VERSION, data_key.key_id, self._prefix,
                                   segment_size)
        self._ad = _associated_data(self.header, report_id, object_id)
        self._segment_size = segment_size
        self._buffer = bytearray()
        self._counter = 0
        self._header_sent = False
        self._finished = False

    def _take_header(self) -> list[bytes]:
        if self._header_sent:
            return []
        self._header_sent = True
        return [self.header]

    def _seal(self, plaintext, last: bool) -> bytes:
        out = self._aead.encrypt(_nonce(self._prefix, self._counter, last), plaintext, self._ad)
        self._counter += 1
        return out

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise CryptoError("encryptor already finalized")
        out = self._take_header()
        size = self._segment_size
        view = memoryview(data)
        if self._buffer:
            need = size - len(self._buffer)
            self._buffer += view[:need]
            view = view[need:]
            if len(self._buffer) < size:
                return b"".join(out)
            out.append(self._seal(bytes(self._buffer), last=False))
            self._buffer.clear()
        while len(view) >= size:
            out.append(self._seal(view[:size], last=False))
            view = view[size:]
        self._buffer += view
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._finished:
            raise CryptoError("encryptor already finalized")
        out = self._take_header()
        out.append(self._seal(bytes(self._buffer), last=True))
        self._buffer.clear()
        self._finished = True
        return b"".join(out)


class SegmentDecryptor:
    """Streaming decryption and verification of one object.

    Feed ciphertext in pieces of any size to ``update`` (returns authenticated plaintext of the
    complete segments seen so far); ``finalize`` checks that the stream ended with a segment
    sealed as final and returns its plaintext. Raises ``IntegrityError`` on tamper, truncation,
    reordering, a missing final segment, trailing data, a swapped object or a wrong key.
    """

    def __init__(self, data_key: DataKey, report_id: str, object_id: str,
                 expected_header: bytes | None = None):
        self._key = data_key
        self._expected_header = expected_header
        self._aead = AESGCM(data_key.key)
        self._report_id = report_id
        self._object_id = object_id
        self._header: Header | None = None
        self._ad = b""
        self._buffer = bytearray()
        self._counter = 0
        self._finished = False

    def _open(self, segment, last: bool) -> bytes:
        nonce = _nonce(self._header.nonce_prefix, self._counter, last)
        try:
            plain = self._aead.decrypt(nonce, bytes(segment), self._ad)
        except InvalidTag:
            raise IntegrityError(
                f"segment {self._counter} failed authentication "
                "(tampered, reordered, truncated, swapped or wrong key)") from None
        self._counter += 1
        return plain

    def update(self, data: bytes) -> bytes:
        if self._finished:
            raise IntegrityError("data after the final segment")
        self._buffer += data
        if self._header is None:
            if len(self._buffer) < HEADER_SIZE:
                return b""
            self._header = Header.parse(self._buffer)
            if self._header.key_id != self._key.key_id:
                raise IntegrityError("object was sealed under a different data key")
            _check_recorded(self._header, self._expected_header)
            self._ad = _associated_data(self._header.raw, self._report_id, self._object_id)
            del self._buffer[:HEADER_SIZE]
        full = self._header.segment_size + TAG_SIZE
        out = []
        offset = 0
        # A full-size segment is never the final one (the final segment is always short), so
        # complete segments can be released as soon as they arrive.
        while len(self._buffer) - offset >= full:
            out.append(self._open(memoryview(self._buffer)[offset:offset + full], last=False))
            offset += full
        if offset:
            del self._buffer[:offset]
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._finished:
            raise IntegrityError("decryptor already finalized")
        if self._header is None:
            raise IntegrityError("object is truncated inside its header")
        if len(self._buffer) < TAG_SIZE:
            raise IntegrityError("object is truncated: the final segment is missing")
        plain = self._open(self._buffer, last=True)
        self._buffer.clear()
        self._finished = True
        return plain


def seal(data_key: DataKey, report_id: str, object_id: str, plaintext: bytes) -> bytes:
    """One-shot encryption of a small value in the object format (e.g. evidence file names)."""
    enc = SegmentEncryptor(data_key, report_id, object_id)
    return enc.update(plaintext) + enc.finalize()


def open_sealed(data_key: DataKey, report_id: str, object_id: str, ciphertext: bytes) -> bytes:
    """One-shot decryption of :func:`seal` output."""
    dec = SegmentDecryptor(data_key, report_id, object_id)
    return dec.update(ciphertext) + dec.finalize()


# ---------------------------------------------------------------------------------------------
# Random access (chunked reads)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChunkPlan:
    """Where the ciphertext of one plaintext chunk lies inside an object."""

    first_segment: int
    segment_count: int
    ciphertext_offset: int
    ciphertext_length: int
    last: bool


def plan_chunk(plain_size: int, index: int, chunk_size: int,
               segment_size: int = SEGMENT_SIZE) -> ChunkPlan:
    """Plan the read of the ``index``-th ``chunk_size`` bytes of plaintext.

    ``chunk_size`` must be a multiple of the segment size, so chunks start on segment
    boundaries. The last chunk always extends to the final segment (even when that segment is
    empty), so a reader of the last chunk verifies the object's end and detects truncation.
    """
    if chunk_size <= 0 or chunk_size % segment_size:
        raise ValueError("chunk size must be a positive multiple of the segment size")
    chunks = max(1, -(-plain_size // chunk_size))
    if not 0 <= index < chunks:
        raise IndexError("chunk index out of range")
    total = segment_count(plain_size, segment_size)
    per_chunk = chunk_size // segment_size
    first = index * per_chunk
    last = index == chunks - 1
    count = total - first if last else per_chunk
    offset = HEADER_SIZE + first * (segment_size + TAG_SIZE)
    plain_end = min(plain_size, (index + 1) * chunk_size)
    length = (plain_end - index * chunk_size) + count * TAG_SIZE
    return ChunkPlan(first, count, offset, length, last)


def decrypt_segments(data_key: DataKey, header: bytes, report_id: str, object_id: str,
                     first_segment: int, ciphertext: bytes, includes_final: bool,
                     expected_header: bytes | None = None) -> bytes:
    """Decrypt a contiguous run of whole segments read from the middle of an object.

    ``header`` is the object's first ``HEADER_SIZE`` bytes; ``includes_final`` says whether the
    run ends with the object's final segment (from :func:`plan_chunk`). Every segment is
    authenticated at its position, so a run read from the wrong offset or the wrong object fails.
    """
    hdr = Header.parse(header)
    if hdr.key_id != data_key.key_id:
        raise IntegrityError("object was sealed under a different data key")
    _check_recorded(hdr, expected_header)
    aead = AESGCM(data_key.key)
    ad = _associated_data(hdr.raw, report_id, object_id)
    full = hdr.segment_size + TAG_SIZE
    view = memoryview(ciphertext)
    out = []
    counter = first_segment
    while True:
        remaining = len(view)
        if includes_final and remaining < full:
            if remaining < TAG_SIZE:
                raise IntegrityError("object is truncated: the final segment is missing")
            segment, last = view, True
        elif remaining == 0:
            break
        elif remaining < full:
            raise IntegrityError("object is truncated inside a segment")
        else:
            segment, last = view[:full], False
        try:
            out.append(aead.decrypt(_nonce(hdr.nonce_prefix, counter, last), bytes(segment), ad))
        except InvalidTag:
            raise IntegrityError(f"segment {counter} failed authentication") from None
        counter += 1
        view = view[len(segment):]
        if last:
            break
    return b"".join(out)

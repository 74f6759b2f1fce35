"""Proof of work: abuse control that identifies nobody (docs/interface.md §2).

Rate limiting by IP address is off the table (no reporter metadata is ever read), so a client
pays for each submission and sign-in with CPU instead: it fetches a challenge, finds a decimal
nonce such that SHA-256(challenge + ":" + nonce) starts with N zero bits, and sends
``X-WBS-PoW: <challenge>:<nonce>``.

Design: challenges are *stateless when issued* and *stateful when spent*. A challenge is
``hex(random 16 bytes || expiry as 8-byte big-endian seconds || HMAC(K_pow, both)[:16])``.
Issuing one therefore writes nothing, so ``GET /api/v1/pow`` cannot be used to fill the
database; the MAC proves intake issued it and that the expiry was not edited. Only a *solved*
challenge is written (as its SHA-256, to the ``spent_pow_challenges`` table, primary key), which
is what makes it single-use; a row is useless after its expiry and is purged then. An attacker
who wants to grow that table has to pay the work for every row.

The functions here are pure (clock and key passed in); the single-use bookkeeping lives in
`intake.pow_gate`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass

CHALLENGE_RANDOM = 16
CHALLENGE_MAC = 16
CHALLENGE_BYTES = CHALLENGE_RANDOM + 8 + CHALLENGE_MAC
MAX_NONCE_DIGITS = 20


class PowRejected(Exception):
    """The proof is missing, malformed, forged, expired, wrong or reused; `.reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


MESSAGES = {
    "missing": "A proof of work is required: GET /api/v1/pow, solve it, send X-WBS-PoW.",
    "malformed": "The proof of work header is malformed; expected <challenge>:<nonce>.",
    "unknown": "The proof of work challenge was not issued by this server.",
    "expired": "The proof of work challenge has expired; fetch a new one.",
    "wrong": "The nonce does not solve the challenge.",
    "reused": "The proof of work challenge was already used; fetch a new one.",
}


@dataclass(frozen=True)
class Proof:
    challenge: str
    expires_at: int  # epoch seconds

    @property
    def digest(self) -> str:
        """What is stored to mark the challenge spent (never the challenge itself)."""
        return hashlib.sha256(self.challenge.encode("ascii")).hexdigest()


def issue_challenge(key: bytes, now: float, ttl_seconds: int) -> tuple[str, int]:
    """A new challenge and its expiry (epoch seconds)."""
    expires_at = int(now) + int(ttl_seconds)
    body = secrets.token_bytes(CHALLENGE_RANDOM) + struct.pack(">Q", expires_at)
    mac = hmac.new(key, body, hashlib.sha256).digest()[:CHALLENGE_MAC]
    return (body + mac).hex(), expires_at


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solves(challenge: str, nonce: str, bits: int) -> bool:
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode("ascii")).digest()
    return leading_zero_bits(digest) >= bits


def solve(challenge: str, bits: int) -> str:
    """Find a nonce (used by tests and the CLI; browsers run the same loop in pow.js)."""
    nonce = 0
    while not solves(challenge, str(nonce), bits):
        nonce += 1
    return str(nonce)


def check_proof(header: str | None, key: bytes, bits: int, now: float) -> Proof:
    """Verify everything about a proof except single use. Raises `PowRejected`."""
    if not header:
        raise PowRejected("missing")
    if len(header) > 2 * CHALLENGE_BYTES + 1 + MAX_NONCE_DIGITS:
        raise PowRejected("malformed")
    challenge, sep, nonce = header.strip().partition(":")
    if not sep or not nonce.isdigit() or not nonce.isascii() or len(nonce) > MAX_NONCE_DIGITS:
        raise PowRejected("malformed")
    challenge = challenge.lower()
    try:
        raw = bytes.fromhex(challenge)
    except ValueError:
        raise PowRejected("malformed") from None
    if len(raw) != CHALLENGE_BYTES:
        raise PowRejected("malformed")
    body, mac = raw[:-CHALLENGE_MAC], raw[-CHALLENGE_MAC:]
    expected = hmac.new(key, body, hashlib.sha256).digest()[:CHALLENGE_MAC]
    if not hmac.compare_digest(mac, expected):
        raise PowRejected("unknown")
    (expires_at,) = struct.unpack(">Q", body[CHALLENGE_RANDOM:])
    if now >= expires_at:
        raise PowRejected("expired")
    if not solves(challenge, nonce, bits):
        raise PowRejected("wrong")
    return Proof(challenge=challenge, expires_at=expires_at)

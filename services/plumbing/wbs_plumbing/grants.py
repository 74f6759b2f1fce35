"""Read grants: verification's decision "this person may read this case now", checkable by storage.

storage holds the keys and the ciphertext, but who may read a case is verification's business
(assignment, supervision, conflicts, disabled accounts). Trusting "the call came from
verification" would make every process on the broker a reader. Instead verification signs a
short-lived grant with an Ed25519 key only it holds; storage verifies it with the public half
and serves plaintext only when the grant names the report and the kind of read asked for.
A stolen grant expires in minutes and opens one report only; storage cannot mint grants.

Token: ``base64url(claims JSON) "." base64url(signature)``. Claims:

* ``v`` 1; ``sub`` the reader (a staff id, or ``"reporter"`` for a reporter signed in with a receipt);
* ``case_id``, ``report_id``; ``scope``: a list of ``content``, ``evidence``, ``messages``;
* ``message_ids`` (optional): the messages this reader may open (a reporter never sees internal notes);
* ``exp`` (Unix seconds) and ``jti`` (random, for the read log).

Keys: verification reads its private key from ``WBS_GRANT_KEY_FILE`` (generated, 0600, into the
data dir in development; production refuses to generate it). storage takes the public key from
``WBS_GRANT_PUBLIC_KEY`` (hex); in development, when that is unset, it derives it from the same
key file, which is what ``make run`` (one data dir) relies on.
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wbs_plumbing.config import ConfigError, is_production, secret_file

SCOPES = ("content", "evidence", "messages")
DEFAULT_TTL_SECONDS = 300
KEY_FILE_NAME = "grant-signing.key"
_RAW_PUBLIC = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


class GrantError(Exception):
    """A grant is missing, malformed, forged, expired or does not cover the read asked for.

    The message names the rule that failed, never the token.
    """


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _private_key_bytes(config: dict) -> bytes:
    path = secret_file(config, "WBS_GRANT_KEY_FILE", KEY_FILE_NAME, lambda: secrets.token_bytes(32))
    raw = path.read_bytes()
    if len(raw) != 32:
        raise ConfigError(f"WBS_GRANT_KEY_FILE: {path} must hold exactly 32 bytes")
    return raw


class GrantSigner:
    """verification's half: signs grants with the private key."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key

    @classmethod
    def from_config(cls, config: dict) -> "GrantSigner":
        return cls(Ed25519PrivateKey.from_private_bytes(_private_key_bytes(config)))

    @property
    def public_key_hex(self) -> str:
        return self._key.public_key().public_bytes(**_RAW_PUBLIC).hex()

    def issue(self, *, sub: str, case_id: str, report_id: str, scope, message_ids=None,
              ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
        scope = sorted(set(scope))
        if not scope or any(s not in SCOPES for s in scope):
            raise ValueError(f"scope must be a non-empty subset of {SCOPES}")
        claims = {"v": 1, "sub": str(sub), "case_id": str(case_id), "report_id": str(report_id),
                  "scope": scope, "exp": int((now or time.time()) + ttl_seconds),
                  "jti": secrets.token_hex(8)}
        if message_ids is not None:
            claims["message_ids"] = [str(m) for m in message_ids]
        body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._key.sign(body))}"


class GrantVerifier:
    """storage's half: checks a grant with the public key and answers its claims."""

    def __init__(self, public_key: Ed25519PublicKey):
        self._key = public_key

    @classmethod
    def from_config(cls, config: dict) -> "GrantVerifier":
        configured = (config.get("WBS_GRANT_PUBLIC_KEY") or "").strip()
        if configured:
            try:
                return cls(Ed25519PublicKey.from_public_bytes(bytes.fromhex(configured)))
            except ValueError:
                raise ConfigError("WBS_GRANT_PUBLIC_KEY must be 64 hex digits (an Ed25519 key)") from None
        if is_production(config):
            raise ConfigError("WBS_GRANT_PUBLIC_KEY is required when WBS_ENV=production")
        private = Ed25519PrivateKey.from_private_bytes(_private_key_bytes(config))
        return cls(private.public_key())

    def check(self, token, *, report_id: str, scope: str, message_id: str | None = None,
              now: float | None = None) -> dict:
        """Return the claims if ``token`` lets its holder make a ``scope`` read of ``report_id``
        (and of ``message_id``, when the grant lists messages); raise GrantError otherwise."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 8192:
            raise GrantError("grant is missing or malformed")
        body_text, signature_text = token.split(".")
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
            self._key.verify(signature, body)
            claims = json.loads(body)
        except (binascii.Error, ValueError, InvalidSignature):
            raise GrantError("grant signature does not verify") from None
        if not isinstance(claims, dict) or claims.get("v") != 1:
            raise GrantError("grant version is not supported")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < (now or time.time()):
            raise GrantError("grant has expired")
        if claims.get("report_id") != str(report_id):
            raise GrantError("grant is for another report")
        if scope not in (claims.get("scope") or ()):
            raise GrantError(f"grant does not cover {scope} reads")
        if message_id is not None and "message_ids" in claims and str(message_id) not in claims["message_ids"]:
            raise GrantError("grant does not cover this message")
        return claims

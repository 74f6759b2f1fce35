"""Read grants: verification's decision "this person may read this case now", checkable by storage.

storage holds the keys and the ciphertext, but who may read a case is verification's business
(assignment, supervision, conflicts, disabled accounts). Trusting "the call came from
verification" would make every process on the broker a reader. Instead verification signs a
short-lived grant with an Ed25519 key only it holds; storage verifies it with the public half
and serves plaintext only when the grant names the report and the kind of read asked for.
A stolen grant expires in minutes and opens one report only; storage cannot mint grants.

Token: ``base64url(claims JSON) "." base64url(signature)``. Claims:

* ``v`` 1; ``sub`` the reader (a staff id, or ``"reporter"`` for a reporter signed in with a receipt);
* ``case_id``, ``report_id``; ``scope``: a list of ``content``, ``parties`` (only the people a
  report names, what routing needs), ``evidence``, ``messages``;
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
import logging
import os
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nameko.extensions import DependencyProvider

from wbs_plumbing.config import ConfigError, is_production, secret_file

audit = logging.getLogger("wbs.audit.commands")

SCOPES = ("content", "parties", "evidence", "messages")
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
        claims = _verified_claims(token, self._key, "grant")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < (now or time.time()):
            raise GrantError("grant has expired")
        if claims.get("report_id") != str(report_id):
            raise GrantError("grant is for another report")
        if scope not in (claims.get("scope") or ()):
            raise GrantError(f"grant does not cover {scope} reads")
        if message_id is not None and "message_ids" in claims and str(message_id) not in claims["message_ids"]:
            raise GrantError("grant does not cover this message")
        return claims


# -- signed commands ----------------------------------------------------------------------------
#
# A privileged or destructive RPC (discard a report, run retention, change the staff directory)
# must not be obeyed because a message arrived on the broker: every service, the wbs command,
# ops staff and integrators hold broker credentials. The caller proves who it is with a command
# token signed by its own Ed25519 key; the receiver checks it before any effect, against the
# public keys of the issuers allowed for that command, and writes an audit line.
#
# Token: same shape as a grant. Claims: ``v`` 1, ``kind`` "command", ``iss`` (``intake``,
# ``verification``, ``storage``, ``notification`` or ``admin``), ``cmd`` (the RPC's name), ``bind`` (the arguments
# the command is for, e.g. ``{"report_id": ...}``; a token opens nothing else), ``exp`` (at most
# COMMAND_TTL_SECONDS ahead) and ``jti``.
#
# Keys: an issuer signs with ``WBS_<ISSUER>_COMMAND_KEY_FILE`` (default
# ``<data dir>/command-<issuer>.key``, generated 0600 in development, never in production); a
# receiver takes the public half from ``WBS_<ISSUER>_COMMAND_PUBLIC_KEY`` (hex), or in
# development from the same key file (make run and the test stack share one data dir). The admin
# key is the wbs command's: a generated file for make run, a mounted secret in production.

COMMAND_TTL_SECONDS = 60
ISSUERS = ("intake", "verification", "storage", "notification", "admin")


def _setting(config: dict, key: str) -> str:
    """``key`` from the service's config, else from the environment: the command keys are
    deployment secrets, set as environment variables without a line in every config.yml."""
    return str(config.get(key) or os.environ.get(key) or "").strip()


def _command_key_bytes(config: dict, issuer: str) -> bytes:
    key = f"WBS_{issuer.upper()}_COMMAND_KEY_FILE"
    path = secret_file(dict(config, **{key: _setting(config, key)}), key, f"command-{issuer}.key",
                       lambda: secrets.token_bytes(32))
    raw = path.read_bytes()
    if len(raw) != 32:
        raise ConfigError(f"WBS_{issuer.upper()}_COMMAND_KEY_FILE: {path} must hold exactly 32 bytes")
    return raw


def _signed(key: Ed25519PrivateKey, claims: dict) -> str:
    body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(key.sign(body))}"


def _verified_claims(token, key: Ed25519PublicKey, what: str) -> dict:
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 8192:
        raise GrantError(f"{what} is missing or malformed")
    body_text, signature_text = token.split(".")
    try:
        body, signature = _unb64(body_text), _unb64(signature_text)
        key.verify(signature, body)
        claims = json.loads(body)
    except (binascii.Error, ValueError, InvalidSignature):
        raise GrantError(f"{what} signature does not verify") from None
    if not isinstance(claims, dict) or claims.get("v") != 1:
        raise GrantError(f"{what} version is not supported")
    return claims


class CommandSigner:
    """An issuer's half: signs commands with its private key."""

    def __init__(self, issuer: str, private_key: Ed25519PrivateKey):
        if issuer not in ISSUERS:
            raise ValueError(f"issuer must be one of {ISSUERS}")
        self.issuer, self._key = issuer, private_key

    @classmethod
    def from_config(cls, config: dict, issuer: str) -> "CommandSigner":
        return cls(issuer, Ed25519PrivateKey.from_private_bytes(_command_key_bytes(config, issuer)))

    @property
    def public_key_hex(self) -> str:
        return self._key.public_key().public_bytes(**_RAW_PUBLIC).hex()

    def issue(self, command: str, ttl_seconds: int = COMMAND_TTL_SECONDS, now: float | None = None,
              **bind) -> str:
        claims = {"v": 1, "kind": "command", "iss": self.issuer, "cmd": command,
                  "bind": {k: str(v) for k, v in bind.items()},
                  "exp": int((now or time.time()) + min(ttl_seconds, COMMAND_TTL_SECONDS)),
                  "jti": secrets.token_hex(8)}
        return _signed(self._key, claims)


class CommandVerifier:
    """A receiver's half: which issuers' keys it knows, and the check before any effect."""

    def __init__(self, public_keys: dict):
        self._keys = dict(public_keys)

    @classmethod
    def from_config(cls, config: dict, issuers) -> "CommandVerifier":
        keys = {}
        for issuer in issuers:
            configured = _setting(config, f"WBS_{issuer.upper()}_COMMAND_PUBLIC_KEY")
            if configured:
                try:
                    keys[issuer] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(configured))
                except ValueError:
                    raise ConfigError(f"WBS_{issuer.upper()}_COMMAND_PUBLIC_KEY must be 64 hex "
                                      "digits (an Ed25519 key)") from None
            elif is_production(config):
                raise ConfigError(f"WBS_{issuer.upper()}_COMMAND_PUBLIC_KEY is required when WBS_ENV=production")
            else:
                private = Ed25519PrivateKey.from_private_bytes(_command_key_bytes(config, issuer))
                keys[issuer] = private.public_key()
        return cls(keys)

    def check(self, token, command: str, issuers, now: float | None = None, **bind) -> dict:
        """The claims if ``token`` is a live command ``command`` signed by one of ``issuers`` and
        bound to exactly ``bind``; GrantError naming the failed rule otherwise."""
        if not isinstance(token, str) or token.count(".") != 1:
            raise GrantError("command token is missing or malformed")
        try:
            claims = json.loads(_unb64(token.split(".")[0]))
            issuer = claims["iss"]
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise GrantError("command token is malformed") from None
        if issuer not in issuers or issuer not in self._keys:
            raise GrantError(f"{command} may not be asked by {issuer!r}")
        claims = _verified_claims(token, self._keys[issuer], "command token")
        if claims.get("kind") != "command" or claims.get("cmd") != command:
            raise GrantError(f"command token is not for {command}")
        if not isinstance(claims.get("exp"), int) or claims["exp"] < (now or time.time()):
            raise GrantError("command token has expired")
        if claims["exp"] > (now or time.time()) + COMMAND_TTL_SECONDS + 5:
            raise GrantError("command token lives too long")
        if claims.get("bind") != {k: str(v) for k, v in bind.items()}:
            raise GrantError(f"command token is for other arguments of {command}")
        return claims


class CommandKey(DependencyProvider):
    """A worker's signer of ``issuer``'s commands (read once per container)."""

    def __init__(self, issuer: str):
        self.issuer = issuer

    def setup(self):
        self.signer = CommandSigner.from_config(self.container.config, self.issuer)

    def get_dependency(self, worker_ctx):
        return self.signer


class CommandCheck(DependencyProvider):
    """A worker's ``check(token, command, issuers, **bind)``: verify, then write the audit line
    (who asked what, token id; never more), or raise ``wbs_contracts.errors.Forbidden``."""

    def __init__(self, *issuers: str):
        self.issuers = issuers

    def setup(self):
        self.verifier = CommandVerifier.from_config(self.container.config, self.issuers)

    def get_dependency(self, worker_ctx):
        return self.check

    def check(self, token, command: str, issuers, **bind) -> dict:
        from wbs_contracts.errors import Forbidden
        try:
            claims = self.verifier.check(token, command, issuers, **bind)
        except GrantError as exc:
            audit.warning("refused %s.%s %s: %s", self.container.service_name, command,
                          json.dumps(bind, sort_keys=True), exc)
            raise Forbidden(str(exc)) from None
        audit.info("command %s.%s %s by %s (token %s)", self.container.service_name, command,
                   json.dumps(bind, sort_keys=True), claims["iss"], claims["jti"])
        return claims

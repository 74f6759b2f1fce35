"""OpenPGP for staff who register a public key: their emails leave as PGP/MIME (RFC 3156).

Why: staff emails carry no content, but a link and a subject crossing the ministry's mail
system in clear still tell an observer that a case exists and whom it concerns. Encrypted, the
observer sees only that an encrypted message went to this person (the outer Subject is a fixed
"encrypted" line; the real one is inside).

Library: PGPy (pure Python, on top of ``cryptography``), pinned in requirements.txt; no gpg
binary or keyring on disk. A key is checked once at upload (``check_key``): it must parse, be a
public key, carry a valid self-signature, not be expired or revoked and have a key usable for
encryption; anything else is refused with the reason, so a bad key cannot silently stop mail.
A key that expires later is noticed at send time: the email goes out in clear (it is
content-free, as everyone else's) and the expiry is logged by staff id for an administrator.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from typing import Optional

with warnings.catch_warnings():  # PGPy imports algorithms cryptography marks as deprecated
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import KeyFlags, SecurityIssues

from wbs_contracts.errors import Invalid

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 64 * 1024
ENCRYPTED_SUBJECT = "[WBS] Pesan terenkripsi / Encrypted message"


@dataclass(frozen=True)
class CheckedKey:
    fingerprint: str
    armored: str
    expires_at: Optional[datetime]


def _load(armored: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key, _ = pgpy.PGPKey.from_blob(armored)
    return key


def _encryption_keys(key):
    """The primary key and subkeys that may encrypt communications and are not expired."""
    candidates = [key] + list(key.subkeys.values())
    usable = []
    for candidate in candidates:
        flags = set()
        for sig in candidate.self_signatures:
            flags |= set(sig.key_flags or ())
        if (KeyFlags.EncryptCommunications in flags or KeyFlags.EncryptStorage in flags) \
                and not candidate.is_expired:
            usable.append(candidate)
    return usable


def check_key(armored, now: Optional[datetime] = None) -> CheckedKey:
    """The key, or ``Invalid`` with the reason an administrator and the staff member can act on."""
    if not isinstance(armored, str) or not armored.strip() or len(armored) > MAX_KEY_CHARS:
        raise Invalid("paste an ASCII-armored OpenPGP public key")
    try:
        key = _load(armored)
    except Exception:
        raise Invalid("this is not an OpenPGP key") from None
    if not key.is_public:
        raise Invalid("this is a private key: paste the public key only (and keep the private one secret)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = key.self_verified  # SecurityIssues flags; OK is 0
        for flag, reason in ((SecurityIssues.Revoked, "the key has been revoked"),
                             (SecurityIssues.Expired, "the key has expired"),
                             (SecurityIssues.NoSelfSignature, "the key has no self-signature"),
                             (SecurityIssues.WrongSig, "the key's self-signature does not verify")):
            if issues & flag:
                raise Invalid(reason)
        if issues:
            raise Invalid("the key is not safe to use ({})".format(str(issues).split(".")[-1]))
        if key.is_expired:
            raise Invalid("the key has expired")
        if not _encryption_keys(key):
            raise Invalid("the key has no (unexpired) subkey for encryption")
    expires = key.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    return CheckedKey(fingerprint=str(key.fingerprint).replace(" ", ""), armored=str(key), expires_at=expires)


def encrypt_message(inner: EmailMessage, armored: str) -> Optional[Message]:
    """A PGP/MIME message carrying ``inner`` (all its headers become the outer ones except
    Subject and the content), or None when the key can no longer encrypt (expired): the caller
    holds the email (``mailer.KeyUnusable``), it never goes in clear in its place."""
    key = _load(armored)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if key.is_expired or not _encryption_keys(key):
            return None
        payload = EmailMessage()
        payload["Subject"] = inner["Subject"]  # protected header, inside the encryption
        payload.set_content(inner.get_body(("plain",)).get_content())
        html = inner.get_body(("html",))
        if html is not None and html is not inner.get_body(("plain",)):
            payload.add_alternative(html.get_content(), subtype="html")
        encrypted = key.encrypt(pgpy.PGPMessage.new(payload.as_string()))
    outer = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    for name in ("From", "To", "Date", "Message-ID", "Auto-Submitted"):
        if inner[name] is not None:
            outer[name] = inner[name]
    outer["Subject"] = ENCRYPTED_SUBJECT
    control = MIMEApplication("Version: 1\n", _subtype="pgp-encrypted", _encoder=_noop)
    control["Content-Description"] = "PGP/MIME version identification"
    body = MIMEApplication(str(encrypted), _subtype="octet-stream", _encoder=_noop, name="encrypted.asc")
    body["Content-Description"] = "OpenPGP encrypted message"
    body["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    outer.attach(control)
    outer.attach(body)
    return outer


def _noop(part):
    """ASCII armour and the version line are 7-bit already: no transfer encoding."""
    part["Content-Transfer-Encoding"] = "7bit"

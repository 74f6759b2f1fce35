"""The reporter's contact address, and nothing else, for notification's "there is news" notice.

Why a separate read: a reporter who gave ``reporter.contact_email`` was promised short notices
(docs/domain.md). notification must not keep the address (a second copy, outside the report's
sealed content, would survive shredding and widen what a database dump betrays), so it asks
storage at each send. It must not get the report either: the answer is only ``{"email",
"language"}``, decrypted here from the sealed content and never leaving this process otherwise.

Who may ask: only notification, proving it with its own signed command ``read_reporter_contact``
bound to the report (``wbs_plumbing.grants``; checked by the service entrypoint before this
runs). No other issuer's key is accepted for it, so neither a staff read grant nor intake's or
the admin key opens it. The read is written to storage's read log (object ``contact``, reader
``notification``) like every other decryption. A shredded report has no data key: NotFound,
and with it the address is gone for good.
"""
from __future__ import annotations

import json

from storage import domain

CONTACT_READER = "notification"


class _CommandGrant:
    """Adapts a verified command to what ``domain.read_report_content`` asks of a grant checker:
    the claims naming the reader for the read log (the command's id as the grant id)."""

    def __init__(self, claims: dict):
        self._claims = claims

    def check(self, grant, **_):
        return {"sub": CONTACT_READER, "case_id": "contact", "jti": self._claims.get("jti", "")}


def read_reporter_contact(transaction, keyring, store, report_id, claims: dict):
    """``{"email", "language"}`` of the report's reporter, or None when no address was given.

    ``claims`` are the verified command's. Raises NotFound for an unknown or shredded report.
    """
    raw = domain.read_report_content(transaction, keyring, store, _CommandGrant(claims), report_id,
                                     grant=None)
    try:
        content = json.loads(raw)
    except ValueError:
        return None
    email = ((content.get("reporter") or {}).get("contact_email") or "").strip()
    if not email:
        return None
    language = content.get("language") if content.get("language") in ("id", "en") else "id"
    return {"email": email, "language": language}

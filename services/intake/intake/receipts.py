"""Receipts: the reporter's only key back to their report.

The scheme, and why
-------------------
A receipt is 20 characters drawn uniformly from the RFC 4648 base32 alphabet (A-Z, 2-7) by the
operating system's CSPRNG: 20 x 5 = **100 bits** of entropy. It is shown once, in groups of four
(``ABCD-EFGH-IJKL-MNOP-QRST``) so it can be written down and typed back; input is normalised
(case, spaces, hyphens, and the look-alikes 0->O, 1->I, 8->B) so a transcription slip that the
alphabet makes unambiguous is forgiven.

Intake never stores the receipt. It stores ``HMAC-SHA256(K, "wbs-receipt-v1:" + receipt)`` where
K is intake's receipt key (config ``WBS_RECEIPT_KEY``; generated into ``WBS_DATA_DIR`` with mode
0600 in development, required in production).

Why a keyed hash is enough here, when passwords need Argon2id: a slow KDF exists to make
guessing a *low-entropy* secret expensive. A 100-bit uniformly random receipt is not guessable:
even an attacker holding the database *and* the key, computing 10^12 HMACs per second, needs
about 2^100 / 10^12 / 3.15x10^7 ≈ 4x10^10 years to cover half the space. Without the key the
stored hashes are useless altogether (HMAC is a PRF), so a leaked database alone reveals nothing
and cannot be brute-forced at any entropy. A slow KDF would add nothing to that margin but would
cost ~1 s of CPU per submission and per sign-in (GlobaLeaks' figure), which is the throughput
budget of the whole pipeline (docs/architecture.md §8) and an easy denial-of-service lever.

Because the hash is deterministic, sign-in is a single indexed lookup: no per-report salt, no
scan. Cost per sign-in: one HMAC-SHA256 over ~35 bytes (~1-2 µs) plus that lookup. This is a
deliberate departure from docs/architecture.md §5.4's "Argon2id for receipts", which that document's own §8
invites ("a receipt with enough entropy needs only a keyed hash").

Key rotation: the prefix ``v1`` versions the construction; rotating K means keeping the old key
for lookups (hash under both) until every stored hash has been re-keyed on the reporter's next
sign-in. Not needed for the walking skeleton, and the column is wide enough for a tagged value.
"""

from __future__ import annotations

import hmac
import hashlib
import secrets

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
RECEIPT_LENGTH = 20
GROUP = 4
ENTROPY_BITS = RECEIPT_LENGTH * 5  # 100

_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})
_DOMAIN = b"wbs-receipt-v1:"


def new_receipt() -> str:
    """A fresh receipt, formatted for display (groups of four joined by hyphens)."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(RECEIPT_LENGTH))
    return format_receipt(raw)


def format_receipt(raw: str) -> str:
    return "-".join(raw[i:i + GROUP] for i in range(0, len(raw), GROUP))


def normalise_receipt(text: str) -> str | None:
    """Canonical form of a typed receipt, or None if it cannot be one.

    Runs in time independent of *which* characters are wrong beyond length; the comparison that
    matters is the indexed hash lookup, which reveals nothing about near misses.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    cleaned = "".join(ch for ch in text if ch not in " -\t\r\n").upper().translate(_LOOKALIKES)
    if len(cleaned) != RECEIPT_LENGTH or any(ch not in ALPHABET for ch in cleaned):
        return None
    return cleaned


def hash_receipt(key: bytes, receipt: str) -> str:
    """Keyed hash of a receipt (display or canonical form), hex. Raises ValueError if malformed."""
    canonical = normalise_receipt(receipt)
    if canonical is None:
        raise ValueError("not a receipt")
    return hmac.new(key, _DOMAIN + canonical.encode("ascii"), hashlib.sha256).hexdigest()


def derive_key(key: bytes, purpose: str) -> bytes:
    """An independent subkey for another purpose (e.g. proof-of-work challenges), so one secret
    in the config serves both without one use ever producing values of the other."""
    return hmac.new(key, b"wbs-intake-subkey:" + purpose.encode("ascii"), hashlib.sha256).digest()

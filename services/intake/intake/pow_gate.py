"""The proof-of-work gate in front of costly requests: a challenge to solve, and the check that
spends a solved one (docs/interface.md §2).

The challenge arithmetic is pure and lives in :mod:`intake.pow`; what needs the database is
here: a solved challenge is recorded as spent (its digest, primary key), so it serves exactly
one request, and rows past their expiry are purged as new ones arrive.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from wbs_plumbing.clock import iso

from intake import pow as powmod
from intake.models import SpentPowChallenge


def issue_pow(settings, now: float | None = None) -> dict:
    """A fresh challenge (nothing is stored: see intake.pow)."""
    now = time.time() if now is None else now
    challenge, expires_at = powmod.issue_challenge(settings.pow_key, now, settings.pow_ttl_seconds)
    return {
        "challenge": challenge,
        "bits": settings.pow_bits,
        "expires_at": iso(dt.datetime.fromtimestamp(expires_at, dt.timezone.utc)),
        "algorithm": "sha256-leading-zero-bits",
    }


def require_pow(transaction: Callable, settings, header: str | None, now: float | None = None) -> None:
    """Verify a proof and mark its challenge spent, before any of the request body is read.

    `WBS_POW_BITS=0` turns the check off entirely. Raises `PowRejected`.
    """
    if settings.pow_bits <= 0:
        return
    now = time.time() if now is None else now
    proof = powmod.check_proof(header, settings.pow_key, settings.pow_bits, now)
    with transaction() as session:
        spend_pow(session, proof, now)


def spend_pow(session, proof: powmod.Proof, now: float) -> None:
    """Record a challenge as used; a second use collides on the primary key -> 'reused'."""
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    session.execute(delete(SpentPowChallenge).where(SpentPowChallenge.expires_at < moment))
    session.add(SpentPowChallenge(
        digest=proof.digest,
        expires_at=dt.datetime.fromtimestamp(proof.expires_at, dt.timezone.utc),
    ))
    try:
        session.flush()
    except IntegrityError:
        raise powmod.PowRejected("reused") from None

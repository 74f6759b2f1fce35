"""Staff sign-in: Argon2id passwords, TOTP second factor, hashed expiring session tokens.

Why each piece is as it is:

* Passwords are hashed with Argon2id (docs/architecture.md §5.4). Hashing deliberately costs tens of
  milliseconds of CPU and memory; run on the eventlet hub it would starve AMQP heartbeats and
  every other request in the process, so :class:`Passwords` runs it in ``eventlet.tpool``'s
  native threads (argon2-cffi releases the GIL). The cost is configurable only so the test
  suite can weaken it through a fixture named ``insecure_fast_password_hashing``; production
  settings refuse costs below the defaults (see ``settings.py``).
* A TOTP code is accepted in the current 30-second step or one step either side (clock drift),
  and only for a step later than the last one accepted for that account, so a code read over a
  shoulder or replayed from a log cannot be used a second time.
* Session tokens are 256 random bits handed to the client once. Only their SHA-256 is stored:
  the token already has full entropy, so a fast hash is enough and a leaked table grants
  nothing. Sessions expire and logout revokes them.
* Sign-in is throttled per account (:class:`Throttle`): after a few consecutive failures the
  account is locked for a while, so a password cannot be guessed online even with TOTP codes
  observed. Disabling an account revokes its sessions at once (``directory.set_staff_active``) and
  :func:`authenticate` checks ``active`` on every request as well.
* A failed sign-in says nothing about which factor was wrong, and an unknown username still
  costs one password verification, so timing does not reveal which usernames exist.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2 import exceptions as argon2_errors
from argon2 import low_level
from eventlet import tpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import AuthenticationFailed, PasswordChangeRequired
from .models import Staff, StaffSession, as_utc, utcnow

TOTP_INTERVAL = 30
TOTP_DRIFT_STEPS = 1
ISSUER = "WBS"

# OWASP's first Argon2id recommendation (m=19 MiB, t=2, p=1) rounded up.
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 64 * 1024
DEFAULT_PARALLELISM = 1


@dataclass(frozen=True)
class HashingCost:
    time_cost: int = DEFAULT_TIME_COST
    memory_kib: int = DEFAULT_MEMORY_KIB
    parallelism: int = DEFAULT_PARALLELISM

    @property
    def weaker_than_default(self) -> bool:
        return (
            self.time_cost < DEFAULT_TIME_COST
            or self.memory_kib < DEFAULT_MEMORY_KIB
            or self.parallelism < DEFAULT_PARALLELISM
        )


class Passwords:
    """Argon2id hashing and verification, off the eventlet hub."""

    def __init__(self, cost: HashingCost = HashingCost()):
        self.cost = cost
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_kib,
            parallelism=cost.parallelism,
            type=low_level.Type.ID,
        )
        # Verified against when the username is unknown, to keep timing uniform.
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return tpool.execute(self._hasher.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(secrets.token_hex(16))
            password_hash = self._dummy_hash
            tpool.execute(self._safe_verify, password_hash, password)
            return False
        return tpool.execute(self._safe_verify, password_hash, password)

    def _safe_verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2_errors.VerificationError, argon2_errors.InvalidHashError):
            return False


def new_password() -> str:
    """An initial password with about 96 bits of entropy, readable enough to type once."""
    return secrets.token_urlsafe(12)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def otpauth_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL).provisioning_uri(name=username, issuer_name=ISSUER)


def totp_step(now: dt.datetime) -> int:
    return int(now.timestamp()) // TOTP_INTERVAL


def accept_totp(secret: str, code: str, last_step: int | None, now: dt.datetime) -> int | None:
    """The step ``code`` belongs to if it is valid now and newer than ``last_step``, else None."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    current = totp_step(now)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * TOTP_INTERVAL), code):
            if last_step is not None and step <= last_step:
                return None  # replayed, or older than a code already used
            return step
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    token: str
    expires_at: dt.datetime
    staff_id: str


@dataclass(frozen=True)
class Throttle:
    """Sign-in throttling per account: after ``max_failures`` consecutive failures the account
    refuses every sign-in (even a correct one) for ``lock_minutes``, doubling with each further
    failure up to a day. Per account, not per address: staff may share a NAT, and addresses
    are not recorded anyway."""

    max_failures: int = 5
    lock_minutes: int = 15

    def lock_for(self, failures: int) -> dt.timedelta | None:
        if failures < self.max_failures:
            return None
        return min(dt.timedelta(minutes=self.lock_minutes * 2 ** (failures - self.max_failures)),
                   dt.timedelta(days=1))


def login(
    session: Session,
    passwords: Passwords,
    username: str,
    password: str,
    otp: str,
    *,
    ttl: dt.timedelta,
    now: dt.datetime | None = None,
    throttle: Throttle = Throttle(),
) -> SignedIn | None:
    """Check all three factors and open a session; None when refused.

    Returns rather than raises on refusal so the caller commits the failure count (a raise
    would roll it back, and throttling would never bite). A locked account is refused without
    looking at the factors, with the same answer as a wrong password. Sign-ins and refusals of
    known accounts go into the audit chain.
    """
    from . import audit  # the audit chain imports models only; kept local to avoid a cycle

    now = now or utcnow()
    staff = session.scalar(select(Staff).where(Staff.username == (username or "").strip().lower()))
    usable = staff is not None and staff.active
    password_ok = passwords.verify(staff.password_hash if usable else None, password or "")
    if staff is None:
        return None
    # Lock the account row before checking the code: two sign-ins racing with the same code
    # would otherwise both read the old last_totp_step and both succeed.
    session.refresh(staff, with_for_update=True)
    locked = staff.locked_until is not None and as_utc(staff.locked_until) > now
    step = accept_totp(staff.totp_secret, otp, staff.last_totp_step, now) if usable and password_ok and not locked else None
    if step is None:
        if not locked:
            staff.failed_logins = (staff.failed_logins or 0) + 1
            lock = throttle.lock_for(staff.failed_logins)
            if lock is not None:
                staff.locked_until = now + lock
        audit.append(session, staff.id, audit.SIGN_IN_FAILED, None, now=now,
                     reason_code="locked" if locked else "factors")
        return None
    staff.last_totp_step = step
    staff.failed_logins = 0
    staff.locked_until = None
    token = secrets.token_urlsafe(32)
    expires_at = now + ttl
    session.add(StaffSession(token_hash=token_hash(token), staff_id=staff.id, created_at=now, expires_at=expires_at))
    audit.append(session, staff.id, audit.SIGN_IN, None, now=now)
    return SignedIn(token, expires_at, staff.id)


def authenticate(session: Session, token: str | None, now: dt.datetime | None = None, *,
                 changing_password: bool = False) -> Staff:
    """The active staff member a bearer token belongs to. Raises :class:`AuthenticationFailed`;
    :class:`PasswordChangeRequired` for an account still on a one-time password, unless this is
    the request that changes it (``changing_password``)."""
    if not token:
        raise AuthenticationFailed("Sign-in required")
    now = now or utcnow()
    row = session.get(StaffSession, token_hash(token))
    if row is None or row.revoked or as_utc(row.expires_at) <= now:
        raise AuthenticationFailed("Sign-in required")
    staff = session.get(Staff, row.staff_id)
    if staff is None or not staff.active:
        raise AuthenticationFailed("Sign-in required")
    if staff.must_change_password and not changing_password:
        raise PasswordChangeRequired()
    return staff


def logout(session: Session, token: str | None) -> None:
    """Revoke the session; unknown or already revoked tokens are fine (logout is idempotent)."""
    if not token:
        return
    row = session.get(StaffSession, token_hash(token))
    if row is not None:
        row.revoked = True

"""Passwords, TOTP (with replay refused) and hashed, expiring, revocable sessions."""
import datetime as dt

import pyotp
import pytest

from verification import auth, directory
from verification.errors import AuthenticationFailed
from verification.models import Staff, StaffSession

NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)

TTL = dt.timedelta(hours=8)


def code_at(secret, when):
    return pyotp.TOTP(secret).at(when)


def test_passwords_are_argon2id_and_verify(passwords):
    h = passwords.hash("correct horse")
    assert h.startswith("$argon2id$")
    assert passwords.verify(h, "correct horse")
    assert not passwords.verify(h, "wrong horse")
    assert not passwords.verify("not-a-hash", "correct horse")
    assert not passwords.verify(None, "anything")  # unknown user: still costs a verification


def test_default_cost_is_not_the_weakened_test_cost(insecure_fast_password_hashing):
    assert not auth.HashingCost().weaker_than_default
    assert insecure_fast_password_hashing["cost"].weaker_than_default


def test_totp_accepts_current_and_adjacent_step_only():
    secret = pyotp.random_base32()
    step = auth.totp_step(NOW)
    assert auth.accept_totp(secret, code_at(secret, NOW), None, NOW) == step
    assert auth.accept_totp(secret, code_at(secret, NOW - dt.timedelta(seconds=30)), None, NOW) == step - 1
    assert auth.accept_totp(secret, code_at(secret, NOW - dt.timedelta(seconds=90)), None, NOW) is None
    assert auth.accept_totp(secret, "abcdef", None, NOW) is None
    assert auth.accept_totp(secret, "", None, NOW) is None


def test_totp_code_cannot_be_replayed():
    secret = pyotp.random_base32()
    code = code_at(secret, NOW)
    step = auth.accept_totp(secret, code, None, NOW)
    assert auth.accept_totp(secret, code, step, NOW) is None
    # nor can an older (still in-window) code after a newer one was used
    older = code_at(secret, NOW - dt.timedelta(seconds=30))
    assert auth.accept_totp(secret, older, step, NOW) is None
    # the next step's code is fine
    later = NOW + dt.timedelta(seconds=30)
    assert auth.accept_totp(secret, code_at(secret, later), step, later) == step + 1


def _account(session, passwords):
    directory.add_unit(session, "itjen", "Inspektorat Jenderal", None, True)
    return directory.add_staff(session, passwords, "ani", "ani@example.org", "itjen", "inspector")


def test_login_needs_all_three_factors_and_rejects_replayed_code(session, passwords):
    acct = _account(session, passwords)
    code = code_at(acct["totp_secret"], NOW)
    assert auth.login(session, passwords, "ani", "wrong", code, ttl=TTL, now=NOW) is None
    assert auth.login(session, passwords, "nobody", acct["password"], code, ttl=TTL, now=NOW) is None
    assert auth.login(session, passwords, "ani", acct["password"], "000000" if code != "000000" else "111111", ttl=TTL, now=NOW) is None
    signed = auth.login(session, passwords, "ani", acct["password"], code, ttl=TTL, now=NOW)
    assert signed.expires_at == NOW + TTL
    assert auth.login(session, passwords, "ani", acct["password"], code, ttl=TTL, now=NOW + dt.timedelta(seconds=5)) is None  # same code again: replay


def test_session_token_is_stored_hashed_expires_and_is_revoked_by_logout(session, passwords):
    acct = _account(session, passwords)
    signed = auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], NOW), ttl=TTL, now=NOW)
    session.flush()
    rows = session.query(StaffSession).all()
    assert len(rows) == 1 and rows[0].token_hash != signed.token and len(rows[0].token_hash) == 64
    assert auth.authenticate(session, signed.token, now=NOW).username == "ani"
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(session, signed.token, now=NOW + TTL)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(session, "forged", now=NOW)
    auth.logout(session, signed.token)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(session, signed.token, now=NOW)


def test_deactivated_staff_cannot_sign_in_or_use_a_session(session, passwords):
    acct = _account(session, passwords)
    signed = auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], NOW), ttl=TTL, now=NOW)
    session.get(Staff, acct["staff_id"]).active = False
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(session, signed.token, now=NOW)
    later = NOW + dt.timedelta(minutes=1)
    assert auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], later), ttl=TTL, now=later) is None


def test_otpauth_uri_enrols_the_same_secret(session, passwords):
    acct = _account(session, passwords)
    parsed = pyotp.parse_uri(acct["otpauth_uri"])
    assert acct["otpauth_uri"].startswith("otpauth://totp/")
    assert parsed.secret == acct["totp_secret"]


def test_sign_in_is_throttled_per_account_and_audited(session, passwords):
    acct = _account(session, passwords)
    throttle = auth.Throttle(max_failures=3, lock_minutes=10)
    for i in range(3):
        at = NOW + dt.timedelta(seconds=i)
        assert auth.login(session, passwords, "ani", "wrong", code_at(acct["totp_secret"], at),
                          ttl=TTL, now=at, throttle=throttle) is None
    # locked: even all three right factors are refused, with the same answer
    at = NOW + dt.timedelta(minutes=1)
    assert auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], at),
                      ttl=TTL, now=at, throttle=throttle) is None
    # the lock expires; a success resets the count
    at = NOW + dt.timedelta(minutes=11)
    assert auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], at),
                      ttl=TTL, now=at, throttle=throttle) is not None
    assert session.get(Staff, acct["staff_id"]).failed_logins == 0
    from verification import audit
    actions = [e.action for e in session.query(audit.AuditEntry).order_by(audit.AuditEntry.seq)]
    assert actions == ["sign_in_failed"] * 4 + ["sign_in"]
    assert audit.verify(session).ok


def test_disabling_an_account_revokes_its_sessions_at_once(session, passwords):
    acct = _account(session, passwords)
    signed = auth.login(session, passwords, "ani", acct["password"], code_at(acct["totp_secret"], NOW), ttl=TTL, now=NOW)
    session.flush()
    result = directory.set_staff_active(session, "ani", False)
    assert result["sessions_revoked"] == 1
    directory.set_staff_active(session, "ani", True)
    with pytest.raises(AuthenticationFailed):  # re-enabling does not bring the old session back
        auth.authenticate(session, signed.token, now=NOW)

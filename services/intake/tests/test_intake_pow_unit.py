"""Proof-of-work challenge issue and verification (single use is tested in integration)."""

import hashlib

import pytest

from intake import pow as powmod
from intake.pow import PowRejected, check_proof, issue_challenge, solve

KEY = b"p" * 32
NOW = 1_800_000_000


def reason(header, bits=8, now=NOW + 1, key=KEY):
    with pytest.raises(PowRejected) as info:
        check_proof(header, key, bits, now)
    return info.value.reason


def test_solved_challenge_is_accepted():
    challenge, expires = issue_challenge(KEY, NOW, 300)
    assert expires == NOW + 300
    nonce = solve(challenge, 8)
    proof = check_proof(f"{challenge}:{nonce}", KEY, 8, NOW + 1)
    assert proof.challenge == challenge and proof.expires_at == expires
    assert proof.digest == hashlib.sha256(challenge.encode()).hexdigest()
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    assert digest[0] == 0  # 8 leading zero bits, as the contract defines


def test_leading_zero_bits():
    assert powmod.leading_zero_bits(b"\x00\x00\xff") == 16
    assert powmod.leading_zero_bits(b"\x00\x01") == 15
    assert powmod.leading_zero_bits(b"\x80") == 0


def test_rejections():
    challenge, _ = issue_challenge(KEY, NOW, 300)
    nonce = solve(challenge, 8)
    assert reason(None) == "missing"
    assert reason("") == "missing"
    assert reason(challenge) == "malformed"
    assert reason(f"{challenge}:abc") == "malformed"
    assert reason(f"{challenge}:-1") == "malformed"
    assert reason(f"zz{challenge[2:]}:{nonce}") == "malformed"
    assert reason(f"{challenge}:{'9' * 21}") == "malformed"
    assert reason("ab:1") == "malformed"
    assert reason(f"{challenge}:{nonce}", key=b"q" * 32) == "unknown"
    forged = challenge[:40] + ("0" if challenge[40] != "0" else "1") + challenge[41:]
    assert reason(f"{forged}:{nonce}") == "unknown"
    assert reason(f"{challenge}:{nonce}", now=NOW + 300) == "expired"
    # a nonce good for 8 bits is (almost surely) not good for 24
    assert reason(f"{challenge}:{nonce}", bits=24) == "wrong"


def test_wrong_nonce_is_rejected():
    challenge, _ = issue_challenge(KEY, NOW, 300)
    bad = 0
    while powmod.solves(challenge, str(bad), 12):
        bad += 1
    assert reason(f"{challenge}:{bad}", bits=12) == "wrong"


def test_zero_bits_accepts_any_nonce_but_still_checks_the_mac():
    challenge, _ = issue_challenge(KEY, NOW, 300)
    assert check_proof(f"{challenge}:0", KEY, 0, NOW).challenge == challenge

"""Read grants: only verification's key can mint one, and it opens exactly what it names."""
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wbs_plumbing.config import ConfigError
from wbs_plumbing.grants import GrantError, GrantSigner, GrantVerifier

REPORT = "0b7c2f7e-2a7e-4d55-9a57-0d8c1d5f2b11"
CASE = "5b0f7d6a-1d8e-4f44-8f5e-6e2f0c9a1b22"


@pytest.fixture
def pair(tmp_path):
    config = {"WBS_DATA_DIR": str(tmp_path)}
    return GrantSigner.from_config(config), GrantVerifier.from_config(config)


def test_a_grant_opens_what_it_names(pair):
    signer, verifier = pair
    token = signer.issue(sub="staff-1", case_id=CASE, report_id=REPORT, scope=["content", "evidence"])
    claims = verifier.check(token, report_id=REPORT, scope="evidence")
    assert claims["sub"] == "staff-1" and claims["case_id"] == CASE


@pytest.mark.parametrize("report_id, scope, message_id, reason", [
    ("11111111-2a7e-4d55-9a57-0d8c1d5f2b11", "content", None, "another report"),
    (REPORT, "messages", None, "does not cover messages"),
])
def test_a_grant_refuses_what_it_does_not_name(pair, report_id, scope, message_id, reason):
    signer, verifier = pair
    token = signer.issue(sub="s", case_id=CASE, report_id=REPORT, scope=["content"])
    with pytest.raises(GrantError, match=reason):
        verifier.check(token, report_id=report_id, scope=scope, message_id=message_id)


def test_message_lists_limit_a_reporter_grant(pair):
    signer, verifier = pair
    token = signer.issue(sub="reporter", case_id=CASE, report_id=REPORT, scope=["messages"],
                         message_ids=["m1"])
    verifier.check(token, report_id=REPORT, scope="messages", message_id="m1")
    with pytest.raises(GrantError, match="this message"):
        verifier.check(token, report_id=REPORT, scope="messages", message_id="internal-note")


def test_expired_forged_and_garbled_grants_fail(pair):
    signer, verifier = pair
    old = signer.issue(sub="s", case_id=CASE, report_id=REPORT, scope=["content"], now=1000.0)
    with pytest.raises(GrantError, match="expired"):
        verifier.check(old, report_id=REPORT, scope="content")
    forger = GrantSigner(Ed25519PrivateKey.generate())
    forged = forger.issue(sub="s", case_id=CASE, report_id=REPORT, scope=["content"])
    with pytest.raises(GrantError, match="signature"):
        verifier.check(forged, report_id=REPORT, scope="content")
    good = signer.issue(sub="s", case_id=CASE, report_id=REPORT, scope=["content"])
    body, sig = good.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    for token in (None, "", "x", "a.b.c", tampered):
        with pytest.raises(GrantError):
            verifier.check(token, report_id=REPORT, scope="content")


def test_production_needs_an_explicit_public_key(tmp_path, pair):
    signer, _ = pair
    production = {"WBS_ENV": "production", "WBS_DATA_DIR": str(tmp_path / "empty")}
    with pytest.raises(ConfigError, match="WBS_GRANT_PUBLIC_KEY"):
        GrantVerifier.from_config(production)
    verifier = GrantVerifier.from_config({**production, "WBS_GRANT_PUBLIC_KEY": signer.public_key_hex})
    token = signer.issue(sub="s", case_id=CASE, report_id=REPORT, scope=["content"])
    assert verifier.check(token, report_id=REPORT, scope="content")["sub"] == "s"
    with pytest.raises(ConfigError):
        GrantSigner.from_config(production)


# -- signed commands ----------------------------------------------------------------------------

def _command_pair(tmp_path, issuer="intake"):
    from wbs_plumbing.grants import CommandSigner, CommandVerifier
    config = {"WBS_DATA_DIR": str(tmp_path)}
    return CommandSigner.from_config(config, issuer), CommandVerifier.from_config(config, ("intake", "admin"))


def test_a_command_opens_only_its_rpc_its_arguments_and_its_issuers(tmp_path):
    from wbs_plumbing.grants import CommandSigner, GrantError
    signer, verifier = _command_pair(tmp_path)
    token = signer.issue("discard_report", report_id="r-1")
    assert verifier.check(token, "discard_report", ("intake",), report_id="r-1")["iss"] == "intake"
    refusals = [
        (token, "discard_report", ("intake",), {"report_id": "r-2"}, "other arguments"),
        (token, "run_retention", ("intake",), {"report_id": "r-1"}, "not for run_retention"),
        (token, "discard_report", ("admin",), {"report_id": "r-1"}, "may not be asked by"),
        (None, "discard_report", ("intake",), {"report_id": "r-1"}, "missing or malformed"),
        (token[:-4] + "AAAA", "discard_report", ("intake",), {"report_id": "r-1"}, "does not verify"),
    ]
    for bad, command, issuers, bind, reason in refusals:
        with pytest.raises(GrantError, match=reason):
            verifier.check(bad, command, issuers, **bind)
    # a key of its own that claims to be intake is not intake's key
    forger = CommandSigner.from_config({"WBS_DATA_DIR": str(tmp_path / "elsewhere")}, "intake")
    with pytest.raises(GrantError, match="does not verify"):
        verifier.check(forger.issue("discard_report", report_id="r-1"), "discard_report",
                       ("intake",), report_id="r-1")
    old = signer.issue("discard_report", now=1000.0, report_id="r-1")
    with pytest.raises(GrantError, match="expired"):
        verifier.check(old, "discard_report", ("intake",), report_id="r-1")


def test_production_needs_the_command_public_key(tmp_path):
    from wbs_plumbing.config import ConfigError
    from wbs_plumbing.grants import CommandSigner, CommandVerifier
    with pytest.raises(ConfigError, match="WBS_ADMIN_COMMAND_PUBLIC_KEY"):
        CommandVerifier.from_config({"WBS_ENV": "production", "WBS_DATA_DIR": str(tmp_path)}, ("admin",))
    with pytest.raises(ConfigError, match="never generates"):
        CommandSigner.from_config({"WBS_ENV": "production", "WBS_DATA_DIR": str(tmp_path)}, "admin")


def test_production_takes_the_command_keys_from_the_environment(tmp_path, monkeypatch):
    from wbs_plumbing.grants import CommandSigner, CommandVerifier
    signer = CommandSigner.from_config({"WBS_DATA_DIR": str(tmp_path)}, "admin")
    monkeypatch.setenv("WBS_ADMIN_COMMAND_PUBLIC_KEY", signer.public_key_hex)
    monkeypatch.setenv("WBS_ADMIN_COMMAND_KEY_FILE", str(tmp_path / "command-admin.key"))
    (tmp_path / "command-admin.key").chmod(0o600)
    production = {"WBS_ENV": "production", "WBS_DATA_DIR": str(tmp_path / "elsewhere")}
    verifier = CommandVerifier.from_config(production, ("admin",))
    token = CommandSigner.from_config(production, "admin").issue("run_retention")
    assert verifier.check(token, "run_retention", ("admin",))["iss"] == "admin"

"""`wbs audit verify` against a running verification service: exit 0 on an intact chain, non-zero
naming the first bad entry after a row was altered, removed or inserted (issue 4, point 6)."""
import subprocess
import sys
from pathlib import Path

import pyotp
import requests
import sqlalchemy
from nameko.testing.services import entrypoint_hook
from tests.signed import signed_hook

from verification.service import VerificationService

WBS = str(Path(sys.executable).parent / "wbs")


def wbs(amqp_uri, *args):
    return subprocess.run([WBS, *args], capture_output=True, text=True, timeout=120,
                          env={"AMQP_URI": amqp_uri, "PATH": "/usr/bin:/bin"})


def test_wbs_audit_verify_names_the_first_bad_entry(container_factory, service_config, insecure_fast_password_hashing):
    config = service_config("verification", **insecure_fast_password_hashing["config"])
    container = container_factory(VerificationService, config)
    container.start()
    with signed_hook(container, "seed_demo") as seed_demo:
        demo = seed_demo()
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    account = demo["inspector"]
    for offset in (0, 30):  # two sign-ins (each code once), then one refused attempt
        code = pyotp.TOTP(account["totp_secret"]).at(__import__("time").time() + offset)
        assert requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
            "username": account["username"], "password": account["password"], "otp": code}).status_code == 200
    requests.post(f"{base}/api/v1/auth/login", timeout=10, json={"username": account["username"],
                                                                 "password": "wrong", "otp": "000000"})
    uri = config["AMQP_URI"]
    intact = wbs(uri, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "intact: 3 entries" in intact.stdout

    engine = sqlalchemy.create_engine(config["DATABASE_URL"], poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as db:
            db.execute(sqlalchemy.text("UPDATE audit_log SET actor = 'forged' WHERE seq = 2"))
        altered = wbs(uri, "audit", "verify")
        assert altered.returncode == 1 and "entry 2" in altered.stderr and "Traceback" not in altered.stderr
        with engine.begin() as db:
            db.execute(sqlalchemy.text("DELETE FROM audit_log WHERE seq = 2"))
        removed = wbs(uri, "audit", "verify")
        assert removed.returncode == 1 and "entry 2" in removed.stderr
    finally:
        engine.dispose()

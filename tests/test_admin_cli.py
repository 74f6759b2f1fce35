"""`wbs unit import|list`, `wbs staff import|list`, `wbs inspector reset-password|reset-totp`
against a running verification service on a real broker, with the example directories in
deploy/examples/."""
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import requests

from verification.service import VerificationService

WBS = str(Path(sys.executable).parent / "wbs")
EXAMPLES = Path(__file__).resolve().parents[1] / "deploy" / "examples"


def wbs(config, *args, timeout=300):
    return subprocess.run([WBS, *args], capture_output=True, text=True, timeout=timeout,
                          env={"AMQP_URI": config["AMQP_URI"], "PATH": "/usr/bin:/bin", "WBS_ENV": "development",
                               "WBS_DATA_DIR": config["WBS_DATA_DIR"]})


def test_bulk_directory_and_resets_through_the_command(container_factory, service_config, tmp_path):
    config = service_config("verification", ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=8, ARGON2_PARALLELISM=1)
    container_factory(VerificationService, config).start()

    started = time.monotonic()
    first = wbs(config, "unit", "import", str(EXAMPLES / "election-commission-units.csv"))
    took = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert "557 added, 0 changed, 0 unchanged" in first.stdout
    print(f"imported 557 units in {took:.1f} s")
    again = wbs(config, "unit", "import", str(EXAMPLES / "election-commission-units.csv"))
    assert "0 added, 0 changed, 557 unchanged" in again.stdout, again.stdout + again.stderr
    assert wbs(config, "unit", "import", str(EXAMPLES / "ministry-units.csv")).returncode == 0

    edited = tmp_path / "edited.csv"
    edited.write_text("code,name,parent,inspectorate,timezone\n"
                      "kpu-papua-01,KPU Kota Jayapura,kpu-papua,false,Asia/Jayapura\n"
                      "kpu-aceh-02,KPU Kabupaten Aceh Besar,kpu-sumatera-utara,false,\n")
    changed = wbs(config, "unit", "import", str(edited))
    assert "0 added, 2 changed" in changed.stdout and "kpu-aceh-02: renamed, moved" in changed.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,parent,inspectorate,timezone\nnew-unit,Baru,itama-kpu,false,\n"
                   "kpu-x,,nowhere,false,Europe/Paris\nkpu-aceh,KPU Aceh,kpu-aceh-01,false,\n")
    refused = wbs(config, "unit", "import", str(bad))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{bad}:3:" in refused.stderr and f"{bad}:4:" in refused.stderr and f"{bad}:2:" not in refused.stderr
    assert "new-unit" not in wbs(config, "unit", "list").stdout                # nothing imported

    listing = wbs(config, "unit", "list").stdout.splitlines()
    assert any(l.startswith("itama-kpu") for l in listing) and any("kpu-papua-01" in l and "WIT" in l for l in listing)

    secrets_file = tmp_path / "secrets.json"
    staff = wbs(config, "staff", "import", str(EXAMPLES / "election-commission-staff.csv"), "--secrets",
                str(secrets_file))
    assert staff.returncode == 0, staff.stderr
    assert str(secrets_file) in staff.stdout and "password" not in staff.stdout.lower().replace("passwords", "")
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    created = {a["username"]: a for a in json.loads(secrets_file.read_text())}
    assert sorted(created) == ["admin.kpu", "agus.kpu", "dewi.kpu", "rina.kpu", "yohana.kpu"]
    assert "rina.kpu" in wbs(config, "staff", "list", "--unit", "itwil-1-kpu").stdout

    reset = wbs(config, "inspector", "reset-password", "rina.kpu")
    assert reset.returncode == 0, reset.stderr
    password = reset.stdout.split("one-time password:")[1].split()[0]
    totp = wbs(config, "inspector", "reset-totp", "rina.kpu")
    secret = pyotp.parse_uri(totp.stdout.split("new authenticator:")[1].split()[0]).secret
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    old = requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "username": "rina.kpu", "password": password, "otp": pyotp.TOTP(created["rina.kpu"]["totp_secret"]).now()})
    assert old.status_code == 401
    signed = requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "username": "rina.kpu", "password": password, "otp": pyotp.TOTP(secret).now()})
    assert signed.status_code == 200
    token = {"Authorization": f"Bearer {signed.json()['token']}"}
    assert requests.get(f"{base}/api/v1/cases", headers=token, timeout=10).status_code == 403   # change it first

"""Backup and restore, performed as deploy/RUNBOOK.md describes, on PostgreSQL and S3 (moto).

Two reports with evidence go in; a backup is taken (pg_dump of each service database, a copy of
the bucket, the key files); one report is crypto-shredded (its case ended, retention 0 days,
`wbs retention run`); a second backup is taken. Each backup is restored into new databases and
a new bucket, with the key files as they are now (a key-file backup is replaced at every
rotation: deploy/RUNBOOK.md), and the services are started on them:

* the backup taken after the shredding restores a working system: the inspector reads the
  narrative, downloads identical evidence, and `wbs audit verify` passes; nothing of the
  shredded report can be read;
* the backup taken before the shredding restores nothing of the shredded report: its data key
  was wrapped under the key-encryption key the shredding destroyed.
"""
import io
import json
import os
import secrets
import shutil
import subprocess
import time

import pytest
import requests
from minio import Minio

from tests.fixtures import wait_until
from tests.stack import SERVICES, Stack
from tests.test_end_to_end import enrol, sign_in

EXTRA = {"RETENTION_NOT_ACTIONABLE_DAYS": "0", "KEY_ROTATION_GRACE_SECONDS": "0", "ARGON2_TIME_COST": "1",
         "ARGON2_MEMORY_KIB": "8192", "ARGON2_PARALLELISM": "1"}


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def s3_client(s3):
    return Minio(s3["endpoint"], access_key=s3["access_key"], secret_key=s3["secret_key"], secure=False)


def back_up(stack, databases, s3, bucket, target):
    """pg_dump each database, copy every object (all versions' latest) and the key files."""
    target.mkdir()
    for service, url in databases.items():
        subprocess.run(["pg_dump", "--format=custom", f"--file={target / service}.dump", libpq(url)], check=True)
    client = s3_client(s3)
    objects = target / "bucket"
    objects.mkdir()
    for item in client.list_objects(bucket, recursive=True):
        client.fget_object(bucket, item.object_name, str(objects / item.object_name.replace("/", "%2F")))
    keys = target / "keys"
    keys.mkdir()
    for path in stack.data_dir.iterdir():
        if path.is_file():
            shutil.copy2(path, keys / path.name)


def restore(backup, pg_database, label, s3, bucket):
    """New databases from the dumps, a new bucket from the copy; returns the database URLs."""
    databases = {}
    for service in SERVICES:
        url = pg_database(f"{label}-{service}")
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={libpq(url)}", str(backup / f"{service}.dump")],
                       check=True)
        databases[service] = url
    client = s3_client(s3)
    client.make_bucket(bucket)
    for path in (backup / "bucket").iterdir():
        client.fput_object(bucket, path.name.replace("%2F", "/"), str(path))
    return databases


def stack_on(tmp_path, name, rabbit_uri, databases, smtp_sink, s3, bucket, key_files):
    stack = Stack(tmp_path / name, rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port),
                  s3=s3, s3_bucket=bucket, extra_env=EXTRA)
    for path in key_files.iterdir():
        shutil.copy2(path, stack.data_dir / path.name)
    return stack


def submit(stack, unit, narrative, files):
    report = {"unit": unit, "category": "procurement", "title": "Pengadaan diatur",
              "description": narrative, "parties": [{"name": "Pak Q"}],
              "reporter": {"relationship": "employee", "involved": False}, "good_faith": True}
    multipart = [("report", (None, json.dumps(report), "application/json"))] + [
        ("evidence", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files.items()]
    response = requests.post(f"{stack.intake_url}/api/v1/reports", files=multipart, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["report_id"]


def sign_in_again(stack, account):
    """Sign in on a restored system with the next time step's code: the restored database
    remembers the step already used on the live one (a code works once)."""
    response = requests.post(f"{stack.console_url}/api/v1/auth/login", timeout=30, json={
        "username": account["username"], "password": account["password"],
        "otp": account["totp"].at(time.time() + 30)})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def retention_run(stack) -> str:
    """`wbs retention run`'s output; a run that failed (a busy broker) is tried again by the caller."""
    try:
        return stack.wbs("retention", "run")
    except RuntimeError:
        return ""


def case_of(stack, auth, narrative):
    for summary in requests.get(f"{stack.console_url}/api/v1/cases", headers=auth, timeout=10).json()["cases"]:
        case = requests.get(f"{stack.console_url}/api/v1/cases/{summary['case_id']}", headers=auth, timeout=30)
        if narrative in case.text:
            return case.json()
    return None


@pytest.mark.e2e
def test_backup_restores_a_working_system_and_nothing_of_a_shredded_report(
        tmp_path, rabbit_uri, pg_database, smtp_sink, s3_server, s3_bucket):
    kept_text, shred_text = f"NARASI-TETAP-{secrets.token_hex(6)}", f"NARASI-HAPUS-{secrets.token_hex(6)}"
    kept_files = {"kontrak.pdf": b"%PDF-1.4 " + os.urandom(1_500_000), "catatan.txt": b"rapat tanggal 3"}
    shred_files = {"rahasia.bin": os.urandom(200_000)}
    databases = {service: pg_database(service) for service in SERVICES}
    live = Stack(tmp_path / "live", rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port),
                 s3=s3_server, s3_bucket=s3_bucket, extra_env=EXTRA)
    with live.start():
        live.wbs("unit", "add", "bk-itjen", "--name", "Inspektorat Jenderal", "--inspectorate")
        live.wbs("unit", "add", "bk-dit", "--name", "Direktorat", "--parent", "bk-itjen")
        inspector = enrol(live, "bk-inspektur", "bk-itjen")
        submit(live, "bk-dit", kept_text, kept_files)
        shredded_id = submit(live, "bk-dit", shred_text, shred_files)
        auth = sign_in(live, inspector)
        wait_until(lambda: case_of(live, auth, kept_text) and case_of(live, auth, shred_text), timeout=60, interval=1)
        back_up(live, databases, s3_server, s3_bucket, tmp_path / "before-shredding")

        doomed = case_of(live, auth, shred_text)
        ended = requests.post(f"{live.console_url}/api/v1/cases/{doomed['case_id']}/transitions", headers=auth,
                              json={"to": "not_actionable", "reason": "laporan ganda", "sub_reason": "duplicate"},
                              timeout=30)
        assert ended.status_code == 200, ended.text
        wait_until(lambda: shredded_id in retention_run(live), timeout=180, interval=2)
        back_up(live, databases, s3_server, s3_bucket, tmp_path / "after-shredding")
        live.wbs("audit", "verify")
        key_files_now = tmp_path / "after-shredding" / "keys"

    # the backup after the shredding: a working system, identical evidence, an intact audit chain
    restored = stack_on(tmp_path, "restored", rabbit_uri,
                        restore(tmp_path / "after-shredding", pg_database, "r1", s3_server, "wbs-restored-1"),
                        smtp_sink, s3_server, "wbs-restored-1", key_files_now)
    with restored.start():
        auth = sign_in_again(restored, inspector)
        case = case_of(restored, auth, kept_text)
        assert case is not None and kept_text in json.dumps(case, ensure_ascii=False)
        by_name = {item["filename"]: item for item in case["evidence"]}
        for name, data in kept_files.items():
            download = requests.get(f"{restored.console_url}/api/v1/cases/{case['case_id']}/evidence/"
                                    f"{by_name[name]['evidence_id']}", headers=auth, timeout=60)
            assert download.status_code == 200 and download.content == data, name
        assert case_of(restored, auth, shred_text) is None
        assert restored.wbs("audit", "verify").startswith("audit chain intact")  # exit 1 otherwise

    # the backup before the shredding, with today's key files: nothing of the shredded report
    old = stack_on(tmp_path, "restored-old", rabbit_uri,
                   restore(tmp_path / "before-shredding", pg_database, "r0", s3_server, "wbs-restored-0"),
                   smtp_sink, s3_server, "wbs-restored-0", key_files_now)
    with old.start():
        auth = sign_in_again(old, inspector)
        assert case_of(old, auth, shred_text) is None
        cases = requests.get(f"{old.console_url}/api/v1/cases", headers=auth, timeout=10).json()["cases"]
        assert len(cases) == 2  # the cases are there; what they say is not
        for summary in cases:
            case = requests.get(f"{old.console_url}/api/v1/cases/{summary['case_id']}", headers=auth, timeout=30)
            assert shred_text not in case.text
            for item in case.json().get("evidence") or []:
                download = requests.get(f"{old.console_url}/api/v1/cases/{summary['case_id']}/evidence/"
                                        f"{item['evidence_id']}", headers=auth, timeout=60)
                assert download.status_code != 200 or shred_files["rahasia.bin"] not in download.content

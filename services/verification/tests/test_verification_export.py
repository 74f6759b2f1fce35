"""The case export for referral on a running verification service (real broker and PostgreSQL,
storage's shared fake): the ZIP's manifest against the evidence, reach, audit and the event."""
import hashlib
import io
import json
import uuid
import zipfile

import requests

from tests.fakes import VAULT
from tests.signed import signed_hook
from wbs_contracts.events import validate_event

from test_verification_integration import (  # noqa: F401  (fixtures)
    EVIDENCE, NARRATIVE, base_url, broker, config, console_browser, count, db, login, open_one, seed, storage,
    verification, watch,
)

SCAN = bytes(range(256)) * 40 + b"end"  # a second file, many chunks of the fake's 10 bytes


def unzip(answer):
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(answer.content))


def check_manifest(archive):
    """Every file's SHA-256 in manifest.json and SHA256SUMS is the hash of the bytes in the ZIP."""
    names = archive.namelist()
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(f["path"] for f in manifest["files"]) == sorted(set(names) - {"manifest.json", "SHA256SUMS"})
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(archive.read(entry["path"])).hexdigest(), entry["path"]
    sums = {}
    for line in archive.read("SHA256SUMS").decode().splitlines():
        digest, path = line.split("  ", 1)
        sums[path] = digest
    assert set(sums) == set(names) - {"SHA256SUMS"}
    assert all(hashlib.sha256(archive.read(p)).hexdigest() == d for p, d in sums.items())
    return manifest


def test_the_export_holds_the_case_and_every_evidence_file_with_matching_hashes_audited_and_announced(
        verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    VAULT.evidence["ev-2"] = {"report_id": None, "data": SCAN, "filename": "pindaian/nota.png",
                              "media_type": "image/png"}
    event, case_id = open_one(verification, broker, db)
    collect = watch(broker)
    inspector = login(base, demo["inspector"])

    answer = requests.get(f"{base}/api/v1/cases/{case_id}/export", headers=inspector, timeout=30, stream=True)
    assert answer.headers.get("Transfer-Encoding") == "chunked"    # sent as it is built
    reference = count(db, "SELECT reference FROM cases WHERE case_id = :c", c=case_id)
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{reference.replace("/", "-")}.zip"'
    archive = unzip(answer)
    manifest = check_manifest(archive)
    assert manifest["reference"] == reference and manifest["exported_by"]["username"] == "inspektur"
    evidence = {n: archive.read(n) for n in archive.namelist() if n.startswith("evidence/")}
    assert evidence == {"evidence/01-bukti kontrak.pdf": EVIDENCE["ev-1"][0], "evidence/02-pindaian_nota.png": SCAN}
    by_path = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert by_path["evidence/02-pindaian_nota.png"] == hashlib.sha256(SCAN).hexdigest()
    assert NARRATIVE in archive.read("narrative.txt").decode()
    assert json.loads(archive.read("parties.json"))[0]["name"] == "Budi S."
    summary = archive.read("summary.html").decode()
    assert reference in summary and "Diterima" in summary and "Direktorat Sekolah Menengah Pertama" in summary
    assert " WIB" in summary
    assert [h["to_state"] for h in json.loads(archive.read("history.json"))] == ["received"]
    everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"RAHASIA-PELAPOR" not in everything                    # never the reporter's identity
    # every read went to storage under the exporter's own grant
    me = demo["inspector"]["staff_id"]
    assert {r[-1]["sub"] for r in VAULT.reads if r[0] == "chunk"} == {me}

    assert count(db, "SELECT count(*) FROM audit_log WHERE action = 'case_exported' AND case_id = :c "
                     "AND actor = :a", c=case_id, a=me) == 1
    exported = [b for t, b in collect(1) if t == "case_exported"]
    assert len(exported) == 1
    validate_event("case_exported", exported[0])
    assert {k: v for k, v in exported[0].items() if k not in ("event_id", "occurred_at")} == {
        "schema_version": 1, "case_id": case_id, "reference": reference, "exported_by": me}

    # the console: a link on the case page, and the supervisor who oversees the unit may export too
    page = console_browser(base, demo["supervisor"])
    assert f'href="/cases/{case_id}/export"' in page.get(f"{base}/cases/{case_id}", timeout=10).text
    check_manifest(unzip(page.get(f"{base}/cases/{case_id}/export", timeout=30)))
    assert count(db, "SELECT count(*) FROM audit_log WHERE action = 'case_exported' AND case_id = :c",
                 c=case_id) == 2


def test_a_case_out_of_reach_cannot_be_exported_and_leaves_no_trace(verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)
    outsider = login(base, demo["kpu_inspector"])                   # the election commission's inspector
    foreign = requests.get(f"{base}/api/v1/cases/{case_id}/export", headers=outsider, timeout=10)
    missing = requests.get(f"{base}/api/v1/cases/{uuid.uuid4()}/export", headers=outsider, timeout=10)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert requests.get(f"{base}/api/v1/cases/{case_id}/export", timeout=10).status_code == 401
    with signed_hook(verification, "add_staff") as add_staff:     # same inspectorate, not assigned
        other = add_staff("lain", "lain@example.org", "itjen", "inspector")
    console = console_browser(base, other)
    assert console.get(f"{base}/cases/{case_id}/export", timeout=10).status_code == 404
    assert count(db, "SELECT count(*) FROM audit_log WHERE action = 'case_exported'") == 0
    assert not [r for r in VAULT.reads if r[-1]["sub"] in (demo["kpu_inspector"]["staff_id"], other["staff_id"])]
    assert count(db, "SELECT count(*) FROM outbox WHERE event_type = 'case_exported'") == 0


def test_evidence_that_does_not_match_its_recorded_hash_never_completes_an_archive(
        verification, storage, broker, db, config):
    demo = seed(verification)
    base = base_url(config)
    VAULT.evidence["ev-2"] = {"report_id": None, "data": SCAN, "filename": "nota.png", "media_type": "image/png"}
    event, case_id = open_one(verification, broker, db)
    inspector = login(base, demo["inspector"])
    VAULT.altered.add("ev-1")  # its plaintext no longer matches the SHA-256 recorded at upload
    answer = requests.get(f"{base}/api/v1/cases/{case_id}/export", headers=inspector, timeout=30, stream=True)
    try:
        body = answer.content
    except requests.exceptions.ChunkedEncodingError:
        body = None                                                 # cut short mid-stream
    if body is not None:                                            # or refused before the first byte
        assert answer.status_code == 500 or not zipfile.is_zipfile(io.BytesIO(body))
    # the second file was never read: the export stopped at the first bad one
    assert not [r for r in VAULT.reads if r[0] == "chunk" and r[1] == "ev-2"]

"""The export for referral as a stream (no server): a valid ZIP whose manifest matches every file,
and memory that does not grow with the evidence."""
import datetime as dt
import hashlib
import io
import json
import tracemalloc
import zipfile

import pytest

from verification import export, web

NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)
MIB = 1024 * 1024

CASE = {
    "case_id": "6f1c7f7e-2b1a-4c55-9a0e-0c1d2e3f4a5b", "reference": "WBS/ITAMA-KPU/2026/00042",
    "unit": "kpu-papua", "unit_name": "KPU Provinsi Papua", "zone": {"name": "Asia/Jayapura", "label": "WIT"},
    "category": {"code": "bribery", "label": "Suap / gratifikasi / pemerasan / pungutan liar"},
    "state": {"code": "analysis", "label": "Penelaahan"}, "end_detail": None,
    "assignee": {"display_name": "Inspektur KPU Demo"},
    "created_at": "2026-11-20T01:00:00Z", "updated_at": "2026-11-22T05:30:00Z",
    "title": "Pungutan liar <rekrutmen>", "narrative": "Panitia meminta uang.\nDua kali.",
    "parties": [{"name": "Budi S.", "position": "Panitia", "nip": "198001012005011001"}],
    "occurred": {"from": "2026-10-01"}, "location": "Jayapura",
    "history": [{"at": "2026-11-20T01:00:00Z", "from_state": None, "to_state": "received", "to_label": "Diterima",
                 "reason": None, "detail": None, "actor": "system"}],
}
EXPORTER = {"staff_id": "0b7c3c1e-1111-4222-8333-944455556666", "username": "inspektur-kpu",
            "display_name": "Inspektur KPU Demo"}


def lazy_evidence(size, chunk=MIB, fill=b"x"):
    """``size`` bytes in chunks, each made only when asked for (as storage hands them out)."""
    sent = 0
    while sent < size:
        piece = min(chunk, size - sent)
        yield fill * piece
        sent += piece


def item(name, size, sha):
    return {"evidence_id": name, "filename": name, "media_type": "application/pdf", "size_bytes": size, "sha256": sha}


def test_the_archive_holds_every_part_and_its_manifest_matches_every_file():
    files = {"kontrak.pdf": b"%PDF-1.7 " + bytes(range(256)) * 900, "../../etc/passwd": b"not a path"}
    evidence = [(item(name, len(data), hashlib.sha256(data).hexdigest()), iter([data[:1000], data[1000:]]))
                for name, data in files.items()]
    stream = export.archive(CASE, EXPORTER, evidence, NOW, web.render_document)
    assert not isinstance(stream, (bytes, list))
    zipped = zipfile.ZipFile(io.BytesIO(b"".join(stream)))
    assert zipped.testzip() is None
    names = zipped.namelist()
    assert names == ["summary.html", "narrative.txt", "parties.json", "history.json", "evidence/01-kontrak.pdf",
                     "evidence/02-_.._etc_passwd", "manifest.json", "SHA256SUMS"]
    assert zipped.read("evidence/01-kontrak.pdf") == files["kontrak.pdf"]
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["reference"] == CASE["reference"] and manifest["exported_by"] == EXPORTER
    assert [f["path"] for f in manifest["files"]] == names[:-2]
    for entry in manifest["files"]:
        data = zipped.read(entry["path"])
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size_bytes"] == len(data)
    sums = dict(reversed(line.split("  ", 1)) for line in zipped.read("SHA256SUMS").decode().splitlines())
    assert set(sums) == set(names[:-1])
    assert all(sums[name] == hashlib.sha256(zipped.read(name)).hexdigest() for name in sums)

    summary = zipped.read("summary.html").decode()
    assert "WBS/ITAMA-KPU/2026/00042" in summary and "Penelaahan" in summary and "KPU Provinsi Papua" in summary
    assert "2026-11-20 10:00 WIT" in summary                       # received, in the unit's zone
    assert "&lt;rekrutmen&gt;" in summary and "<rekrutmen>" not in summary
    assert zipped.read("narrative.txt").decode() == "Pungutan liar <rekrutmen>\n\nPanitia meminta uang.\nDua kali.\n"
    assert json.loads(zipped.read("parties.json")) == CASE["parties"]
    assert json.loads(zipped.read("history.json"))[0]["at_local"] == "2026-11-20 10:00 WIT"


def _peak_while_streaming(evidence_bytes):
    """(bytes of ZIP produced, the largest piece handed on, peak traced memory) for one export of
    ``evidence_bytes`` of evidence, consumed piece by piece and thrown away, as a socket would."""
    digest = hashlib.sha256()
    for chunk in lazy_evidence(evidence_bytes):
        digest.update(chunk)
    evidence = [(item("rekaman.mp4", evidence_bytes, digest.hexdigest()), lazy_evidence(evidence_bytes))]
    tracemalloc.start()
    try:
        total = largest = 0
        for piece in export.archive(CASE, EXPORTER, evidence, NOW, web.render_document):
            total += len(piece)
            largest = max(largest, len(piece))
        return total, largest, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_evidence():
    small_total, small_largest, small_peak = _peak_while_streaming(4 * MIB)
    big_total, big_largest, big_peak = _peak_while_streaming(96 * MIB)
    assert big_total > 96 * MIB > small_total
    # each piece handed on is about one evidence chunk, never the archive
    assert big_largest <= MIB + 64 * 1024
    # 24 times the evidence, the same few chunks in memory
    assert big_peak < 6 * MIB
    assert big_peak - small_peak < MIB


@pytest.mark.parametrize("name, expected", [
    ("laporan keuangan.pdf", "evidence/03-laporan keuangan.pdf"),
    ("..\\..\\boot.ini", "evidence/03-_.._boot.ini"),
    ("a/b\x00c", "evidence/03-a_b_c"),
    ("", "evidence/03-ev"),
])
def test_evidence_names_stay_inside_the_evidence_folder(name, expected):
    assert export.evidence_path(3, {"filename": name, "evidence_id": "ev"}) == expected


def test_the_download_is_named_after_the_register_number():
    assert export.filename(CASE) == "WBS-ITAMA-KPU-2026-00042.zip"


def test_an_export_is_audited_and_announced_without_content_and_refused_once_shredded(session, demo):
    from verification import audit, cases
    from verification.errors import Conflict
    from verification.models import AuditEntry, OutboxMessage, Staff
    from wbs_contracts.events import validate_event

    inspector = session.get(Staff, demo["inspector"]["staff_id"])
    case = cases.open_case(session, {"report_id": "1b2c3d4e-0000-4000-8000-000000000001", "unit": "dit-smp",
                                     "category": "bribery"}, now=NOW)
    cases.record_export(session, inspector, case, now=NOW)
    session.flush()
    entry = session.query(AuditEntry).filter_by(action=audit.CASE_EXPORTED).one()
    assert (entry.actor, entry.case_id, entry.detail) == (inspector.id, case.case_id, "{}")
    body = json.loads(session.query(OutboxMessage).filter_by(event_type="case_exported").one().body)
    validate_event("case_exported", body)
    assert (body["case_id"], body["reference"], body["exported_by"]) == (case.case_id, case.reference, inspector.id)
    case.content_destroyed = True
    with pytest.raises(Conflict):
        cases.record_export(session, inspector, case, now=NOW)
    assert session.query(AuditEntry).filter_by(action=audit.CASE_EXPORTED).count() == 1

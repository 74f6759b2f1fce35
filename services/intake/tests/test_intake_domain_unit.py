"""Domain flow with fakes (no servers): streaming to the vault, failure cleanup, form mapping,
settings, and the browser's proof-of-work solver."""

import json
import os
import shutil
import stat
import subprocess
from contextlib import contextmanager

import pytest
from wbs_plumbing.config import ConfigError

from intake import domain, forms
from intake.errors import BadRequest, Unavailable
from intake.pow import issue_challenge, solves
from intake.schemas import ReportInvalid
from intake.settings import Settings
from intake.uploads import FieldPart, FileChunk, FileEnd, FileStart

MIB = 1024 * 1024


class FakeVault:
    def __init__(self, fail_on=None):
        self.calls, self.files, self.content, self.fail_on = [], {}, {}, fail_on

    def _maybe_fail(self, name):
        self.calls.append(name)
        if name == self.fail_on:
            raise Unavailable(name)

    def begin_evidence(self, report_id, filename, media_type):
        self._maybe_fail("begin_evidence")
        upload_id = f"u{len(self.files)}"
        self.files[upload_id] = {"filename": filename, "chunks": [], "done": False}
        return {"upload_id": upload_id, "route": "storage-abc"}

    def append_evidence(self, route, upload_id, chunk):
        self._maybe_fail("append_evidence")
        assert route == "storage-abc"
        self.files[upload_id]["chunks"].append(chunk)

    def finish_evidence(self, route, upload_id):
        self._maybe_fail("finish_evidence")
        self.files[upload_id]["done"] = True
        return {}

    def abort_evidence(self, route, upload_id):
        self.calls.append("abort_evidence")

    def store_report_content(self, report_id, content):
        self._maybe_fail("store_report_content")
        self.content[report_id] = content

    def store_report(self, report_id, content, files):
        self._maybe_fail("store_report")
        self.content[report_id] = content
        results = []
        for item in files:
            upload_id = f"u{len(self.files)}"
            self.files[upload_id] = {"filename": item["filename"], "chunks": [item["data"]], "done": True}
            results.append({"evidence_id": upload_id, "size_bytes": len(item["data"])})
        return results

    def discard_report(self, report_id):
        self.calls.append("discard_report")


class FakeUnits:
    def codes(self):
        return {"dit-smp"}


class FakeSession:
    def __init__(self):
        self.added = []
        self.info = {}

    def add(self, obj):
        self.added.append(obj)


class FakeDb:
    def __init__(self, fail=False):
        self.sessions, self.fail = [], fail

    @contextmanager
    def transaction(self):
        session = FakeSession()
        yield session
        if self.fail:
            raise Unavailable("db")
        self.sessions.append(session)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_config({"WBS_DATA_DIR": str(tmp_path), "WBS_POW_BITS": 0})


REPORT = {
    "unit": "dit-smp", "category": "fraud", "description": "d",
    "parties": [{"name": "p"}], "reporter": {"relationship": "vendor", "involved": False},
    "good_faith": True,
}


def parts(*files, report=REPORT):
    yield FieldPart("report", json.dumps(report).encode())
    for name, data in files:
        yield FileStart("evidence", name, "application/octet-stream")
        for i in range(0, len(data), 64 * 1024):
            yield FileChunk(data[i:i + 64 * 1024])
        yield FileEnd(len(data))


def submit(settings, events, vault=None, db=None):
    vault = vault or FakeVault()
    db = db or FakeDb()
    fields, files = forms.report_parts(events)
    result = domain.submit_report(forms.report_from_json_part(fields), files, units=FakeUnits(),
                                  vault=vault, transaction=db.transaction, settings=settings)
    return result, vault, db


def test_evidence_is_rechunked_to_at_most_one_mib_and_recorded(settings):
    big = os.urandom(3 * MIB + 5)
    result, vault, db = submit(settings, parts(("a", big), ("b", b"small"), ("empty", b"")))
    chunks = vault.files["u0"]["chunks"]
    assert b"".join(chunks) == big and max(map(len, chunks)) == MIB and len(chunks) == 4
    assert len(vault.files) == 2  # the empty file created no upload
    assert result["evidence_count"] == 2
    assert vault.calls[-1] == "store_report_content"
    (session,) = db.sessions
    report_row, outbox_row = session.added
    assert report_row.evidence_count == 2 and report_row.receipt_hash != result["receipt"]
    event = json.loads(outbox_row.body)
    assert event["evidence_count"] == 2 and event["report_id"] == result["report_id"]
    content = json.loads(vault.content[result["report_id"]])
    assert content["description"] == "d"


def test_a_report_with_small_files_is_stored_in_one_call_with_its_content(settings):
    result, vault, db = submit(settings, parts(("a", b"x" * MIB), ("b", b"small"), ("empty", b"")))
    assert vault.calls == ["store_report"]
    assert sorted(f["filename"] for f in vault.files.values()) == ["a", "b"]
    assert result["evidence_count"] == 2
    (session,) = db.sessions
    assert session.added[0].evidence_count == 2 and session.added[0].evidence_bytes == MIB + 5


def test_a_file_over_one_chunk_streams_the_files_held_before_it_and_after(settings):
    big = os.urandom(MIB + 1)
    result, vault, db = submit(settings, parts(("small", b"s"), ("big", big), ("late", b"l")))
    assert vault.calls == ["begin_evidence", "append_evidence", "finish_evidence",  # the held one
                           "begin_evidence", "append_evidence", "append_evidence", "finish_evidence",
                           "begin_evidence", "append_evidence", "finish_evidence", "store_report_content"]
    assert [f["filename"] for f in vault.files.values()] == ["small", "big", "late"]
    assert b"".join(vault.files["u1"]["chunks"]) == big
    assert result["evidence_count"] == 3


@pytest.mark.parametrize("fail_on, size", [("begin_evidence", 2 * MIB), ("append_evidence", 2 * MIB),
                                           ("finish_evidence", 2 * MIB), ("store_report_content", 2 * MIB),
                                           ("store_report", 10)])
def test_any_storage_failure_discards_the_report(settings, fail_on, size):
    vault = FakeVault(fail_on=fail_on)
    with pytest.raises(Unavailable):
        submit(settings, parts(("a", b"x" * size)), vault=vault)
    assert vault.calls[-1] == "discard_report"


def test_a_refused_report_storage_could_not_be_told_about_is_discarded_later(settings, tmp_path):
    """The broker went away while storage was storing the report: the reporter gets the 503 at
    once, the report id is remembered, and the timer's retry discards it once storage answers."""
    from wbs_plumbing.db import make_engine, session_scope
    from intake.models import Base, PendingDiscard

    engine = make_engine(f"sqlite:///{tmp_path / 'intake.db'}")
    Base.metadata.create_all(engine)

    def transaction():
        return session_scope(engine)

    vault = FakeVault()
    vault.store_report = _raising(vault, "store_report", Unavailable("broker", "store_report"))
    with pytest.raises(Unavailable):
        submit(settings, parts(("a", b"x")), vault=vault, db=type("Db", (), {"transaction": staticmethod(transaction)}))
    assert "discard_report" not in vault.calls  # not tried through a broker that is away
    with transaction() as session:
        (pending,) = session.query(PendingDiscard).all()
        report_id = pending.report_id

    vault.discard_report = _raising(vault, "discard_report", Unavailable("timeout", "discard_report"))
    assert domain.retry_discards(vault=vault, transaction=transaction) == 0  # still away: kept
    vault.discarded = []
    vault.discard_report = lambda rid: vault.discarded.append(rid)
    assert domain.retry_discards(vault=vault, transaction=transaction) == 1
    assert vault.discarded == [report_id]
    with transaction() as session:
        assert session.query(PendingDiscard).count() == 0
    engine.dispose()


def _raising(vault, name, exc):
    def call(*args, **kwargs):
        vault.calls.append(name)
        raise exc
    return call


def test_database_failure_discards_the_report(settings):
    vault = FakeVault()
    with pytest.raises(Unavailable):
        submit(settings, parts(("a", b"x")), vault=vault, db=FakeDb(fail=True))
    assert vault.calls[-1] == "discard_report"


def test_invalid_report_touches_no_storage(settings):
    vault = FakeVault()
    with pytest.raises(ReportInvalid):
        submit(settings, parts(("a", b"x"), report={**REPORT, "unit": "zzz"}), vault=vault)
    assert vault.calls == []


def test_field_after_file_and_wrong_part_names(settings):
    def late_field():
        yield from parts(("a", b"x"))
        yield FieldPart("extra", b"1")
    vault = FakeVault()
    with pytest.raises(BadRequest) as info:
        submit(settings, late_field(), vault=vault)
    assert info.value.code == "field_after_file"
    assert vault.calls == []  # the small file was only held: nothing reached storage

    def wrong_name():
        yield FieldPart("report", json.dumps(REPORT).encode())
        yield FileStart("photo", "a", "x/y")
    with pytest.raises(BadRequest):
        submit(settings, wrong_name())
    with pytest.raises(BadRequest):
        submit(settings, iter([FieldPart("other", b"{}")]))
    with pytest.raises(BadRequest):
        submit(settings, iter([FieldPart("report", b"\xff")]))


def test_report_from_form_maps_fields():
    report = forms.report_from_form({
        "unit": b"dit-smp", "category": b"bribery", "description": "pungli \u00e9".encode(),
        "party_name": b"Pak X", "relationship": b"public", "involved": b"yes", "good_faith": b"on",
        "occurred_from": b"2026-01-01", "identity_email": b"a@b.id",
    })
    assert report["parties"] == [{"name": "Pak X", "position": None, "unit": None, "nip": None}]
    assert report["reporter"]["involved"] is True and report["good_faith"] is True
    assert report["reporter"]["identity"]["email"] == "a@b.id"
    assert report["occurred"] == {"from": "2026-01-01", "to": None, "ongoing": None}
    unchecked = forms.report_from_form({"unit": b"dit-smp"})
    assert unchecked["good_faith"] is False and unchecked["parties"] == []
    assert unchecked["reporter"]["involved"] is None


def test_development_generates_a_private_receipt_key_and_reuses_it(tmp_path):
    config = {"WBS_DATA_DIR": str(tmp_path)}
    first = Settings.from_config(config)
    path = tmp_path / "intake-receipt.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings.from_config(config).receipt_key == first.receipt_key
    assert first.receipt_key != first.pow_key
    assert "receipt_key" not in repr(first) and path.read_text().strip() not in repr(first)


def test_production_refuses_to_start_without_a_receipt_key(tmp_path):
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_ENV": "production", "WBS_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_ENV": "production", "WBS_RECEIPT_KEY": "abcd"})
    ok = Settings.from_config({"WBS_ENV": "production", "WBS_RECEIPT_KEY": "ab" * 32})
    assert len(ok.receipt_key) == 32
    assert not (tmp_path / "intake-receipt.key").exists()
    with pytest.raises(ConfigError):
        Settings.from_config({"WBS_RECEIPT_KEY": "ab" * 32, "WBS_POW_BITS": "lots"})


def test_browser_solver_agrees_with_the_server():
    """pow.js (run by Node, as a browser would) finds nonces the server accepts."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is needed to test the browser's proof-of-work script"
    script = os.path.join(os.path.dirname(__file__), "..", "intake", "static", "pow.js")
    challenge, _ = issue_challenge(b"k" * 32, 1_800_000_000, 600)
    out = subprocess.run(
        [node, "-e", f"const p=require({json.dumps(os.path.abspath(script))});"
                     f"process.stdout.write(p.solve({json.dumps(challenge)}, 12) + ' ' + p.sha256hex('abc'))"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    assert solves(challenge, out[0], 12)
    assert out[1] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

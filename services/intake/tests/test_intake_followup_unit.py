"""Follow-up, throttle, catalogues and the receipt check, without servers."""

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from intake import domain, i18n
from intake.models import Report
from intake.schemas import ReportInvalid
from intake.throttle import Throttled, TokenBucket
from intake.uploads import UploadLimits, UploadTooLarge

TRANSLATIONS = Path(domain.__file__).resolve().parent / "translations"


def report(**changes):
    values = dict(report_id="r-1", unit="u", category="c", received_at=dt.datetime(2026, 11, 1, 8, 30),
                  receipt_hash="h", evidence_count=0, evidence_bytes=0, language="id")
    values.update(changes)
    return Report(**values)


class FakeCasework:
    def __init__(self, status):
        self.status, self.asked = status, []

    def report_status(self, report_id, language):
        self.asked.append((report_id, language))
        return self.status


class FakeVault:
    def __init__(self, texts=None):
        self.texts, self.reads, self.stored = texts or {}, [], []

    def read_messages(self, report_id, ids, grant):
        self.reads.append((report_id, tuple(ids), grant))
        return [{"message_id": i, "text": self.texts[i]} for i in ids]

    def store_message(self, report_id, message_id, text):
        self.stored.append((report_id, message_id, text))


def test_before_the_case_exists_the_report_is_received():
    view = domain.follow_up(report(), casework=FakeCasework(None), vault=FakeVault())
    assert view["state"] == {"code": "received", "label": "Laporan diterima"}
    assert view["history"] == [{"code": "received", "label": "Laporan diterima", "at": "2026-11-01T08:30:00Z"}]
    assert view["messages"] == [] and view["language"] == "id"


def test_messages_are_read_with_verifications_grant_in_its_order():
    status = {"state": {"code": "awaiting_reporter", "label": "Please add information"},
              "history": [{"code": "received", "label": "Report received", "at": "a"}],
              "messages": [{"message_id": "m2", "direction": "to_reporter", "at": "t2"},
                           {"message_id": "m1", "direction": "from_reporter", "at": "t1"}],
              "grant": "GRANT"}
    vault = FakeVault({"m1": "answer", "m2": "question"})
    casework = FakeCasework(status)
    view = domain.follow_up(report(), casework=casework, vault=vault, language="en")
    assert casework.asked == [("r-1", "en")]
    assert vault.reads == [("r-1", ("m2", "m1"), "GRANT")]
    assert view["messages"] == [{"direction": "to_reporter", "text": "question", "at": "t2"},
                                {"direction": "from_reporter", "text": "answer", "at": "t1"}]
    assert view["state"]["label"] == "Please add information"


def test_no_grant_means_no_read():
    status = {"state": {"code": "verification", "label": "x"}, "history": [], "messages": [], "grant": None}
    vault = FakeVault()
    domain.follow_up(report(), casework=FakeCasework(status), vault=vault)
    assert vault.reads == []


def test_a_message_is_stored_before_its_event_is_staged():
    order = []

    class Vault(FakeVault):
        def store_message(self, *args):
            order.append("stored")

    class Session:
        info = {}

        def add(self, row):
            order.append(("event", row.event_type))

    from contextlib import contextmanager

    @contextmanager
    def transaction():
        yield Session()

    answer = domain.post_reporter_message("9b2f0c1e-8d4a-4b7e-9c1d-2a3b4c5d6e7f", " hi ", vault=Vault(),
                                          transaction=transaction)
    assert order == ["stored", ("event", "reporter_message_posted")]
    assert len(answer["message_id"]) == 36
    for bad in (None, "", "  ", 5, "x" * 10_001, "\u202e"):
        with pytest.raises(ReportInvalid):
            domain.validate_message(bad)


def test_the_evidence_budget_is_what_the_report_has_left():
    limits = UploadLimits(max_request_bytes=100, max_files=3, max_file_bytes=50, max_report_bytes=80)
    budget = domain.evidence_budget(report(evidence_count=1, evidence_bytes=30), limits)
    assert (budget.max_files, budget.max_report_bytes, budget.max_file_bytes) == (2, 50, 50)
    with pytest.raises(UploadTooLarge):
        domain.evidence_budget(report(evidence_count=3), limits)


def test_token_bucket_admits_a_burst_then_refills():
    now = [0.0]
    bucket = TokenBucket(60, clock=lambda: now[0])  # one a second, burst 6
    for _ in range(6):
        bucket.admit()
    with pytest.raises(Throttled) as info:
        bucket.admit()
    assert info.value.retry_after == 1
    now[0] += 1.0
    bucket.admit()
    TokenBucket(0, clock=lambda: 0.0).admit()  # 0 = off


def test_language_choice_ignores_everything_but_the_page_switch():
    assert i18n.choose(None, None) == ("id", False)
    assert i18n.choose("en", None) == ("en", True)
    assert i18n.choose("en", "en") == ("en", False)
    assert i18n.choose(None, "en") == ("en", False)
    assert i18n.choose("fr", "xx") == ("id", False)
    assert i18n.gettext("id", "Your receipt") == "Nomor tanda terima Anda"
    assert i18n.gettext("en", "Your receipt") == "Your receipt"


def test_every_string_is_translated_and_the_committed_mo_files_are_current():
    """Fresh clones serve the committed .mo files: they must match their .po exactly."""
    template = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    for lang in i18n.LANGUAGES:
        folder = TRANSLATIONS / lang / "LC_MESSAGES"
        catalog = read_po((folder / "messages.po").open("rb"))
        if lang == "id":
            missing = [m.id for m in template if m.id and not catalog.get(m.id).string]
            assert missing == [], f"untranslated: {missing}"
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=True)
        compiled.seek(0)
        expected = {str(m.id): str(m.string) for m in read_mo(compiled) if m.id}
        committed = {str(m.id): str(m.string) for m in read_mo((folder / "messages.mo").open("rb")) if m.id}
        assert committed == expected, f"run services/intake/translations.sh ({lang})"


def test_the_template_catalogue_lists_every_string_of_the_templates(tmp_path):
    root = TRANSLATIONS.parent.parent
    pybabel = Path(sys.executable).with_name("pybabel")
    out = tmp_path / "fresh.pot"
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg", "-k", "N_", "--no-location",
                    "--sort-output", "-o", str(out), "."], cwd=root, check=True, capture_output=True)
    fresh = {m.id for m in read_po(out.open("rb")) if m.id}
    committed = {m.id for m in read_po((TRANSLATIONS / "messages.pot").open("rb")) if m.id}
    assert fresh == committed, "run services/intake/translations.sh"


def test_malformed_and_wrong_receipts_take_the_same_path():
    from intake.receipts import hash_receipt

    looked_up = []

    class Session:
        def scalars(self, query):
            looked_up.append(str(query.compile(compile_kwargs={"literal_binds": True})))

            class Result:
                def first(self):
                    return None
            return Result()

    class Settings:
        receipt_key = b"k" * 32

    from intake.errors import Unauthorized
    for receipt in ("nonsense", None, 42, "BBBB-BBBB-BBBB-BBBB-BBBB"):
        with pytest.raises(Unauthorized):
            domain.open_reporter_session(Session(), receipt, Settings())
    assert len(looked_up) == 4
    assert hash_receipt(b"k" * 32, "A" * 20) in looked_up[0]

"""The shipped email texts come from Babel catalogues: the catalogues are current, every text has
its Indonesian translation, the rendered emails read exactly as written, an administrator's
editor starts from the default's source, and a staff email's subject carries the case's register
reference while a reporter notice never does."""
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from notification import mailer, overrides
from notification.settings import Settings

TRANSLATIONS = mailer.TRANSLATIONS
LINK = "https://console.example.go.id/cases/c-1"
REFERENCE = "WBS/ITJEN/2026/00042"


def test_the_catalogues_are_current_and_complete(tmp_path):
    root = TRANSLATIONS.parent.parent
    pybabel = Path(sys.executable).with_name("pybabel")
    fresh_pot = tmp_path / "fresh.pot"
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg", "--no-location", "--sort-output", "-o",
                    str(fresh_pot), "."], cwd=root, check=True, capture_output=True)
    fresh = {m.id for m in read_po(fresh_pot.open("rb")) if m.id}
    committed = {m.id for m in read_po((TRANSLATIONS / "messages.pot").open("rb")) if m.id}
    assert fresh == committed, "run services/notification/translations.sh"
    for lang in mailer.LANGUAGES:
        folder = TRANSLATIONS / lang / "LC_MESSAGES"
        catalog = read_po((folder / "messages.po").open("rb"))
        assert {m.id for m in catalog if m.id} == committed, lang
        if lang == "id":
            assert [m.id for m in catalog if m.id and not m.string] == []
        compiled = tmp_path / (lang + ".mo")
        with compiled.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=True)
        expected = {str(m.id): str(m.string) for m in read_mo(compiled.open("rb")) if m.id}
        committed_mo = {str(m.id): str(m.string) for m in read_mo((folder / "messages.mo").open("rb")) if m.id}
        assert committed_mo == expected, "run services/notification/translations.sh ({})".format(lang)


def test_the_rendered_texts_read_exactly_as_written():
    subject, body, html = mailer._render_one("case_assigned", "id", {"link": LINK})
    assert (subject, html) == ("Kasus memerlukan tindakan Anda", None)
    assert body == (
        "Yth. Bapak/Ibu,\n\n"
        "Sebuah kasus di Whistle Blowing System telah ditugaskan kepada Anda dan memerlukan tindakan Anda.\n\n"
        "Silakan masuk ke konsol untuk melihatnya:\n" + LINK + "\n\n"
        "Demi kerahasiaan pelapor, email ini sengaja tidak memuat isi laporan. Jangan meneruskan email ini.\n")
    subject, body, _ = mailer._render_one("case_assigned", "en", {"link": LINK})
    assert subject == "A case needs your attention"
    assert body == (
        "Dear colleague,\n\n"
        "A case in the Whistle Blowing System has been assigned to you and needs your attention.\n\n"
        "Please sign in to the console to see it:\n" + LINK + "\n\n"
        "To protect the reporter, this email deliberately carries none of the report's content. "
        "Please do not forward it.\n")
    units = [{"unit": "dit-smp", "new": 3, "waiting": 5, "overdue": 1, "awaiting_reporter": 2}]
    _, body, _ = mailer._render_one("supervisor_digest", "id", {"link": LINK, "units": units})
    assert "\n- dit-smp: 3 baru, 5 menunggu, 1 lewat tenggat, 2 menunggu pelapor\n\n" in body
    _, body, _ = mailer._render_one("supervisor_digest", "en", {"link": LINK, "units": units})
    assert "\n- dit-smp: 3 new, 5 waiting, 1 overdue, 2 awaiting the reporter\n\n" in body


@pytest.mark.parametrize("kind", mailer.KINDS)
@pytest.mark.parametrize("language", mailer.LANGUAGES)
def test_the_editor_starts_from_the_default_and_it_renders_the_same(kind, language):
    source = overrides.default_source(kind, language)
    checked = overrides.check(kind, language, source["subject"], source["text"])
    variables = overrides.sample_variables(kind)
    assert mailer.render_override(checked, variables)[:2] == mailer._render_one(kind, language, variables)[:2]
    assert "trans" not in source["text"]


@pytest.mark.parametrize("kind", mailer.CASE_KINDS)
def test_a_staff_email_subject_carries_the_reference(kind):
    rendered = mailer.render(kind, "c-1", "https://console.example.go.id", "en", reference=REFERENCE)
    assert rendered.subject.startswith("[WBS] " + REFERENCE + ": ")
    assert REFERENCE not in rendered.body


def test_a_reporter_notice_carries_no_reference_and_a_period_email_none_either():
    notice = mailer.render_reporter("reporter_news", Settings(), "id")
    assert "WBS/" not in notice.subject + notice.body and "[WBS]" not in notice.subject
    digest = mailer.render("supervisor_digest", "daily:2026-11-24", "https://c", "id", reference=REFERENCE)
    assert REFERENCE not in digest.subject


def test_a_daily_bundle_lists_links_and_references_only():
    items = [{"link": LINK, "reference": REFERENCE}, {"link": LINK + "2", "reference": None}]
    rendered = mailer.render("daily_bundle", "daily:2026-11-24", "https://console.example.go.id", "en",
                             extra={"items": items})
    assert "- {} ({})\n".format(LINK, REFERENCE) in rendered.body and "- {}2\n".format(LINK) in rendered.body
    assert rendered.subject == "[WBS] Your case emails of the day / Email kasus Anda hari ini"

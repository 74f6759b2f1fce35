"""The console's texts live in Babel catalogues (one translation system with intake): every key
the templates use has a text in both languages, and the committed .mo files match their .po."""
import re
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from verification import i18n

TEMPLATES = Path(i18n.__file__).resolve().parent / "templates"
# keys built at run time in the templates: "status_" + d.status, "role_" + role, "sort_" + sort
DYNAMIC = re.compile(r"^(status_|role_|sort_)")


def catalogue(lang, name="messages.po"):
    path = i18n.TRANSLATIONS / lang / "LC_MESSAGES" / name
    with path.open("rb") as handle:
        read = read_po if name.endswith(".po") else read_mo
        return {str(m.id): str(m.string) for m in read(handle) if m.id}


def template_keys():
    keys = set()
    for template in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_-]+)["']\s*\)""", template.read_text()))
    return keys


def test_every_key_has_a_text_in_both_languages_and_the_mo_files_are_current():
    template = {str(m.id) for m in read_po((i18n.TRANSLATIONS / "messages.pot").open("rb")) if m.id}
    for lang in i18n.LANGUAGES:
        po = catalogue(lang)
        assert set(po) == template, lang
        assert [k for k, text in po.items() if not text] == [], lang
        assert catalogue(lang, "messages.mo") == po, f"{lang}: run services/verification/translations.sh"


def test_every_key_the_templates_use_is_in_the_catalogue():
    known = set(catalogue("id"))
    missing = sorted(k for k in template_keys() if k not in known and not DYNAMIC.match(k))
    assert missing == []
    for prefix, values in (("role_", ("inspector", "supervisor", "admin")),
                           ("status_", ("running", "paused", "met", "late", "breached"))):
        assert all(prefix + v in known for v in values)


def test_the_translator_falls_back_to_indonesian_and_to_the_key():
    assert i18n.translator("en")("my_cases") == "My cases"
    assert i18n.translator("id")("my_cases") == "Kasus saya"
    assert i18n.translator("fr")("my_cases") == "Kasus saya"
    assert i18n.translator("en")("no-such-key") == "no-such-key"

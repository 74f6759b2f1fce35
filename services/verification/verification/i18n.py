"""Console texts from Babel catalogues, like intake's: Bahasa Indonesia (default) and English.

The templates name each text by a key (``t("my_cases")``); ``translations/<lang>/LC_MESSAGES/
messages.po`` gives its words, so translators work with the usual gettext tools (Poedit,
Weblate) on one system for the whole project. The compiled ``messages.mo`` beside each ``.po``
is committed, so a fresh clone serves them without a build step; ``translations.sh`` recompiles
after an edit, and a test fails when a ``.mo`` is out of date, a key the templates use is
missing, or a key has no text in a language. A key with no English text falls back to the
Indonesian one, and an unknown key shows as itself instead of failing the page. Words shared
with the reporter's side (categories, the reporter's relationship, states) come from
``wbs_contracts.vocabulary``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = ("id", "en")
DEFAULT = "id"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [lang], domain="messages")


def translator(lang: str):
    """``t(key)``: the key's text in ``lang`` (Indonesian when the language lacks it)."""
    lang = lang if lang in LANGUAGES else DEFAULT
    own, fallback = catalogue(lang), catalogue(DEFAULT)

    def t(key: str) -> str:
        text = own.gettext(key)
        if text == key and lang != DEFAULT:
            text = fallback.gettext(key)
        return text

    return t

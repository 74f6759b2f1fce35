"""The reporter site in two languages, through Babel catalogues (Bahasa Indonesia by default).

Source strings (msgids) are English; `intake/translations/<lang>/LC_MESSAGES/messages.po` holds
each language, and the compiled `messages.mo` next to it is committed, so a fresh clone serves
both languages without a build step. A test recompiles every `.po` and fails when a committed
`.mo` differs or when a string of the templates has no Indonesian translation; after editing a
template, run `services/intake/translations.sh` (extract, update, compile).

How the language is chosen, and why not from the browser: Bahasa Indonesia unless the reporter
picked English with the switch at the top of every page (`?lang=en`), which the page remembers
in a `wbs_lang` cookie of this site only. The `Accept-Language` header is never read: it is
device metadata (docs/architecture.md §5.1 forbids recording it, and the safest way never to record a
header is never to read it); it would also narrow down who reported, because few browsers in an
Indonesian ministry are set to English. A choice made on the page says nothing about the device.
"""

from __future__ import annotations

from importlib import resources

from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, select_autoescape

LANGUAGES = ("id", "en")
DEFAULT = "id"
COOKIE = "wbs_lang"

_translations: dict[str, NullTranslations] = {}
_environments: dict[str, Environment] = {}


def choose(query_value: str | None, cookie_value: str | None) -> tuple[str, bool]:
    """(language, remember): the page's language, and whether to (re)set the cookie."""
    if query_value in LANGUAGES:
        return query_value, query_value != cookie_value
    if cookie_value in LANGUAGES:
        return cookie_value, False
    return DEFAULT, False


def translations(language: str) -> NullTranslations:
    if language not in _translations:
        folder = resources.files("intake").joinpath("translations")
        loaded = Translations.load(str(folder), [language], domain="messages")
        _translations[language] = loaded
    return _translations[language]


def gettext(language: str, message: str, **params) -> str:
    text = translations(language).gettext(message)
    return text % params if params else text


def when(value) -> str:
    """An ISO 8601 UTC time as people read it: to the minute, e.g. "2026-11-23 12:23 UTC"."""
    text = str(value or "")
    if len(text) >= 16 and text[10] == "T":
        return f"{text[:10]} {text[11:16]} UTC"
    return text


def environment(language: str) -> Environment:
    """One Jinja environment per language: the gettext callables are bound once, so concurrent
    green threads rendering different languages never share a swapped-in translation."""
    if language not in _environments:
        env = Environment(
            loader=PackageLoader("intake", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(translations(language), newstyle=True)
        env.globals["lang"] = language
        env.filters["when"] = when
        _environments[language] = env
    return _environments[language]

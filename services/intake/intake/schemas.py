"""Validation of the reporter's report (docs/interface.md, "Report"), with a reason per field.

Why hand-written rather than a JSON Schema: the reporter must be told, field by field and in
their language, what to fix, and the set of valid units is only known at run time (it comes
from verification). The rules are small enough that plain code is the clearest statement of
them; `validate_report` is a pure function so every rule is unit-tested without a server.

Unknown fields are refused rather than silently dropped: a reporter who believes the system kept
something it threw away is worse off than one who is told.

Every string is bounded, so one request cannot make intake or storage hold an unbounded
document; the bounds are generous for a narrative (a long *kronologi* fits) and tight for
names and codes.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# The vocabulary and the bounds are the report-content contract's (wbs_contracts), so what
# intake accepts is exactly what it may write and what verification reads.
from wbs_contracts.report_content import (
    FORMAT, MAX_DESCRIPTION, MAX_EMAIL, MAX_LOCATION, MAX_NAME, MAX_PARTIES, MAX_PARTY_UNIT,
    MAX_PHONE, MAX_POSITION, MAX_TITLE, is_nip, normalise_nip, validate_report_content,
)
from wbs_contracts.vocabulary import CATEGORIES, LANGUAGES, RELATIONSHIPS

MAX_CODE = 64
MAX_NIP_INPUT = 40

#: Reason codes -> English message (API) and Indonesian message (reporter web page).
REASONS: dict[str, tuple[str, str]] = {
    "required": ("This field is required.", "Wajib diisi."),
    "invalid_type": ("Wrong type of value.", "Jenis isian tidak sesuai."),
    "too_long": ("Too long.", "Terlalu panjang."),
    "empty": ("Must not be empty.", "Tidak boleh kosong."),
    "unknown_unit": ("Unknown unit code.", "Unit kerja tidak dikenal."),
    "unknown_category": ("Unknown category code.", "Jenis pelanggaran tidak dikenal."),
    "invalid_choice": ("Not one of the allowed values.", "Pilihan tidak valid."),
    "must_be_true": (
        "You must declare that the report is made in good faith.",
        "Anda harus menyatakan bahwa laporan dibuat dengan itikad baik.",
    ),
    "invalid_date": ("Not a date (YYYY-MM-DD).", "Tanggal tidak valid (TTTT-BB-HH)."),
    "date_in_future": ("Date lies in the future.", "Tanggal belum terjadi."),
    "date_order": ("'from' is after 'to'.", "Tanggal mulai sesudah tanggal selesai."),
    "invalid_email": ("Not an email address.", "Alamat email tidak valid."),
    "too_few": ("Name at least one reported party.", "Sebutkan paling sedikit satu terlapor."),
    "too_many": ("Too many entries.", "Terlalu banyak isian."),
    "unknown_field": ("Unknown field.", "Isian tidak dikenal."),
    "invalid_characters": ("Contains characters that are not allowed.", "Mengandung karakter terlarang."),
    "invalid_nip": ("A NIP has 18 digits.", "NIP terdiri dari 18 angka."),
}


def reason_message(code: str, language: str = "en") -> str:
    english, indonesian = REASONS.get(code, (code, code))
    return indonesian if language == "id" else english


@dataclass
class ReportInvalid(Exception):
    """The report breaks one or more rules; `fields` maps a field path to a reason code."""

    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:  # never includes values, only paths and codes
        return "invalid report: " + ", ".join(f"{k}={v}" for k, v in sorted(self.fields.items()))

    def messages(self, language: str = "en") -> dict[str, str]:
        return {path: reason_message(code, language) for path, code in self.fields.items()}


@dataclass(frozen=True)
class Report:
    """A validated report: metadata for intake's own row and content for the vault."""

    unit: str
    category: str
    language: str
    content: dict[str, Any]  # everything sensitive, handed to storage sealed


_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Control characters except tab/newline/carriage return are refused in free text; bidi
# overrides and zero-width format characters (category Cf) are refused too, because they
# can make a narrative read differently to the inspector than it was written.
_ALLOWED_CONTROL = {"\t", "\n", "\r"}


def has_forbidden_chars(text: str, multiline: bool) -> bool:
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cc" and not (multiline and ch in _ALLOWED_CONTROL):
            return True
        if cat in ("Cf", "Cs", "Co", "Cn") and ch not in ("\u200c", "\u200d"):
            return True
    return False


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, code: str) -> None:
        self.errors.setdefault(path, code)

    def unknown(self, obj: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = set(allowed)
        for key in obj:
            if key not in allowed:
                # Keys are reporter input: bound them before echoing them back as paths.
                name = str(key)[:MAX_CODE]
                self.fail(f"{prefix}{name}", "unknown_field")

    def text(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        max_len: int,
        required: bool = False,
        multiline: bool = False,
    ) -> str | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(path, "required")
            return None
        if not isinstance(value, str):
            self.fail(path, "invalid_type")
            return None
        value = unicodedata.normalize("NFC", value).strip()
        if not value:
            if required:
                self.fail(path, "required")
            return None
        if len(value) > max_len:
            self.fail(path, "too_long")
            return None
        if has_forbidden_chars(value, multiline):
            self.fail(path, "invalid_characters")
            return None
        return value

    def email(self, obj: Mapping[str, Any], key: str, path: str) -> str | None:
        value = self.text(obj, key, path, MAX_EMAIL)
        if value is not None and not _EMAIL_RE.match(value):
            self.fail(path, "invalid_email")
            return None
        return value

    def nip(self, obj: Mapping[str, Any], key: str, path: str) -> str | None:
        """An optional NIP, typed with spaces, dots or dashes as people write it; kept as digits."""
        value = normalise_nip(self.text(obj, key, path, MAX_NIP_INPUT))
        if value is not None and not is_nip(value):
            self.fail(path, "invalid_nip")
            return None
        return value

    def date(self, obj: Mapping[str, Any], key: str, path: str, today: dt.date) -> dt.date | None:
        value = obj.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _DATE_RE.match(value):
            self.fail(path, "invalid_date")
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            self.fail(path, "invalid_date")
            return None
        # One day of slack: the reporter's calendar may be ahead of the server's (UTC+7..+9).
        if day > today + dt.timedelta(days=1):
            self.fail(path, "date_in_future")
            return None
        return day

    def obj(self, parent: Mapping[str, Any], key: str, path: str, required: bool = False):
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path, "required")
            return None
        if not isinstance(value, dict):
            self.fail(path, "invalid_type")
            return None
        return value


TOP_LEVEL = (
    "unit", "category", "title", "description", "occurred", "location", "parties",
    "reporter", "language", "good_faith",
)


def validate_report(data: Any, known_units: Iterable[str], today: dt.date | None = None) -> Report:
    """Check a decoded report JSON (docs/interface.md, "Report") and return a `Report`.

    `known_units` are the unit codes verification knows now. Raises `ReportInvalid` with every
    problem found (not just the first), so a form can show them all at once.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    c = _Checker()
    if not isinstance(data, dict):
        raise ReportInvalid({"": "invalid_type"})
    c.unknown(data, TOP_LEVEL, "")

    unit = c.text(data, "unit", "unit", MAX_CODE, required=True)
    if unit is not None and unit not in set(known_units):
        c.fail("unit", "unknown_unit")
    category = c.text(data, "category", "category", MAX_CODE, required=True)
    if category is not None and category not in CATEGORIES:
        c.fail("category", "unknown_category")

    title = c.text(data, "title", "title", MAX_TITLE)
    description = c.text(
        data, "description", "description", MAX_DESCRIPTION, required=True, multiline=True
    )
    location = c.text(data, "location", "location", MAX_LOCATION, multiline=True)

    occurred = None
    occ = c.obj(data, "occurred", "occurred")
    if occ is not None:
        c.unknown(occ, ("from", "to", "ongoing"), "occurred.")
        start = c.date(occ, "from", "occurred.from", today)
        end = c.date(occ, "to", "occurred.to", today)
        ongoing = occ.get("ongoing")
        if ongoing is not None and not isinstance(ongoing, bool):
            c.fail("occurred.ongoing", "invalid_type")
            ongoing = None
        if start and end and start > end:
            c.fail("occurred.to", "date_order")
        occurred = {
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            "ongoing": ongoing,
        }

    parties_out: list[dict[str, Any]] = []
    parties = data.get("parties")
    if parties is None:
        c.fail("parties", "too_few")
    elif not isinstance(parties, list):
        c.fail("parties", "invalid_type")
    elif not parties:
        c.fail("parties", "too_few")
    elif len(parties) > MAX_PARTIES:
        c.fail("parties", "too_many")
    else:
        for i, party in enumerate(parties):
            p = f"parties[{i}]"
            if not isinstance(party, dict):
                c.fail(p, "invalid_type")
                continue
            c.unknown(party, ("name", "position", "unit", "nip"), p + ".")
            parties_out.append({
                "name": c.text(party, "name", p + ".name", MAX_NAME, required=True),
                "position": c.text(party, "position", p + ".position", MAX_POSITION),
                "unit": c.text(party, "unit", p + ".unit", MAX_PARTY_UNIT),
                "nip": c.nip(party, "nip", p + ".nip"),
            })

    reporter_out: dict[str, Any] = {}
    reporter = c.obj(data, "reporter", "reporter", required=True)
    if reporter is not None:
        c.unknown(reporter, ("relationship", "involved", "identity", "contact_email"), "reporter.")
        rel = reporter.get("relationship")
        if rel is None or rel == "":
            c.fail("reporter.relationship", "required")
        elif not isinstance(rel, str) or rel not in RELATIONSHIPS:
            c.fail("reporter.relationship", "invalid_choice")
        involved = reporter.get("involved")
        if involved is None:
            c.fail("reporter.involved", "required")
        elif not isinstance(involved, bool):
            c.fail("reporter.involved", "invalid_type")
        identity = None
        ident = c.obj(reporter, "identity", "reporter.identity")
        if ident is not None:
            c.unknown(ident, ("name", "email", "phone"), "reporter.identity.")
            identity = {
                "name": c.text(ident, "name", "reporter.identity.name", MAX_NAME),
                "email": c.email(ident, "email", "reporter.identity.email"),
                "phone": c.text(ident, "phone", "reporter.identity.phone", MAX_PHONE),
            }
            if not any(identity.values()):
                identity = None
        reporter_out = {
            "relationship": rel,
            "involved": involved,
            "identity": identity,
            "contact_email": c.email(reporter, "contact_email", "reporter.contact_email"),
        }

    language = data.get("language", "id")
    if language is None:
        language = "id"
    if language not in LANGUAGES:
        c.fail("language", "invalid_choice")

    good_faith = data.get("good_faith")
    if good_faith is None:
        c.fail("good_faith", "required")
    elif good_faith is not True:
        c.fail("good_faith", "must_be_true")

    if c.errors:
        raise ReportInvalid(c.errors)

    content = {
        "format": FORMAT,
        "title": title,
        "description": description,
        "occurred": occurred,
        "location": location,
        "parties": parties_out,
        "reporter": reporter_out,
        "language": language,
        "good_faith": True,
    }
    # The checks above are stricter than the contract; this catches the two drifting apart
    # before anything is sealed (InvalidReportContent is a bug here, answered as a 500).
    validate_report_content(content)
    return Report(unit=unit, category=category, language=language, content=content)


def categories_listing() -> list[dict[str, Any]]:
    return [{"code": code, "label": dict(labels)} for code, labels in CATEGORIES.items()]

"""The report-content format ``wbs.report-content/1``: what intake seals into the vault and
verification reads back (narrative, parties, the reporter's answers).

It never travels in an event, only sealed through storage, so both ends used to hold their own
idea of it, and they drifted: verification's conflict routing read a party's ``nip`` that
intake could not write. This module is the one statement of the format (a JSON Schema in
``report_content.schema.json``); intake validates against it before it writes, verification
before it reads, and the category codes come from :mod:`wbs_contracts.vocabulary`.

A reported party is ``{name, position, unit, nip}``; only ``name`` is required. ``nip`` is the
civil-servant number (*Nomor Induk Pegawai*, 18 digits) stored as digits only, so routing can
compare it with a staff member's NIP and keep a named inspector off the case. There are no
separate lists of other people or witnesses: whoever the reporter names goes in ``parties``.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

FORMAT = "wbs.report-content/1"
#: Bounds (characters, after normalisation): generous for a narrative, tight for names.
MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_LOCATION = 500
MAX_NAME = 200
MAX_POSITION = 200
MAX_PARTY_UNIT = 100
MAX_PARTIES = 20
MAX_EMAIL = 254
MAX_PHONE = 40
NIP_DIGITS = 18

_NIP_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidReportContent(ValueError):
    """Report content does not match ``wbs.report-content/1`` (path and rule, never a value)."""


@lru_cache(maxsize=None)
def schema() -> dict:
    text = resources.files(__package__).joinpath("report_content.schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=FormatChecker())


def validate_report_content(content: Any) -> dict:
    """Return ``content`` if it is a valid ``wbs.report-content/1`` document, else raise
    InvalidReportContent naming the first problem's path and rule."""
    error = next(iter(_validator().iter_errors(content)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise InvalidReportContent(f"{FORMAT}: {where} fails {error.validator!r}")
    return content


def normalise_nip(value: str | None) -> str | None:
    """A NIP as typed (``1980 0101 200501 1 001``, dots or dashes allowed) -> digits only, or
    None when empty. Does not check the length: see :func:`is_nip`."""
    if value is None:
        return None
    digits = _NIP_SEPARATORS.sub("", str(value))
    return digits or None


def is_nip(digits: str | None) -> bool:
    return bool(digits) and len(digits) == NIP_DIGITS and digits.isascii() and digits.isdigit()


def parties(content: dict | None) -> list[dict]:
    """The reported parties of a valid document, each with every key present (None if unset)."""
    return [{key: p.get(key) for key in ("name", "position", "unit", "nip")}
            for p in (content or {}).get("parties") or []]


def parties_view(raw: bytes) -> dict:
    """What a ``parties`` read shows of a stored document (storage's ``read_report_parties``,
    for routing): ``{"format", "parties", "valid"}``, never the narrative or the reporter.

    ``valid`` says whether the whole document matches this format; when it does not, ``problem``
    names the first failing path and rule (never a value). Such a document (damaged, or older
    than the format) still gives every party-like entry it lists, because routing with fewer
    exclusions is the worse mistake; the reader notes the case instead."""
    try:
        document = json.loads(raw)
    except (TypeError, ValueError):
        document = None
    if not isinstance(document, dict):
        return {"format": FORMAT, "parties": [], "valid": False, "problem": f"{FORMAT}: not a JSON object"}
    view = {"format": FORMAT, "valid": True}
    try:
        validate_report_content(document)
    except InvalidReportContent as exc:
        view.update(valid=False, problem=str(exc))
    listed = document.get("parties") if isinstance(document.get("parties"), list) else []
    view["parties"] = [{key: p.get(key) for key in ("name", "position", "unit", "nip") if key in p}
                       for p in listed if isinstance(p, dict)]
    return view

"""Validation matrix for the report JSON (docs/interface.md, "Report")."""

import copy
import datetime as dt

import pytest

from intake.schemas import (
    CATEGORIES,
    MAX_DESCRIPTION,
    ReportInvalid,
    categories_listing,
    validate_report,
)

UNITS = {"dit-smp", "itjen"}
TODAY = dt.date(2026, 11, 1)


def good():
    return {
        "unit": "dit-smp",
        "category": "conflict_of_interest",
        "title": "Procurement committee member awarded his brother's company",
        "description": "What happened, how, and since when.",
        "occurred": {"from": "2026-09-01", "to": "2026-10-15", "ongoing": False},
        "location": "Jakarta",
        "parties": [{"name": "Budi S.", "position": "Procurement committee", "unit": "dit-smp"}],
        "reporter": {
            "relationship": "employee",
            "involved": False,
            "identity": {"name": "Ani", "email": "ani@example.org", "phone": "0812"},
            "contact_email": "anon@example.org",
        },
        "language": "id",
        "good_faith": True,
    }


def errors_of(data):
    with pytest.raises(ReportInvalid) as info:
        validate_report(data, UNITS, today=TODAY)
    return info.value.fields


def test_good_report_is_accepted_and_split_into_metadata_and_content():
    report = validate_report(good(), UNITS, today=TODAY)
    assert (report.unit, report.category, report.language) == ("dit-smp", "conflict_of_interest", "id")
    c = report.content
    assert c["description"] == "What happened, how, and since when."
    assert c["parties"][0]["name"] == "Budi S."
    assert c["reporter"]["identity"]["email"] == "ani@example.org"
    assert c["reporter"]["relationship"] == "employee" and c["reporter"]["involved"] is False
    assert c["occurred"] == {"from": "2026-09-01", "to": "2026-10-15", "ongoing": False}
    # metadata is not duplicated into the sealed content, and nothing else sneaks in
    assert set(c) == {"format", "title", "description", "occurred", "location", "parties",
                      "reporter", "language", "good_faith"}


def test_minimal_report_is_accepted_with_language_default():
    data = {
        "unit": "itjen", "category": "other", "description": "x",
        "parties": [{"name": "Someone"}],
        "reporter": {"relationship": "public", "involved": True},
        "good_faith": True,
    }
    report = validate_report(data, UNITS, today=TODAY)
    assert report.language == "id"
    assert report.content["reporter"]["identity"] is None


def _drop(path):
    def mutate(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        del d[last]
    return mutate


def _set(path, value):
    def mutate(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        d[last] = value
    return mutate


MATRIX = [
    (_drop("unit"), "unit", "required"),
    (_set("unit", "nope"), "unit", "unknown_unit"),
    (_set("unit", 7), "unit", "invalid_type"),
    (_drop("category"), "category", "required"),
    (_set("category", "treason"), "category", "unknown_category"),
    (_drop("description"), "description", "required"),
    (_set("description", "   "), "description", "required"),
    (_set("description", "x" * (MAX_DESCRIPTION + 1)), "description", "too_long"),
    (_set("description", "bad \u202e text"), "description", "invalid_characters"),
    (_set("description", "nul \x00 byte"), "description", "invalid_characters"),
    (_set("title", "t" * 201), "title", "too_long"),
    (_set("title", "two\nlines"), "title", "invalid_characters"),
    (_set("location", ["x"]), "location", "invalid_type"),
    (_drop("parties"), "parties", "too_few"),
    (_set("parties", []), "parties", "too_few"),
    (_set("parties", "Budi"), "parties", "invalid_type"),
    (_set("parties", [{"name": "a"}] * 21), "parties", "too_many"),
    (_set("parties", [{"position": "boss"}]), "parties[0].name", "required"),
    (_set("parties", [{"name": ""}]), "parties[0].name", "required"),
    (_set("parties", [{"name": "a", "age": 3}]), "parties[0].age", "unknown_field"),
    (_set("parties", ["Budi"]), "parties[0]", "invalid_type"),
    (_drop("reporter"), "reporter", "required"),
    (_set("reporter", "me"), "reporter", "invalid_type"),
    (_drop("reporter.relationship"), "reporter.relationship", "required"),
    (_set("reporter.relationship", "friend"), "reporter.relationship", "invalid_choice"),
    (_drop("reporter.involved"), "reporter.involved", "required"),
    (_set("reporter.involved", "no"), "reporter.involved", "invalid_type"),
    (_set("reporter.contact_email", "not-an-email"), "reporter.contact_email", "invalid_email"),
    (_set("reporter.identity", {"email": "x@"}), "reporter.identity.email", "invalid_email"),
    (_set("reporter.identity", {"nik": "123"}), "reporter.identity.nik", "unknown_field"),
    (_set("reporter.ip", "1.2.3.4"), "reporter.ip", "unknown_field"),
    (_drop("good_faith"), "good_faith", "required"),
    (_set("good_faith", False), "good_faith", "must_be_true"),
    (_set("good_faith", "true"), "good_faith", "must_be_true"),
    (_set("good_faith", 1), "good_faith", "must_be_true"),
    (_set("language", "fr"), "language", "invalid_choice"),
    (_set("occurred", {"from": "yesterday"}), "occurred.from", "invalid_date"),
    (_set("occurred", {"from": "2026-02-30"}), "occurred.from", "invalid_date"),
    (_set("occurred", {"to": "2027-01-01"}), "occurred.to", "date_in_future"),
    (_set("occurred", {"from": "2026-10-02", "to": "2026-10-01"}), "occurred.to", "date_order"),
    (_set("occurred", {"ongoing": "yes"}), "occurred.ongoing", "invalid_type"),
    (_set("occurred", "last week"), "occurred", "invalid_type"),
    (_set("estimated_loss", 5), "estimated_loss", "unknown_field"),
]


@pytest.mark.parametrize("mutate,path,code", MATRIX, ids=[f"{p}:{c}" for _, p, c in MATRIX])
def test_validation_matrix(mutate, path, code):
    data = copy.deepcopy(good())
    mutate(data)
    fields = errors_of(data)
    assert fields.get(path) == code, fields


def test_all_errors_reported_at_once():
    fields = errors_of({"good_faith": False})
    assert {"unit", "category", "description", "parties", "reporter", "good_faith"} <= set(fields)


def test_not_an_object():
    assert errors_of(["x"]) == {"": "invalid_type"}


def test_error_messages_exist_in_both_languages_and_never_echo_values():
    data = good()
    data["unit"] = "SECRET-CANARY-VALUE"
    with pytest.raises(ReportInvalid) as info:
        validate_report(data, UNITS, today=TODAY)
    assert "SECRET-CANARY" not in str(info.value)
    assert "SECRET-CANARY" not in repr(info.value.messages("en"))
    assert info.value.messages("id")["unit"] == "Unit kerja tidak dikenal."
    assert info.value.messages("en")["unit"] == "Unknown unit code."


def test_unknown_field_path_is_bounded():
    data = good()
    data["k" * 10_000] = 1
    fields = errors_of(data)
    assert all(len(p) <= 64 for p in fields)


def test_categories_listing_matches_domain():
    listing = categories_listing()
    assert [c["code"] for c in listing] == list(CATEGORIES)
    assert len(listing) == 12
    assert all(set(c["label"]) == {"id", "en"} for c in listing)


def test_a_party_nip_is_kept_as_digits_and_the_content_meets_the_contract():
    from wbs_contracts.report_content import validate_report_content

    data = good()
    data["parties"][0]["nip"] = "19800101 200501 1 001"
    data["parties"].append({"name": "Sari"})
    content = validate_report(data, UNITS, today=TODAY).content
    assert [p["nip"] for p in content["parties"]] == ["198001012005011001", None]
    assert validate_report_content(content) is content


@pytest.mark.parametrize("nip", ["1980", "19800101200501100X", "1" * 19, 198001012005011001])
def test_a_malformed_nip_is_refused_with_a_reason(nip):
    data = good()
    data["parties"][0]["nip"] = nip
    code = "invalid_type" if isinstance(nip, int) else "invalid_nip"
    assert errors_of(data) == {"parties[0].nip": code}

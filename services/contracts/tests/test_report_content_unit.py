"""The report-content contract: what it accepts, what it refuses, and that its vocabulary is
complete (every state has both audiences' labels in both languages)."""
import pytest

from wbs_contracts import vocabulary
from wbs_contracts.report_content import (
    FORMAT, InvalidReportContent, is_nip, normalise_nip, parties, validate_report_content,
)


def document(**overrides):
    doc = {
        "format": FORMAT, "title": None, "description": "Mark-up on the tender.",
        "occurred": {"from": "2024-01-02", "to": None, "ongoing": True}, "location": None,
        "parties": [{"name": "Budi S.", "position": None, "unit": "dit-smp",
                     "nip": "198001012005011001"}],
        "reporter": {"relationship": "employee", "involved": False, "identity": None,
                     "contact_email": None},
        "language": "id", "good_faith": True,
    }
    doc.update(overrides)
    return doc


def test_a_document_with_a_party_nip_is_valid():
    assert validate_report_content(document())["parties"][0]["nip"] == "198001012005011001"


@pytest.mark.parametrize("party, path", [
    ({"name": "Budi", "nip": "1980"}, "parties/0/nip"),
    ({"name": "Budi", "nip": "19800101 2005011001"}, "parties/0/nip"),
    ({"name": "Budi", "witness": True}, "parties/0"),
    ({"position": "Head"}, "parties/0"),
])
def test_a_bad_party_is_refused_by_path_without_its_value(party, path):
    with pytest.raises(InvalidReportContent) as caught:
        validate_report_content(document(parties=[party]))
    assert path in str(caught.value)
    assert "1980" not in str(caught.value)


@pytest.mark.parametrize("change", [
    {"format": "wbs.report-content/2"}, {"parties": []}, {"good_faith": False},
    {"others": [{"name": "X"}]}, {"language": "fr"},
])
def test_other_breaches_are_refused(change):
    with pytest.raises(InvalidReportContent):
        validate_report_content(document(**change))


def test_nip_normalisation_keeps_digits_only():
    assert normalise_nip(" 19800101 200501.1-001 ") == "198001012005011001"
    assert normalise_nip("") is None and normalise_nip(None) is None
    assert is_nip("198001012005011001") and not is_nip("1980") and not is_nip("١٩٨٠٠١٠١٢٠٠٥٠١١٠٠١")


def test_parties_gives_every_key():
    assert parties(document(parties=[{"name": "A"}])) == [
        {"name": "A", "position": None, "unit": None, "nip": None}]


def test_every_state_and_category_has_both_languages():
    for labels in vocabulary.CATEGORIES.values():
        assert set(labels) == set(vocabulary.LANGUAGES)
    for state, audiences in vocabulary.STATE_LABELS.items():
        assert set(audiences) == {"staff", "reporter"}, state
        assert all(set(v) == set(vocabulary.LANGUAGES) for v in audiences.values())
    assert vocabulary.TERMINAL_STATES == set(vocabulary.END_REASONS)
    assert vocabulary.reporter_state_label("closed", "en") == "Completed"
    assert vocabulary.category_label("fraud", "xx") == "Penggelapan / kecurangan aset negara"

"""One format between intake and verification: what intake writes as report content,
verification's routing reads, field for field.

intake's validation turns the reporter's report into a ``wbs.report-content/1`` document (and
checks it against the contract's schema before sealing it); verification's routing takes the
named people from that same document. Before the contract, routing looked for a ``nip`` intake
could not write, so the NIP conflict rule never fired for a party the reporter named."""
import datetime as dt

from intake.schemas import validate_report
from verification import routing
from wbs_contracts.report_content import parties, validate_report_content

REPORT = {
    "unit": "dit-smp", "category": "procurement", "description": "Lelang diatur.",
    "parties": [
        {"name": "  Budi  Santoso ", "position": "Ketua panitia", "unit": "dit-smp",
         "nip": "19800101 200501 1 001"},
        {"name": "Sari W.", "nip": "198507142010121003"},
        {"name": "Tanpa NIP"},
    ],
    "reporter": {"relationship": "employee", "involved": False}, "good_faith": True,
}


def written_by_intake() -> dict:
    return validate_report(REPORT, {"dit-smp"}, today=dt.date(2026, 11, 1)).content


def test_intake_writes_a_valid_document():
    assert validate_report_content(written_by_intake())["format"] == "wbs.report-content/1"


def test_routing_reads_every_party_intake_wrote_field_for_field():
    content = written_by_intake()
    read = routing.parties_from_report(content)
    assert [(p.name, p.nip) for p in read] == [
        (routing.normalise_name(p["name"]), routing.normalise_nip(p["nip"])) for p in parties(content)]
    assert [p.nip for p in read] == ["198001012005011001", "198507142010121003", None]
    assert [p.name for p in read] == ["budi santoso", "sari w", "tanpa nip"]


def test_a_named_nip_keeps_that_inspector_off_the_case():
    read = routing.parties_from_report(written_by_intake())
    inspector = routing.Candidate("s-1", "kerabat", "itjen", 0, "Kerabat Jauh", "198507142010121003",
                                  "inspector", False)
    assert routing.conflict_reason(inspector, "dit-smp", read, [], False) == routing.PARTY_NIP

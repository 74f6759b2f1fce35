"""The reporter names a party by NIP, and an inspector with that NIP never gets the case.

All four services run as in production (tests/stack.py). Two inspectors serve the unit; one of
them has the NIP the reporter typed (with spaces, as people type it) against a party whose name
matches nobody. Three reports go in: balancing by load alone would give the named inspector at
least one of them, so every case going to the other inspector shows the NIP rule at work, for a
party the reporter named (before, the rule only saw parties an inspector added later)."""
import json

import pytest
import requests

from tests.test_end_to_end import enrol, make_stack, sign_in

NIP = "198507142010121003"
REPORTS = 3


@pytest.mark.e2e
def test_an_inspector_whose_nip_the_reporter_named_is_never_assigned(tmp_path, rabbit_uri, pg_database,
                                                                     smtp_sink):
    stack = make_stack(tmp_path, rabbit_uri, pg_database, smtp_sink, "file")
    with stack.start():
        stack.wbs("unit", "add", "nip-itjen", "--name", "Inspektorat Jenderal NIP", "--inspectorate")
        stack.wbs("unit", "add", "nip-dit", "--name", "Direktorat NIP", "--parent", "nip-itjen")
        named = enrol(stack, "nip-kerabat", "nip-itjen", "--nip", NIP)
        other = enrol(stack, "nip-netral", "nip-itjen")
        report = {
            "unit": "nip-dit", "category": "conflict_of_interest",
            "description": "Pejabat pengadaan mengatur pemenang lelang.",
            "parties": [{"name": "Seseorang Tanpa Nama Sama", "position": "Pejabat pengadaan",
                         "nip": "19850714 201012 1 003"}],
            "reporter": {"relationship": "public", "involved": False},
            "language": "id", "good_faith": True,
        }
        for _ in range(REPORTS):
            response = requests.post(f"{stack.intake_url}/api/v1/reports", json=report, timeout=30)
            assert response.status_code == 201, response.text

        mails = smtp_sink.wait_for(REPORTS, timeout=60)
        assert {mail["To"] for mail in mails} == {"nip-netral@itjen.example.go.id"}

        auth = sign_in(stack, other)
        cases = requests.get(f"{stack.console_url}/api/v1/cases", headers=auth).json()["cases"]
        assert len(cases) == REPORTS
        mine = requests.get(f"{stack.console_url}/api/v1/cases", headers=sign_in(stack, named)).json()["cases"]
        assert mine == []
        # the party as the inspector reads it carries the NIP as digits, as routing compared it
        case = requests.get(f"{stack.console_url}/api/v1/cases/{cases[0]['case_id']}", headers=auth).json()
        assert NIP in json.dumps(case)

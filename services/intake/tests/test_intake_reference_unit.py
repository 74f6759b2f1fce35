"""The reporter sees the register number verification gave their case, to quote it."""
import datetime as dt

from intake import domain
from intake.models import Report


class Casework:
    def __init__(self, status):
        self.status = status

    def report_status(self, report_id, language):
        return self.status


class Vault:
    def read_messages(self, report_id, ids, grant):
        return []


def report():
    return Report(report_id="r-1", unit="u", category="c", received_at=dt.datetime(2026, 11, 1, 8, 30),
                  receipt_hash="h", evidence_count=0, evidence_bytes=0, language="id")


def test_the_follow_up_view_carries_the_reference_once_the_case_is_open():
    status = {"reference": "WBS/ITJEN/2026/00042", "state": {"code": "received", "label": "Laporan diterima"},
              "history": [], "messages": []}
    assert domain.follow_up(report(), casework=Casework(status), vault=Vault())["reference"] == "WBS/ITJEN/2026/00042"
    assert domain.follow_up(report(), casework=Casework(None), vault=Vault())["reference"] is None


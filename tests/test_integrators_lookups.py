"""Lookups within privacy: the directory announces units and staff as `unit_changed` /
`staff_changed` (code or id -> name), with nothing about cases, reporters or signing in."""
import json

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from verification import auth, directory
from verification.models import Base, OutboxMessage

PRIVATE = ("username", "email", "nip", "password", "totp", "case", "report")


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def staged(session, event_type):
    session.flush()
    return [json.loads(m.body) for m in session.query(OutboxMessage).order_by(OutboxMessage.id)
            if m.event_type == event_type]


def test_units_and_staff_are_announced_with_names_and_nothing_private(session):
    passwords = auth.Passwords(auth.HashingCost(time_cost=1, memory_kib=8, parallelism=1))  # INSECURE, fast
    directory.add_unit(session, "kemenkeu", "Kementerian Keuangan")
    directory.add_unit(session, "itjen-keuangan", "Inspektorat Jenderal Kemenkeu", "kemenkeu", inspectorate=True)
    made = directory.add_staff(session, passwords, "siti.r", "siti@itjen.example", "itjen-keuangan",
                               display_name="Siti Rahmawati", nip="19800101 200501 2 001")
    directory.move_staff(session, made["staff_id"], "kemenkeu")
    directory.set_staff_active(session, made["staff_id"], False)

    units = staged(session, "unit_changed")
    assert [(u["unit"], u["name"], u["parent"], u["inspectorate"]) for u in units] == [
        ("kemenkeu", "Kementerian Keuangan", None, False),
        ("itjen-keuangan", "Inspektorat Jenderal Kemenkeu", "kemenkeu", True)]
    staff = staged(session, "staff_changed")
    assert [(s["staff_id"], s["display_name"], s["role"], s["unit"], s["active"]) for s in staff] == [
        (made["staff_id"], "Siti Rahmawati", "inspector", "itjen-keuangan", True),
        (made["staff_id"], "Siti Rahmawati", "inspector", "kemenkeu", True),
        (made["staff_id"], "Siti Rahmawati", "inspector", "kemenkeu", False)]
    for body in units + staff:
        text = json.dumps(body)
        assert not any(word in key for key in body for word in PRIVATE)
        assert "siti.r" not in text and "siti@" not in text and "19800101" not in text


def test_the_whole_directory_can_be_announced_again(session):
    passwords = auth.Passwords(auth.HashingCost(time_cost=1, memory_kib=8, parallelism=1))  # INSECURE, fast
    directory.add_unit(session, "kemenkeu", "Kementerian Keuangan")
    made = directory.add_staff(session, passwords, "siti.r", "siti@itjen.example", "kemenkeu",
                               display_name="Siti Rahmawati")
    assert directory.announce_directory(session) == {"units": 1, "staff": 1}
    units, staff = staged(session, "unit_changed"), staged(session, "staff_changed")
    assert [u["unit"] for u in units] == ["kemenkeu", "kemenkeu"]
    assert [s["staff_id"] for s in staff] == [made["staff_id"]] * 2
    assert len({b["event_id"] for b in units + staff}) == 4  # new events, not copies


def test_the_command_is_wired_and_signed():
    from verification.entrypoints.admin_rpc import AdminRpc
    from wbs_cli.main import SIGNED, parser

    assert ("verification", "announce_directory") in SIGNED
    assert callable(AdminRpc.announce_directory)
    assert parser().parse_args(["events", "announce-directory"]).func.__name__ == "cmd_announce_directory"

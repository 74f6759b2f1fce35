"""The example consumer (examples/case_dashboard.py) against the real broker, with integrator
credentials made by `wbs integrator add`: history on first start, restart, redelivery, duplicates."""
import importlib.util
import uuid
from pathlib import Path

import pytest

from tests.test_integrators import (broker, connect, fresh, integrator_uri, management_url,  # noqa: F401
                                    publish_as_service)

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("case_dashboard", ROOT / "examples" / "case_dashboard.py")
case_dashboard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(case_dashboard)


def opened(unit):
    return ("verification.events", "case_opened", dict(fresh("case_opened"), case_id=str(uuid.uuid4()), unit=unit))


def ended(case, state="closed"):
    return ("verification.events", "case_status_changed",
            dict(fresh("case_status_changed"), case_id=case[2]["case_id"], from_state="analysis", to_state=state))


@pytest.fixture
def dashboard(broker, rabbit_uri, tmp_path):
    """Factory: a Dashboard on the same state file each time, as after a process restart."""
    _api, add = broker
    name, made = add()  # every event, so it may read the history
    uri = integrator_uri(rabbit_uri, made["username"], made["password"])
    running = []

    def start():
        board = case_dashboard.Dashboard(uri, name, str(tmp_path / "dashboard.sqlite3"))
        board.connect()
        running.append(board)
        return board
    yield start
    for board in running:
        board.close()


def test_first_start_reads_the_history_then_follows_its_queue(dashboard, rabbit_uri):
    a, b, c = opened("itjen-keuangan"), opened("itjen-keuangan"), opened("itjen-pajak")
    publish_as_service(rabbit_uri, [a, b, c, ended(a), ("intake.events", "report_submitted", fresh("report_submitted"))])
    board = dashboard()  # it did not exist when those were published
    assert board.catch_up(idle_seconds=1) == 4
    assert board.open_cases() == {"itjen-keuangan": 1, "itjen-pajak": 1}
    publish_as_service(rabbit_uri, [opened("itjen-pajak")])
    assert board.run(max_messages=1) == 1
    assert board.open_cases() == {"itjen-keuangan": 1, "itjen-pajak": 2}


def test_it_survives_its_restart_and_counts_a_duplicate_once(dashboard, rabbit_uri):
    board = dashboard()
    board.catch_up(idle_seconds=1)
    board.close()
    e = opened("itjen-esdm")
    publish_as_service(rabbit_uri, [e, e, ended(opened("itjen-esdm"), "referred")])  # while it is down; e twice
    board = dashboard()
    assert board.catch_up(idle_seconds=1) == 0  # the history is read once, on the first start
    assert board.run(idle_seconds=1) == 3
    assert board.open_cases() == {"itjen-esdm": 1}


def test_a_redelivery_after_a_crash_before_the_ack_changes_nothing(dashboard, rabbit_uri, monkeypatch):
    board = dashboard()
    board.catch_up(idle_seconds=1)
    publish_as_service(rabbit_uri, [opened("itjen-kominfo")])

    def crash(delivery_tag):
        raise KeyboardInterrupt("killed between commit and ack")
    monkeypatch.setattr(board, "acknowledge", crash)
    with pytest.raises(KeyboardInterrupt):
        board.run(max_messages=1)
    board.close()
    assert board.open_cases() == {"itjen-kominfo": 1}  # committed, not acknowledged

    restarted = dashboard()
    assert restarted.run(idle_seconds=1) == 1  # the broker delivered it again
    assert restarted.open_cases() == {"itjen-kominfo": 1}
    channel = connect(rabbit_uri).channel()
    assert channel.queue_declare(restarted.queue, passive=True).method.message_count == 0


def test_a_field_added_by_a_later_release_is_ignored(dashboard, rabbit_uri):
    board = dashboard()
    board.catch_up(idle_seconds=1)
    later = opened("itjen-pupr")
    later[2]["priority"] = "high"  # a field a later release might add
    publish_as_service(rabbit_uri, [later])
    assert board.run(max_messages=1) == 1
    assert board.open_cases() == {"itjen-pupr": 1}

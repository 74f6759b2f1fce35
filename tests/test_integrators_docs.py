"""The code blocks of docs/integrators.md, run as a reader would paste them, against the real
broker with credentials from `wbs integrator add`."""
import re
import subprocess
import sys
from pathlib import Path

from tests.test_integrators import (broker, connect, fresh, integrator_uri, management_url,  # noqa: F401
                                    publish_as_service)

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- executed by tests/test_integrators_docs.py -->"


def documented_blocks():
    text = (ROOT / "docs" / "integrators.md").read_text()
    return re.findall(re.escape(MARKER) + r"\n```python\n(.*?)```", text, flags=re.S)


def run(code, tmp_path, **env):
    script = tmp_path / "example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env={**env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()


def test_the_documented_blocks_are_found():
    assert len(documented_blocks()) == 2


def test_the_consumer_example_deduplicates_and_acknowledges(broker, rabbit_uri, tmp_path):
    _api, add = broker
    name, made = add(events=["case_*"])
    uri = integrator_uri(rabbit_uri, made["username"], made["password"])
    consumer = documented_blocks()[0]
    channel = connect(uri).channel()  # the queue the example declares, made first so events wait in it
    channel.queue_declare(f"integrator.{name}.cases", durable=True)
    for routing_key in ("case_opened", "case_status_changed"):
        channel.queue_bind(f"integrator.{name}.cases", "verification.events", routing_key)
    opened = fresh("case_opened")
    duplicate = dict(opened)
    closed = dict(fresh("case_status_changed"), case_id=opened["case_id"], to_state="closed")
    publish_as_service(rabbit_uri, [("verification.events", "case_opened", opened),
                                    ("verification.events", "case_opened", duplicate),
                                    ("verification.events", "case_status_changed", closed)])
    lines = run(consumer, tmp_path, WBS_AMQP_URI=uri, WBS_INTEGRATOR=name, STOP_AFTER="3")
    assert [line.split()[0] for line in lines] == ["case_opened", "case_status_changed"]
    assert all(opened["case_id"] in line for line in lines)
    assert channel.queue_declare(f"integrator.{name}.cases", passive=True).method.message_count == 0


def test_the_replay_example_reads_the_history_from_the_start_and_from_an_offset(broker, rabbit_uri, tmp_path):
    events = [("intake.events", "report_submitted", fresh("report_submitted")),
              ("storage.events", "evidence_stored", fresh("evidence_stored")),
              ("verification.events", "case_opened", fresh("case_opened"))]
    publish_as_service(rabbit_uri, events)
    _api, add = broker
    _name, made = add()
    uri = integrator_uri(rabbit_uri, made["username"], made["password"])
    replay = documented_blocks()[1]
    lines = run(replay, tmp_path, WBS_AMQP_URI=uri)
    assert [line.split()[1:] for line in lines] == [[t, body["event_id"]] for _e, t, body in events]
    second_offset = lines[1].split()[0]
    lines = run(replay, tmp_path, WBS_AMQP_URI=uri, FROM_OFFSET=second_offset)
    assert [line.split()[2] for line in lines] == [body["event_id"] for _e, _t, body in events[1:]]

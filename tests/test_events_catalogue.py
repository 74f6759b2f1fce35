"""The AsyncAPI catalogue and the compatibility rule.

The document must be exactly what the contract schemas generate, valid for the official AsyncAPI
parser (installed from the pinned lock file with `npm ci` on first use), and printed by
`wbs events catalogue`; the schemas must keep the compatibility rule against the last release.
"""
import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from wbs_cli.main import main as wbs
from wbs_contracts import asyncapi, compat
from wbs_contracts.events import InvalidEvent, event_types, exchange_name, validate_event

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "asyncapi"
DOCUMENT = ROOT / "services" / "contracts" / "wbs_contracts" / "asyncapi.json"


@pytest.fixture(scope="module")
def validator():
    """`node validate.mjs FILE` with @asyncapi/parser exactly as package-lock.json pins it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed to validate the AsyncAPI document"
    installed = TOOL / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (TOOL / "package-lock.json").stat().st_mtime:
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=TOOL,
                       check=True, capture_output=True, timeout=300)

    def validate(path):
        return subprocess.run([node, str(TOOL / "validate.mjs"), str(path)], capture_output=True,
                              text=True, timeout=120)
    return validate


def test_committed_document_is_what_the_schemas_generate():
    assert DOCUMENT.read_text() == asyncapi.render(), \
        "asyncapi.json is stale: run `python -m wbs_contracts.asyncapi --write`"


def test_official_parser_accepts_the_document(validator):
    result = validator(DOCUMENT)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout


def test_official_parser_refuses_a_broken_document(validator, tmp_path):
    doc = asyncapi.document()
    doc["operations"]["publish_case_opened"]["channel"] = {"$ref": "#/channels/no_such_channel"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    result = validator(broken)
    assert result.returncode == 1
    assert "invalid-ref" in result.stdout


def test_every_event_has_its_exchange_routing_key_payload_and_a_valid_example():
    doc = asyncapi.document()
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["components"]["messages"]) == set(event_types())
    for event_type in event_types():
        channel = doc["channels"][event_type]
        assert channel["address"] == event_type
        assert channel["bindings"]["amqp"]["exchange"]["name"] == exchange_name(event_type)
        message = doc["components"]["messages"][event_type]
        validate_event(event_type, message["examples"][0]["payload"])  # the strict schema
        assert message["correlationId"]["location"] == "$message.payload#/event_id"
    history = doc["channels"]["history"]
    assert history["address"] == "wbs.events.history"
    assert set(history["messages"]) == set(event_types())
    text = json.dumps(doc)
    assert "at least once" in text and "`event_id`" in text


def test_consumer_schemas_accept_unknown_fields_while_producers_refuse_them():
    for event_type in event_types():
        body = dict(asyncapi.example(event_type), added_in_a_later_release="x")
        Draft202012Validator(asyncapi.consumer_schema(event_type)).validate(body)
        with pytest.raises(InvalidEvent):
            validate_event(event_type, body)


def test_wbs_events_catalogue_prints_the_document(capsys):
    wbs(["events", "catalogue"])
    assert json.loads(capsys.readouterr().out) == json.loads(DOCUMENT.read_text())


def test_schemas_keep_the_compatibility_rule_against_the_last_release():
    released = compat.released_schemas()
    assert released, "the released snapshot is empty"
    assert compat.check(released, compat.current_schemas()) == []


def _bumped(doc, version):
    doc["properties"]["schema_version"]["const"] = version
    doc["$id"] = doc["$id"].rsplit("/v", 1)[0] + f"/v{version}"
    return doc


@pytest.mark.parametrize("change, allowed", [
    ("add optional", True),
    ("edit description", True),
    ("remove field", False),
    ("change type", False),
    ("new required", False),
    ("remove field and bump", True),
    ("version goes down", False),
    ("remove event", False),
])
def test_the_rule_refuses_breaking_changes_unless_the_version_is_bumped(change, allowed):
    released = {"report_submitted": compat.released_schemas()["report_submitted"]}
    new = copy.deepcopy(released["report_submitted"])
    current = {"report_submitted": new}
    if change == "add optional":
        new["properties"]["channel"] = {"type": "string"}
    elif change == "edit description":
        new["properties"]["unit"]["description"] = "the reported unit's code"
    elif change == "remove field":
        del new["properties"]["category"]
        new["required"].remove("category")
    elif change == "change type":
        new["properties"]["evidence_count"] = {"type": "string"}
    elif change == "new required":
        new["properties"]["channel"] = {"type": "string"}
        new["required"].append("channel")
    elif change == "remove field and bump":
        del new["properties"]["category"]
        new["required"].remove("category")
        _bumped(new, 2)
    elif change == "version goes down":
        _bumped(released["report_submitted"], 2)
    elif change == "remove event":
        current = {}
    assert (compat.check(released, current) == []) is allowed

"""The compatibility rule between releases, checked against a snapshot of the released schemas.

Consumers of our events are other organisations' systems, deployed on their own schedule. The
rule (docs/events.md, "Compatibility") lets them upgrade late:

* within one `schema_version`, a release may only add *optional* properties and edit prose
  (`title`, `description`); every property a consumer knew keeps its exact schema, and a
  property that was required stays required;
* anything else (removing or renaming a property, changing its type, pattern or values, making
  a new property required, removing an event) bumps `schema_version` (and the `$id`'s `/vN`);
* a version never goes down.

`released/<release>/` holds the schemas exactly as the last release shipped them. At a release
the folder is replaced by a copy of `schemas/` (`python -m wbs_contracts.compat --snapshot
RELEASE`), so the test always compares with the previous release.
"""
from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path

from wbs_contracts.events import event_types, schema

PROSE = ("title", "description", "examples", "$comment")


def _without_prose(node):
    if isinstance(node, dict):
        return {k: _without_prose(v) for k, v in node.items() if k not in PROSE}
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    return node


def version_of(doc: dict) -> int:
    return int(doc["properties"]["schema_version"]["const"])


def breaking_changes(old: dict, new: dict) -> list[str]:
    """What in `new` would break a consumer written against `old` (same event, same version)."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, prop in old_props.items():
        if name not in new_props:
            problems.append(f"property {name!r} removed")
        elif _without_prose(prop) != _without_prose(new_props[name]):
            problems.append(f"property {name!r} changed")
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(old_required - new_required):
        problems.append(f"property {name!r} no longer required")
    for name in sorted(new_required - old_required):
        problems.append(f"property {name!r} newly required" if name in old_props
                        else f"new property {name!r} is required (new properties must be optional)")
    for key in ("type", "additionalProperties", "x-source-service"):
        if old.get(key) != new.get(key):
            problems.append(f"{key} changed")
    return problems


def check(released: dict[str, dict], current: dict[str, dict]) -> list[str]:
    """Every violation of the rule between a released schema set and the current one."""
    problems = []
    for event_type, old in sorted(released.items()):
        new = current.get(event_type)
        if new is None:
            problems.append(f"{event_type}: event removed")
            continue
        old_version, new_version = version_of(old), version_of(new)
        if not new.get("$id", "").endswith(f"/v{new_version}"):
            problems.append(f"{event_type}: $id does not end with /v{new_version}")
        if new_version < old_version:
            problems.append(f"{event_type}: schema_version went down from {old_version} to {new_version}")
        elif new_version == old_version:
            problems += [f"{event_type} v{new_version}: {p} without bumping schema_version"
                         for p in breaking_changes(old, new)]
    return problems


def released_dir() -> Path:
    folder = Path(str(resources.files(__package__).joinpath("released")))
    releases = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(releases) != 1:
        raise RuntimeError(f"expected exactly one released snapshot in {folder}, found {len(releases)}")
    return releases[0]


def released_schemas() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(released_dir().glob("*.json"))}


def current_schemas() -> dict[str, dict]:
    return {t: schema(t) for t in event_types()}


def snapshot(release: str) -> Path:
    """At a release: replace the snapshot with the schemas as they ship now."""
    folder = Path(str(resources.files(__package__).joinpath("released")))
    shutil.rmtree(folder, ignore_errors=True)
    target = folder / release
    target.mkdir(parents=True)
    for event_type, doc in current_schemas().items():
        (target / f"{event_type}.json").write_text(json.dumps(doc, indent=2) + "\n")
    return target


def main(argv: list[str]) -> int:
    if argv[:1] == ["--snapshot"] and len(argv) == 2:
        print(f"snapshot written to {snapshot(argv[1])}")
        return 0
    problems = check(released_schemas(), current_schemas())
    print("\n".join(problems) or f"compatible with release {released_dir().name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

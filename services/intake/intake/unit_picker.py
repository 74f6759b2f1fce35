"""The reporter's unit picker for hundreds of units: options grouped under their parent.

A flat list of 550 offices is unusable; grouped by parent (``<optgroup>``: "KPU Provinsi Aceh"
over its regencies) a reporter scrolls to their province, and without JavaScript the grouped
list is all they need. With JavaScript, ``static/unit-filter.js`` adds a box that hides every
option not matching what they type.
"""
from __future__ import annotations


def groups(units: list[dict]) -> list[dict]:
    """``[{"label": parent name, "units": [{code, name}, ...]}]``: top-level units first in one
    group without a label, then one group per parent, groups and units sorted by name."""
    names = {u["code"]: u["name"] for u in units}
    by_parent: dict[str | None, list[dict]] = {}
    for unit in units:
        parent = unit.get("parent") if unit.get("parent") in names else None
        by_parent.setdefault(parent, []).append({"code": unit["code"], "name": unit["name"]})
    out = []
    for parent in sorted(by_parent, key=lambda p: ("" if p is None else "1" + names[p].lower())):
        members = sorted(by_parent[parent], key=lambda u: u["name"].lower())
        out.append({"label": None if parent is None else names[parent], "units": members})
    return out

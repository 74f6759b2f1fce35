"""Who handles a new case, and who may never (docs/domain.md, "Conflict of interest").

A report about an ordinary unit goes to the inspectorate that oversees it: the nearest unit
flagged ``inspectorate`` on the path up from the reported unit. Its candidates are the active
inspectors whose home unit belongs to that inspectorate. A report about an inspectorate itself
never goes back to it: it goes to the escalation pool, supervisors flagged ``escalation_pool``
whose home unit is outside the reported inspectorate.

Every candidate is checked, and each exclusion is recorded with its reason so a supervisor can
see the decision: home unit equals the reported unit; named among the report's parties (name
normalised: no titles, accents, case or punctuation, initials match; or the NIP, digit by
digit); a declared conflict (a unit, a name or a NIP); a recusal from this case. Among the
rest, the one with the fewest open cases gets it; ties go to the lowest username, then id, so
routing is deterministic and a redelivered event cannot pick someone else. When nobody is
eligible the case stays unassigned with ``routing_failed: <reason>`` for the supervisors.

The core (:func:`choose`) is a pure function over plain data; :func:`route` loads that data from
the database.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wbs_contracts import report_content

from . import lifecycle
from .models import Case, CaseExclusion, DeclaredConflict, Staff, Unit

HOME_UNIT = "home_unit"
PARTY_NAMED = "party_named"
PARTY_NIP = "party_nip"
DECLARED = "declared_conflict"
RECUSED = "recused"
SAME_INSPECTORATE = "same_inspectorate"
CONFLICT_REASONS = frozenset({PARTY_NAMED, PARTY_NIP, DECLARED, RECUSED})
REASON_LABELS = {
    HOME_UNIT: ("Bekerja di unit yang dilaporkan", "Works in the reported unit"),
    PARTY_NAMED: ("Disebut sebagai terlapor (nama)", "Named among the reported parties"),
    PARTY_NIP: ("Disebut sebagai terlapor (NIP)", "Named among the reported parties (NIP)"),
    DECLARED: ("Menyatakan benturan kepentingan", "Declared a conflict of interest"),
    RECUSED: ("Mengundurkan diri dari kasus", "Recused from the case"),
    SAME_INSPECTORATE: ("Bagian dari inspektorat yang dilaporkan", "Part of the reported inspectorate"),
}

FAIL_UNKNOWN_UNIT = "unknown_unit"
FAIL_NO_INSPECTORATE = "no_inspectorate"
FAIL_NO_CANDIDATE = "no_eligible_inspector"
FAIL_NO_ESCALATION = "no_eligible_escalation_supervisor"


@dataclass(frozen=True)
class UnitNode:
    code: str
    parent: str | None
    inspectorate: bool


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    username: str
    home_unit: str
    open_cases: int
    display_name: str = ""
    nip: str | None = None
    role: str = "inspector"
    escalation_pool: bool = False


@dataclass(frozen=True)
class Declared:
    """A declared conflict: a unit and/or a person (normalised name, NIP digits)."""

    unit: str | None = None
    name: str | None = None
    nip: str | None = None


@dataclass(frozen=True)
class Party:
    name: str
    nip: str | None = None


@dataclass
class RoutingDecision:
    assignee_id: str | None
    inspectorate: str | None
    exclusions: list[tuple[str, str]] = field(default_factory=list)  # (staff_id, reason)
    failure: str | None = None
    escalated: bool = False

    @property
    def note(self) -> str | None:
        return None if self.failure is None else f"routing_failed: {self.failure}"


_TITLES = frozenset({"dr", "drs", "dra", "ir", "h", "hj", "prof", "sh", "se", "mm", "mh", "msi", "skom",
                     "st", "ak", "mba", "msc", "phd", "bapak", "ibu", "pak", "bu", "sdr", "sdri", "tn", "ny"})


def normalise_name(name: str | None) -> str:
    """A person's name reduced to what identifies them: no accents, case, punctuation or titles.

    "Dr. Budi Santoso, S.H." and "budi  santoso" both become "budi santoso".
    """
    text = unicodedata.normalize("NFKD", str(name or ""))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"(?<=\b[a-z])\.(?=[a-z]\b)", "", text)  # s.h -> sh, m.m -> mm
    tokens = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(t for t in tokens if t not in _TITLES)


def normalise_nip(nip: str | None) -> str | None:
    """A NIP as typed -> digits only, the way ``wbs.report-content/1`` stores a party's NIP."""
    return report_content.normalise_nip(nip)


def names_match(a: str, b: str) -> bool:
    """Same normalised name, or the same tokens where one side abbreviates some to an initial
    ("budi s" matches "budi santoso"). At least one full token must agree."""
    if not a or not b:
        return False
    if a == b:
        return True
    ta, tb = a.split(), b.split()
    if len(ta) != len(tb):
        return False
    full = 0
    for x, y in zip(ta, tb):
        if x == y:
            full += len(x) > 1
        elif not ((len(x) == 1 and y.startswith(x)) or (len(y) == 1 and x.startswith(y))):
            return False
    return full > 0


def parties_from_report(report: dict | None) -> list[Party]:
    """The people a ``wbs.report-content/1`` document names, as routing needs them.

    Read through the contract (``wbs_contracts.report_content.parties``): everyone the reporter
    names is in ``parties`` as ``{name, position, unit, nip}``; the format has no other list of
    people. The caller validates a document read from storage first (``casefile``)."""
    return [Party(normalise_name(p["name"]), normalise_nip(p["nip"]))
            for p in report_content.parties(report) if p["name"] or p["nip"]]


def conflict_reason(cand: Candidate, reported_unit: str, parties: Iterable[Party],
                    declared: Iterable[Declared], recused: bool) -> str | None:
    """Why ``cand`` must not handle a case about ``reported_unit`` naming ``parties``, or None."""
    if cand.home_unit == reported_unit:
        return HOME_UNIT
    if recused:
        return RECUSED
    own_name, own_nip = normalise_name(cand.display_name), normalise_nip(cand.nip)
    for party in parties:
        if own_nip and party.nip and own_nip == party.nip:
            return PARTY_NIP
        if names_match(own_name, party.name):
            return PARTY_NAMED
    for d in declared:
        if d.unit and d.unit == reported_unit:
            return DECLARED
        if d.nip and any(p.nip == d.nip for p in parties):
            return DECLARED
        if d.name and any(names_match(d.name, p.name) for p in parties):
            return DECLARED
    return None


def path_up(units: Mapping[str, UnitNode], code: str) -> list[str]:
    """The unit and its ancestors, nearest first. Stops on a cycle rather than looping."""
    path: list[str] = []
    current: str | None = code
    while current is not None and current in units and current not in path:
        path.append(current)
        current = units[current].parent
    return path


def inspectorate_of(units: Mapping[str, UnitNode], code: str) -> str | None:
    """Nearest unit flagged inspectorate on the path from ``code`` up (``code`` itself included)."""
    for c in path_up(units, code):
        if units[c].inspectorate:
            return c
    return None


def responsible_inspectorate(units: Mapping[str, UnitNode], reported_unit: str) -> str | None:
    """The inspectorate that must verify a report about ``reported_unit``.

    Normally the unit's own inspectorate; for a report about an inspectorate, the one above it
    (a report about the inspectorate never goes back to it).
    """
    node = units.get(reported_unit)
    if node is None:
        return None
    if node.inspectorate:
        return None if node.parent is None else inspectorate_of(units, node.parent)
    return inspectorate_of(units, reported_unit)


def choose(
    units: Mapping[str, UnitNode],
    reported_unit: str,
    candidates: Iterable[Candidate],
    parties: Iterable[Party] = (),
    declared: Mapping[str, list[Declared]] | None = None,
    recused: Iterable[str] | Mapping[str, str] = (),
    exclude: Iterable[str] = (),
) -> RoutingDecision:
    """Pick who handles a case about ``reported_unit`` among active ``candidates``.

    A report about an ordinary unit goes to the inspectors of its inspectorate; a report about
    an inspectorate goes to the escalation pool (supervisors flagged ``escalation_pool`` whose
    home unit is outside the reported inspectorate), never to the inspectorate itself. Every
    pool member with a conflict is excluded with the reason. ``exclude`` drops candidates
    without recording anything (the current assignee when rerouting).
    """
    declared = declared or {}
    # earlier conflicts on this case: {staff_id: reason}; a plain set means recusals
    prior = dict(recused) if isinstance(recused, Mapping) else {sid: RECUSED for sid in recused}
    parties, exclude = list(parties), set(exclude)
    node = units.get(reported_unit)
    if node is None:
        return RoutingDecision(None, None, failure=FAIL_UNKNOWN_UNIT)
    escalated = node.inspectorate
    if escalated:
        inspectorate = reported_unit
        below = subtree(units, reported_unit)
    else:
        inspectorate = inspectorate_of(units, reported_unit)
        if inspectorate is None:
            return RoutingDecision(None, None, failure=FAIL_NO_INSPECTORATE)

    exclusions: list[tuple[str, str]] = []
    eligible: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (c.username, c.staff_id)):
        if cand.staff_id in exclude:
            continue
        if escalated:
            if not (cand.role == "supervisor" and cand.escalation_pool):
                continue
            if cand.home_unit in below:
                exclusions.append((cand.staff_id, SAME_INSPECTORATE))
                continue
        else:
            if cand.role != "inspector" or inspectorate_of(units, cand.home_unit) != inspectorate:
                continue  # not in this inspectorate's pool at all
        reason = (HOME_UNIT if cand.home_unit == reported_unit else prior.get(cand.staff_id)) or \
            conflict_reason(cand, reported_unit, parties, declared.get(cand.staff_id, ()), False)
        if reason is not None:
            exclusions.append((cand.staff_id, reason))
            continue
        eligible.append(cand)

    if not eligible:
        failure = FAIL_NO_ESCALATION if escalated else FAIL_NO_CANDIDATE
        return RoutingDecision(None, inspectorate, exclusions, failure=failure, escalated=escalated)
    best = min(eligible, key=lambda c: (c.open_cases, c.username, c.staff_id))
    return RoutingDecision(best.staff_id, inspectorate, exclusions, escalated=escalated)


def load_units(session: Session) -> dict[str, UnitNode]:
    rows = list(session.scalars(select(Unit)))
    # Held for the rest of the transaction: the session's identity map keeps objects only while
    # something refers to them, and a later ``session.get(Unit, code)`` (a new case's deadlines)
    # is then answered from it instead of by another query.
    session.info["wbs_units_loaded"] = rows
    return {u.code: UnitNode(u.code, u.parent_code, bool(u.inspectorate)) for u in rows}


def load_candidates(session: Session) -> list[Candidate]:
    """Active inspectors and escalation-pool supervisors, with their count of open cases."""
    open_counts = dict(
        session.execute(
            select(Case.assignee_id, func.count())
            .where(Case.assignee_id.is_not(None), Case.state.in_(lifecycle.OPEN_STATES))
            .group_by(Case.assignee_id)
        ).all()
    )
    rows = session.scalars(select(Staff).where(Staff.role.in_(("inspector", "supervisor")),
                                               Staff.active.is_(True)))
    return [Candidate(s.id, s.username, s.home_unit, int(open_counts.get(s.id, 0)), s.display_name,
                      s.nip, s.role, bool(s.escalation_pool)) for s in rows]


def load_declared(session: Session) -> dict[str, list[Declared]]:
    declared: dict[str, list[Declared]] = {}
    for row in session.scalars(select(DeclaredConflict)):
        declared.setdefault(row.staff_id, []).append(
            Declared(row.unit_code, normalise_name(row.party_name) or None, normalise_nip(row.party_nip)))
    return declared


def load_recused(session: Session, case_id: str | None) -> dict[str, str]:
    """Everyone with a recorded conflict on the case (recusal, named party, declaration): once
    excluded for a conflict, always excluded, even when the party that caused it was added to
    the case later and is not in the stored report."""
    if case_id is None:
        return {}
    rows = session.execute(select(CaseExclusion.candidate_id, CaseExclusion.reason).where(
        CaseExclusion.case_id == case_id, CaseExclusion.reason.in_(sorted(CONFLICT_REASONS)))
        .order_by(CaseExclusion.id))
    prior: dict[str, str] = {}
    for staff_id, reason in rows:
        prior.setdefault(staff_id, reason)
    return prior


def route(session: Session, reported_unit: str, parties: Iterable[Party] = (), case_id: str | None = None,
          exclude: Iterable[str] = (), units: Mapping[str, UnitNode] | None = None) -> RoutingDecision:
    """Decide who gets a case about ``reported_unit``, from the current database state
    (``units``: the unit tree, when the caller has loaded it already)."""
    return choose(units if units is not None else load_units(session), reported_unit, load_candidates(session),
                  parties, load_declared(session), load_recused(session, case_id), exclude)


def subtree(units: Mapping[str, UnitNode], root: str) -> set[str]:
    """``root`` and every unit below it (a supervisor's reach)."""
    children: dict[str, list[str]] = {}
    for node in units.values():
        if node.parent is not None:
            children.setdefault(node.parent, []).append(node.code)
    seen: set[str] = set()
    stack = [root] if root in units else []
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        stack.extend(children.get(code, ()))
    return seen

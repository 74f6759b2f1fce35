"""A case's life: the moves between its states (docs/domain.md, "A case's life").

The states, their labels for staff and reporters, and the coded end reasons are the shared
vocabulary (``wbs_contracts.vocabulary``), so intake's status page and this console never show
two names for one state; this module adds what only verification decides: which moves are
allowed, to whom, and with which coded reason. Everything not in ``ALLOWED`` is refused with
:class:`TransitionForbidden`.
"""
from __future__ import annotations

from wbs_contracts.vocabulary import (
    ANALYSIS,
    AUTHORITIES,
    AWAITING_REPORTER,
    CLOSED,
    END_REASONS as DETAILS,
    FOLLOW_UP,
    INITIAL_STATE as INITIAL,
    INVESTIGATION,
    NOT_ACTIONABLE,
    NOT_ACTIONABLE_REASONS,
    OUTCOMES,
    RECEIVED,
    REFERRED,
    STATE_LABELS,
    STATES,
    TERMINAL_STATES as TERMINAL,
    VERIFICATION,
    reporter_state_label as reporter_label,
)

from .errors import InvalidInput, TransitionForbidden

__all__ = [  # the vocabulary, re-exported under the names this service's code has always used
    "ANALYSIS", "AUTHORITIES", "AWAITING_REPORTER", "CLOSED", "DETAILS", "FOLLOW_UP", "INITIAL",
    "INVESTIGATION", "NOT_ACTIONABLE", "NOT_ACTIONABLE_REASONS", "OUTCOMES", "RECEIVED", "REFERRED",
    "STATE_LABELS", "STATES", "TERMINAL", "VERIFICATION", "reporter_label",
]

OPEN_STATES = tuple(s for s in STATES if s not in TERMINAL)

# Ordinary moves, open to the case's inspector and to supervisors of the unit.
ALLOWED: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({VERIFICATION, REFERRED, NOT_ACTIONABLE}),
    VERIFICATION: frozenset({AWAITING_REPORTER, ANALYSIS, REFERRED, NOT_ACTIONABLE}),
    AWAITING_REPORTER: frozenset({VERIFICATION, NOT_ACTIONABLE}),
    ANALYSIS: frozenset({AWAITING_REPORTER, INVESTIGATION, REFERRED, NOT_ACTIONABLE, CLOSED}),
    INVESTIGATION: frozenset({AWAITING_REPORTER, FOLLOW_UP, REFERRED, CLOSED}),
    FOLLOW_UP: frozenset({CLOSED}),
    REFERRED: frozenset(),
    NOT_ACTIONABLE: frozenset(),
    CLOSED: frozenset(),
}

# Reopening an ended case goes back to analysis, and only a supervisor may do it, with a reason.
REOPEN_TO = ANALYSIS
REOPEN_ROLES = frozenset({"supervisor"})


def labels(state: str) -> dict:
    """The state as the API shows it: code plus labels for staff and for the reporter."""
    lab = STATE_LABELS[state]
    return {
        "code": state,
        "label": lab["staff"]["id"],
        "labels": dict(lab["staff"]),
        "reporter_label": dict(lab["reporter"]),
    }


def is_open(state: str) -> bool:
    return state not in TERMINAL


def allowed_moves(state: str, role: str) -> list[str]:
    """The targets offered in the console for a case in ``state`` to someone with ``role``."""
    moves = set(ALLOWED.get(state, ()))
    if state in TERMINAL and role in REOPEN_ROLES:
        moves.add(REOPEN_TO)
    return [s for s in STATES if s in moves]


# The coded reasons of the end states (DETAILS, labels {id, en}) come from the vocabulary.
# From ``received`` only an obvious duplicate or spam may be dismissed (nobody has verified yet).
NOT_ACTIONABLE_FROM_RECEIVED = frozenset({"duplicate", "spam"})
# Closing straight from analysis means nothing was investigated: only "not proven" fits.
OUTCOMES_FROM_ANALYSIS = frozenset({"not_proven"})
DETAIL_FIELD = {NOT_ACTIONABLE: "sub_reason", REFERRED: "authority", CLOSED: "outcome"}

# A case's flags are verification's own (staff only), labelled like the vocabulary.
FLAGS: dict[str, dict[str, str]] = {
    "on_hold": {"id": "Ditunda", "en": "On hold"},
    "legal_hold": {"id": "Penahanan hukum (legal hold)", "en": "Legal hold"},
    "conflict_flagged": {"id": "Benturan kepentingan ditandai", "en": "Conflict of interest flagged"},
}


def detail_labels(state: str, code: str | None) -> dict | None:
    """A coded end reason with its labels, or None."""
    if code is None:
        return None
    labs = DETAILS.get(state, {}).get(code, {"id": code, "en": code})
    return {"code": code, "label": labs["id"], "labels": dict(labs)}


def detail_choices(from_state: str, to_state: str) -> list[str]:
    """The end-reason codes allowed for this move (empty when the target needs none)."""
    codes = list(DETAILS.get(to_state, {}))
    if to_state == NOT_ACTIONABLE and from_state == RECEIVED:
        codes = [c for c in codes if c in NOT_ACTIONABLE_FROM_RECEIVED]
    if to_state == CLOSED and from_state == ANALYSIS:
        codes = [c for c in codes if c in OUTCOMES_FROM_ANALYSIS]
    return codes


def check_transition(from_state: str, to_state: str, *, role: str, reason: str | None,
                     detail: str | None = None) -> tuple[str | None, str | None]:
    """Refuse a move the lifecycle forbids; give back the cleaned-up (reason, detail).

    Raises :class:`InvalidInput` for an unknown state code, a missing or unknown coded
    reason (``not_actionable`` needs a sub-reason, ``referred`` the authority, ``closed`` the
    outcome), or a reopen without a reason; :class:`TransitionForbidden` for a move that
    is not in the table, a reopen by someone who is not a supervisor, or a coded reason the
    move does not allow (dismissing an unverified report for anything but duplicate/spam,
    closing from analysis as anything but not proven).
    """
    if to_state not in STATE_LABELS:
        raise InvalidInput(f"Unknown state {to_state!r}")
    reason = (reason or "").strip() or None
    detail = (detail or "").strip() or None
    if from_state in TERMINAL:
        if to_state != REOPEN_TO:
            raise TransitionForbidden(f"A case in {from_state!r} can only be reopened to {REOPEN_TO!r}")
        if role not in REOPEN_ROLES:
            raise TransitionForbidden("Only a supervisor can reopen a case")
        if reason is None:
            raise InvalidInput("Reopening a case requires a reason")
        return reason, None
    if to_state not in ALLOWED[from_state]:
        raise TransitionForbidden(f"A case cannot move from {from_state!r} to {to_state!r}")
    if to_state in DETAILS:
        field = DETAIL_FIELD[to_state]
        if detail is None:
            raise InvalidInput(f"Moving a case to {to_state!r} requires '{field}'")
        if detail not in DETAILS[to_state]:
            raise InvalidInput(f"Unknown {field} {detail!r}")
        if detail not in detail_choices(from_state, to_state):
            raise TransitionForbidden(f"A case in {from_state!r} cannot end as {to_state!r} with {detail!r}")
    else:
        detail = None
    return reason, detail

"""A case's life: its states, their labels and the moves between them (DOMAIN.md "A case's life").

This module is the single source of truth for the table in DOMAIN.md; the console, the API and
the reporter's status page all take their labels from here so staff and reporters never see two
names for one state. Everything not in ``ALLOWED`` is refused with :class:`TransitionForbidden`,
which the HTTP API answers with 409.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput, TransitionForbidden

RECEIVED = "received"
VERIFICATION = "verification"
AWAITING_REPORTER = "awaiting_reporter"
ANALYSIS = "analysis"
INVESTIGATION = "investigation"
FOLLOW_UP = "follow_up"
REFERRED = "referred"
NOT_ACTIONABLE = "not_actionable"
CLOSED = "closed"


@dataclass(frozen=True)
class StateLabels:
    staff_id: str
    staff_en: str
    reporter_id: str
    reporter_en: str


LABELS: dict[str, StateLabels] = {
    RECEIVED: StateLabels("Diterima", "Received", "Laporan diterima", "Report received"),
    VERIFICATION: StateLabels("Verifikasi", "Verification", "Dalam verifikasi", "Under verification"),
    AWAITING_REPORTER: StateLabels(
        "Menunggu pelapor", "Awaiting reporter", "Mohon lengkapi informasi", "Please add information"
    ),
    ANALYSIS: StateLabels("Penelaahan", "Analysis", "Dalam penelaahan", "Under review"),
    INVESTIGATION: StateLabels(
        "Investigasi", "Investigation", "Dalam proses investigasi", "Under investigation"
    ),
    FOLLOW_UP: StateLabels("Tindak lanjut", "Follow-up", "Sedang ditindaklanjuti", "Being acted upon"),
    REFERRED: StateLabels(
        "Diteruskan",
        "Referred",
        "Diteruskan ke instansi berwenang",
        "Referred to the competent authority",
    ),
    NOT_ACTIONABLE: StateLabels(
        "Tidak dapat ditindaklanjuti",
        "Not actionable",
        "Tidak dapat ditindaklanjuti",
        "Cannot be followed up",
    ),
    CLOSED: StateLabels("Selesai", "Closed", "Selesai", "Completed"),
}

STATES = tuple(LABELS)
INITIAL = RECEIVED
TERMINAL = frozenset({REFERRED, NOT_ACTIONABLE, CLOSED})
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
    lab = LABELS[state]
    return {
        "code": state,
        "label": lab.staff_id,
        "labels": {"id": lab.staff_id, "en": lab.staff_en},
        "reporter_label": {"id": lab.reporter_id, "en": lab.reporter_en},
    }


def reporter_label(state: str, language: str = "id") -> str:
    lab = LABELS[state]
    return lab.reporter_en if language == "en" else lab.reporter_id


def is_open(state: str) -> bool:
    return state not in TERMINAL


def allowed_moves(state: str, role: str) -> list[str]:
    """The targets offered in the console for a case in ``state`` to someone with ``role``."""
    moves = set(ALLOWED.get(state, ()))
    if state in TERMINAL and role in REOPEN_ROLES:
        moves.add(REOPEN_TO)
    return [s for s in STATES if s in moves]


def check_transition(from_state: str, to_state: str, *, role: str, reason: str | None) -> str | None:
    """Refuse a move the lifecycle forbids; give back the cleaned-up reason.

    Raises :class:`InvalidInput` (400) for an unknown state code or a missing reason where one is
    required (``not_actionable`` always, reopening always), and :class:`TransitionForbidden` (409)
    for a move that is not in the table, or a reopen by someone who is not a supervisor.
    """
    if to_state not in LABELS:
        raise InvalidInput(f"Unknown state {to_state!r}")
    reason = (reason or "").strip() or None
    if from_state in TERMINAL:
        if to_state != REOPEN_TO:
            raise TransitionForbidden(f"A case in {from_state!r} can only be reopened to {REOPEN_TO!r}")
        if role not in REOPEN_ROLES:
            raise TransitionForbidden("Only a supervisor can reopen a case")
        if reason is None:
            raise InvalidInput("Reopening a case requires a reason")
        return reason
    if to_state not in ALLOWED[from_state]:
        raise TransitionForbidden(f"A case cannot move from {from_state!r} to {to_state!r}")
    if to_state == NOT_ACTIONABLE and reason is None:
        raise InvalidInput("Marking a case not actionable requires a reason")
    return reason

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


# Coded reasons of the end states (DOMAIN.md): (label id, label en).
NOT_ACTIONABLE_REASONS: dict[str, tuple[str, str]] = {
    "incomplete": ("Tidak lengkap setelah pengingat", "Incomplete after reminders"),
    "not_a_violation": ("Bukan pelanggaran", "Not a violation"),
    "duplicate": ("Duplikat", "Duplicate"),
    "spam": ("Spam / tidak bermakna", "Spam"),
    "bad_faith": ("Itikad tidak baik", "Bad faith"),
    "no_answer": ("Pelapor tidak menjawab", "No answer from the reporter"),
}
# From ``received`` only an obvious duplicate or spam may be dismissed (nobody has verified yet).
NOT_ACTIONABLE_FROM_RECEIVED = frozenset({"duplicate", "spam"})
AUTHORITIES: dict[str, tuple[str, str]] = {
    "kpk": ("Komisi Pemberantasan Korupsi (KPK)", "Corruption Eradication Commission (KPK)"),
    "police": ("Kepolisian (Polri)", "Police"),
    "prosecutor": ("Kejaksaan", "Public prosecutor"),
    "ombudsman": ("Ombudsman RI", "Ombudsman"),
    "bpk": ("Badan Pemeriksa Keuangan (BPK)", "Audit Board (BPK)"),
    "other_ministry": ("Kementerian/lembaga lain", "Another ministry or agency"),
    "other": ("Instansi lain", "Other authority"),
}
OUTCOMES: dict[str, tuple[str, str]] = {
    "proven": ("Terbukti", "Proven"),
    "partly_proven": ("Terbukti sebagian", "Partly proven"),
    "not_proven": ("Tidak terbukti", "Not proven"),
}
# Closing straight from analysis means nothing was investigated: only "not proven" fits.
OUTCOMES_FROM_ANALYSIS = frozenset({"not_proven"})
DETAILS: dict[str, dict[str, tuple[str, str]]] = {
    NOT_ACTIONABLE: NOT_ACTIONABLE_REASONS,
    REFERRED: AUTHORITIES,
    CLOSED: OUTCOMES,
}
DETAIL_FIELD = {NOT_ACTIONABLE: "sub_reason", REFERRED: "authority", CLOSED: "outcome"}

FLAGS: dict[str, tuple[str, str]] = {
    "on_hold": ("Ditunda", "On hold"),
    "legal_hold": ("Penahanan hukum (legal hold)", "Legal hold"),
    "conflict_flagged": ("Benturan kepentingan ditandai", "Conflict of interest flagged"),
}


def detail_labels(state: str, code: str | None) -> dict | None:
    """A coded end reason with its labels, or None."""
    if code is None:
        return None
    label_id, label_en = DETAILS.get(state, {}).get(code, (code, code))
    return {"code": code, "label": label_id, "labels": {"id": label_id, "en": label_en}}


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

    Raises :class:`InvalidInput` (400) for an unknown state code, a missing or unknown coded
    reason (``not_actionable`` needs a sub-reason, ``referred`` the authority, ``closed`` the
    outcome), or a reopen without a reason; :class:`TransitionForbidden` (409) for a move that
    is not in the table, a reopen by someone who is not a supervisor, or a coded reason the
    move does not allow (dismissing an unverified report for anything but duplicate/spam,
    closing from analysis as anything but not proven).
    """
    if to_state not in LABELS:
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

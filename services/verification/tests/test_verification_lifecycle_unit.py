"""The lifecycle table in docs/domain.md, checked cell by cell."""
import itertools

import pytest

from verification import lifecycle as lc
from verification.errors import InvalidInput, TransitionForbidden

# Transcribed from docs/domain.md "Allowed moves", independently of lifecycle.ALLOWED.
TABLE = {
    "received": {"verification", "referred", "not_actionable"},
    "verification": {"awaiting_reporter", "analysis", "referred", "not_actionable"},
    "awaiting_reporter": {"verification", "not_actionable"},
    "analysis": {"awaiting_reporter", "investigation", "referred", "not_actionable", "closed"},
    "investigation": {"awaiting_reporter", "follow_up", "referred", "closed"},
    "follow_up": {"closed"},
    "referred": set(),
    "not_actionable": set(),
    "closed": set(),
}


def test_states_are_the_nine_of_the_domain():
    assert set(lc.STATES) == set(TABLE)
    assert lc.TERMINAL == {"referred", "not_actionable", "closed"}
    assert lc.INITIAL == "received"


@pytest.mark.parametrize("src,dst", list(itertools.product(TABLE, TABLE)))
def test_every_cell_of_the_table_for_an_inspector(src, dst):
    # an end state needs a coded reason; pick one the move allows
    detail = {"not_actionable": "duplicate", "referred": "kpk", "closed": "not_proven"}.get(dst)
    if dst in TABLE[src]:
        assert lc.check_transition(src, dst, role="inspector", reason="because", detail=detail) == ("because", detail)
    else:
        with pytest.raises(TransitionForbidden):
            lc.check_transition(src, dst, role="inspector", reason="because", detail=detail)


@pytest.mark.parametrize("src", sorted(lc.TERMINAL))
def test_supervisor_reopens_an_ended_case_to_analysis_with_a_reason(src):
    assert lc.check_transition(src, "analysis", role="supervisor", reason="new facts") == ("new facts", None)
    with pytest.raises(InvalidInput):
        lc.check_transition(src, "analysis", role="supervisor", reason="  ")
    with pytest.raises(TransitionForbidden):
        lc.check_transition(src, "analysis", role="inspector", reason="new facts")
    with pytest.raises(TransitionForbidden):
        lc.check_transition(src, "verification", role="supervisor", reason="new facts")


@pytest.mark.parametrize("src", ["received", "verification", "awaiting_reporter", "analysis"])
def test_not_actionable_requires_a_sub_reason(src):
    with pytest.raises(InvalidInput):
        lc.check_transition(src, "not_actionable", role="inspector", reason="text only")
    with pytest.raises(InvalidInput):
        lc.check_transition(src, "not_actionable", role="inspector", reason=None, detail="   ")
    with pytest.raises(InvalidInput):
        lc.check_transition(src, "not_actionable", role="inspector", reason=None, detail="bored")
    assert lc.check_transition(src, "not_actionable", role="inspector", reason=" dup of #12 ",
                               detail="duplicate") == ("dup of #12", "duplicate")


def test_an_unverified_report_is_dismissed_only_as_duplicate_or_spam():
    assert lc.check_transition("received", "not_actionable", role="inspector", reason=None, detail="spam")[1] == "spam"
    with pytest.raises(TransitionForbidden):
        lc.check_transition("received", "not_actionable", role="inspector", reason=None, detail="not_a_violation")
    assert lc.check_transition("verification", "not_actionable", role="inspector", reason=None,
                               detail="not_a_violation")[1] == "not_a_violation"


@pytest.mark.parametrize("src", ["received", "verification", "analysis", "investigation"])
def test_referral_names_the_authority(src):
    with pytest.raises(InvalidInput):
        lc.check_transition(src, "referred", role="inspector", reason="to KPK")
    assert lc.check_transition(src, "referred", role="inspector", reason=None, detail="ombudsman") == (None, "ombudsman")


def test_closing_needs_the_outcome_and_analysis_can_only_close_as_not_proven():
    with pytest.raises(InvalidInput):
        lc.check_transition("investigation", "closed", role="inspector", reason="done")
    for outcome in ("proven", "partly_proven", "not_proven"):
        assert lc.check_transition("investigation", "closed", role="inspector", reason=None, detail=outcome)[1] == outcome
        assert lc.check_transition("follow_up", "closed", role="inspector", reason=None, detail=outcome)[1] == outcome
    assert lc.check_transition("analysis", "closed", role="inspector", reason=None, detail="not_proven")[1] == "not_proven"
    with pytest.raises(TransitionForbidden):
        lc.check_transition("analysis", "closed", role="inspector", reason=None, detail="proven")


def test_coded_reasons_and_flags_have_both_languages():
    for codes in lc.DETAILS.values():
        assert all(label_id and label_en for label_id, label_en in codes.values())
    assert lc.detail_labels("closed", "partly_proven")["labels"] == {"id": "Terbukti sebagian", "en": "Partly proven"}
    assert set(lc.FLAGS) == {"on_hold", "legal_hold", "conflict_flagged"}


def test_unknown_target_state_is_invalid_input_not_conflict():
    with pytest.raises(InvalidInput):
        lc.check_transition("received", "archived", role="inspector", reason=None)


def test_labels_staff_and_reporter_in_both_languages():
    assert lc.labels("awaiting_reporter") == {
        "code": "awaiting_reporter",
        "label": "Menunggu pelapor",
        "labels": {"id": "Menunggu pelapor", "en": "Awaiting reporter"},
        "reporter_label": {"id": "Mohon lengkapi informasi", "en": "Please add information"},
    }
    assert lc.reporter_label("closed", "en") == "Completed"
    assert lc.reporter_label("referred") == "Diteruskan ke instansi berwenang"
    assert all(lc.labels(s)["labels"]["id"] and lc.labels(s)["reporter_label"]["en"] for s in lc.STATES)


def test_allowed_moves_offer_reopen_only_to_supervisors():
    assert lc.allowed_moves("closed", "inspector") == []
    assert lc.allowed_moves("closed", "supervisor") == ["analysis"]
    assert lc.allowed_moves("follow_up", "inspector") == ["closed"]

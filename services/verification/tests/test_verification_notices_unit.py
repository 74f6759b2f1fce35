"""What verification tells notification for reminders and digests: ids, clocks, due times and
counts only, from the real deadline and reach rules (verification.notices)."""
import datetime as dt

from verification import cases, deadlines, notices

from test_verification_casework_unit import NOW, report_event, staff


def test_deadlines_ahead_lists_running_clocks_due_in_the_window_with_their_assignee(session, demo):
    cal = deadlines.Calendar()
    case = cases.open_case(session, report_event(), now=NOW, calendar=cal)  # acknowledge: 7 days
    assert notices.deadlines_ahead(session, NOW, NOW + dt.timedelta(days=6)) == []
    (due,) = notices.deadlines_ahead(session, NOW + dt.timedelta(days=5), NOW + dt.timedelta(days=8))
    assert set(due) == {"case_id", "clock", "due_at", "assignee_id"}
    assert (due["case_id"], due["clock"], due["assignee_id"]) == (case.case_id, "acknowledge", case.assignee_id)
    deadlines.check_breaches(session, NOW + dt.timedelta(days=8))
    assert notices.deadlines_ahead(session, NOW, NOW + dt.timedelta(days=30)) == []  # breached: no reminder


def test_supervisor_digests_are_counts_by_unit(session, demo):
    cal = deadlines.Calendar()
    old = cases.open_case(session, report_event(), now=NOW - dt.timedelta(days=10), calendar=cal)
    cases.open_case(session, report_event(), now=NOW, calendar=cal)
    supervisor = staff(session, demo["supervisor"])
    digests = notices.supervisor_digests(session, NOW, NOW - dt.timedelta(days=1))
    (units,) = [d["units"] for d in digests if d["supervisor_id"] == supervisor.id]
    (counts,) = [u for u in units if u["unit"] == "dit-smp"]
    assert counts == {"unit": "dit-smp", "new": 1, "waiting": 2, "overdue": 1, "awaiting_reporter": 0}
    assert old.case_id not in str(digests)

"""What verification answers and does for the trust boundary (docs/architecture.md §10), apart from the
directory and the case file so those stay about their own business.

* ``retention_state``: storage shreds a report only when verification, asked at that moment,
  confirms that its case ended long enough ago and is not on legal hold. An event on the broker
  is never enough: anyone holding broker credentials could publish one.
* ``unlock_staff``: anyone who knows a username can lock its account with five wrong sign-ins.
  The lock stays (it is what stops online guessing); an administrator lifts it with the admin
  key's signed command (``wbs inspector unlock``).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbs_plumbing.clock import iso

from . import audit
from .directory import SYSTEM_ACTOR, _staff
from .models import Case


def retention_state(session: Session, report_id: str) -> dict | None:
    """{state, since, legal_hold} of the report's case, or None when there is no such case."""
    case = session.scalars(select(Case).where(Case.report_id == str(report_id))).first()
    if case is None:
        return None
    return {"state": case.state, "since": iso(case.ended_at or case.updated_at),
            "legal_hold": bool(case.legal_hold)}


def unlock_staff(session: Session, staff_ref: str, *, actor: str = SYSTEM_ACTOR) -> dict:
    """Lift a sign-in lock (and reset the failure count) on an administrator's word. Audited."""
    staff = _staff(session, staff_ref)
    was_locked = staff.locked_until is not None
    staff.failed_logins, staff.locked_until = 0, None
    audit.append(session, actor, audit.ACCOUNT, None, target=staff.id, change="unlocked")
    return {"staff_id": staff.id, "unlocked": was_locked}

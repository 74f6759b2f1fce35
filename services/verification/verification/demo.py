"""The demo directory ``make run`` seeds: two organisations kept apart.

A ministry (its Inspektorat Jenderal over one directorate) and an election commission (its own
Inspektorat Utama over its secretariat and a provincial office) are separate trees, each with its
own inspectorate, so a report to the election commission is routed to the commission's inspector
and never reaches the ministry's (routing picks the nearest inspectorate up the reported unit's
tree).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import admin, auth, directory
from .models import SYSTEM_ACTOR, Staff, Unit


DEMO_UNITS = (
    ("itjen", "Inspektorat Jenderal", None, True),
    ("dit-smp", "Direktorat Sekolah Menengah Pertama", "itjen", False),
    ("itama-kpu", "Inspektorat Utama KPU", None, True),
    ("kpu-ri", "Sekretariat Jenderal KPU RI", "itama-kpu", False),
    ("kpu-dki", "KPU Provinsi DKI Jakarta", "itama-kpu", False),
)

# An earlier demo put kpu-dki under itjen: a directory seeded then is moved into its own tree.
_EARLIER_PARENTS = {"kpu-dki": "itjen"}


# Fixed so `make run` can print a sign-in that works every time; used only in development.
# The key is how the seed's answer names the account; ``role`` and ``unit`` are its role and home.
DEMO_STAFF = {
    "inspector": dict(username="inspektur", email="inspektur@wbs.example.org", display_name="Inspektur Demo",
                      role="inspector", unit="itjen",
                      password="inspektur-demo-2026", totp_secret="WBSDEMOINSPEKTUR234567AB"),
    "supervisor": dict(username="supervisor", email="supervisor@wbs.example.org", display_name="Supervisor Demo",
                       role="supervisor", unit="itjen",
                       password="supervisor-demo-2026", totp_secret="WBSDEMOSUPERVISOR234567A"),
    "kpu_inspector": dict(username="inspektur-kpu", email="inspektur-kpu@wbs.example.org",
                          display_name="Inspektur KPU Demo", role="inspector", unit="itama-kpu",
                          password="inspektur-kpu-demo-2026", totp_secret="WBSDEMOINSPEKTURKPU234AB"),
}


def seed_demo(session: Session, passwords: auth.Passwords, *, development: bool) -> dict:
    """Create the demo directory once: itjen > dit-smp with an inspector and a supervisor homed
    at itjen; itama-kpu > {kpu-ri, kpu-dki} with an inspector homed at itama-kpu. Idempotent.

    In development the sign-ins are fixed (and shown on every call); otherwise they are random
    and shown only on the call that created them (``password`` is None afterwards).
    """
    for code, name, parent, inspectorate in DEMO_UNITS:
        unit = session.get(Unit, code)
        if unit is None:
            directory.add_unit(session, code, name, parent, inspectorate)
        elif code in _EARLIER_PARENTS and unit.parent_code == _EARLIER_PARENTS[code]:
            admin.update_unit(session, SYSTEM_ACTOR, code, parent=parent, move=True)
    result = {}
    for key, spec in DEMO_STAFF.items():
        existing = session.scalar(select(Staff).where(Staff.username == spec["username"]))
        if existing is None:
            created = directory.add_staff(
                session, passwords, spec["username"], spec["email"], spec["unit"], spec["role"],
                display_name=spec["display_name"],
                password=spec["password"] if development else None,
                totp_secret=spec["totp_secret"] if development else None,
            )
            result[key] = {k: created[k] for k in ("staff_id", "username", "password", "totp_secret", "otpauth_uri")}
            result[key]["created"] = True
        else:
            result[key] = {
                "staff_id": existing.id,
                "username": existing.username,
                "password": spec["password"] if development else None,
                "totp_secret": existing.totp_secret if development else None,
                "otpauth_uri": auth.otpauth_uri(existing.totp_secret, existing.username) if development else None,
                "created": False,
            }
    return result

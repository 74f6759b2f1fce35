"""The demo directory ``make run`` seeds: three units, an inspector and a supervisor."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import auth, directory
from .models import Staff, Unit


DEMO_UNITS = (
    ("itjen", "Inspektorat Jenderal", None, True),
    ("dit-smp", "Direktorat Sekolah Menengah Pertama", "itjen", False),
    ("kpu-dki", "KPU Provinsi DKI Jakarta", "itjen", False),
)


# Fixed so `make run` can print a sign-in that works every time; used only in development.
DEMO_STAFF = {
    "inspector": dict(username="inspektur", email="inspektur@wbs.example.org", display_name="Inspektur Demo",
                      password="inspektur-demo-2026", totp_secret="WBSDEMOINSPEKTUR234567AB"),
    "supervisor": dict(username="supervisor", email="supervisor@wbs.example.org", display_name="Supervisor Demo",
                       password="supervisor-demo-2026", totp_secret="WBSDEMOSUPERVISOR234567A"),
}


def seed_demo(session: Session, passwords: auth.Passwords, *, development: bool) -> dict:
    """Create the demo directory once: units itjen > {dit-smp, kpu-dki}, an inspector and a
    supervisor homed at itjen. Idempotent.

    In development the sign-ins are fixed (and shown on every call); otherwise they are random
    and shown only on the call that created them (``password`` is None afterwards).
    """
    for code, name, parent, inspectorate in DEMO_UNITS:
        if session.get(Unit, code) is None:
            directory.add_unit(session, code, name, parent, inspectorate)
    result = {}
    for role, spec in DEMO_STAFF.items():
        existing = session.scalar(select(Staff).where(Staff.username == spec["username"]))
        if existing is None:
            created = directory.add_staff(
                session, passwords, spec["username"], spec["email"], "itjen", role,
                display_name=spec["display_name"],
                password=spec["password"] if development else None,
                totp_secret=spec["totp_secret"] if development else None,
            )
            result[role] = {k: created[k] for k in ("staff_id", "username", "password", "totp_secret", "otpauth_uri")}
            result[role]["created"] = True
        else:
            result[role] = {
                "staff_id": existing.id,
                "username": existing.username,
                "password": spec["password"] if development else None,
                "totp_secret": existing.totp_secret if development else None,
                "otpauth_uri": auth.otpauth_uri(existing.totp_secret, existing.username) if development else None,
                "created": False,
            }
    return result

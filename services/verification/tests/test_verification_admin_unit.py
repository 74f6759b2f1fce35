"""The administrator's use cases (admin.py) and the CSV imports (directory_import.py), no server."""
import datetime as dt
import json

import pyotp
import pytest

from verification import admin, auth, directory_import
from verification.errors import InvalidInput, NotFound, PasswordChangeRequired
from verification.models import AuditEntry, OutboxMessage, Staff, Unit


def events(session, kind):
    session.flush()
    return [json.loads(m.body) for m in session.query(OutboxMessage).order_by(OutboxMessage.id) if m.event_type == kind]


def audit_changes(session):
    return [json.loads(e.detail).get("change") for e in session.query(AuditEntry).order_by(AuditEntry.seq)]


@pytest.fixture
def boss(session, demo, passwords):
    created = admin.add_staff(session, passwords, "system", "admin1", "admin@x.org", "itjen", "admin")
    return session.get(Staff, created["staff_id"])


def test_only_an_administrator_gets_past_require_admin(session, demo, boss):
    assert admin.require_admin(boss) is boss
    with pytest.raises(NotFound):
        admin.require_admin(session.get(Staff, demo["supervisor"]["staff_id"]))


def test_unit_tree_add_rename_move_flag_disable_zone_and_clocks(session, demo, boss):
    admin.add_unit(session, boss.id, "bawaslu", "Bawaslu RI", None, True, "Asia/Jakarta")
    admin.add_unit(session, boss.id, "bawaslu-papua", "Bawaslu Papua", "bawaslu", False, "Asia/Jayapura")
    tree = admin.unit_tree(session)
    assert [(u["code"], u["depth"]) for u in tree][:2] == [("bawaslu", 0), ("bawaslu-papua", 1)]
    assert next(u for u in tree if u["code"] == "bawaslu-papua")["zone_label"] == "WIT"
    out = admin.update_unit(session, boss.id, "bawaslu-papua", name="Bawaslu Provinsi Papua", parent="itjen",
                            move=True, inspectorate=True, active=False, timezone="Asia/Makassar",
                            clocks={"ack_days": 3})
    assert out["changes"] == ["renamed", "moved", "inspectorate", "disabled", "timezone", "clocks"]
    unit = session.get(Unit, "bawaslu-papua")
    assert (unit.parent_code, unit.active, unit.timezone, unit.ack_days) == ("itjen", False, "Asia/Makassar", 3)
    assert events(session, "unit_changed")[-1]["name"] == "Bawaslu Provinsi Papua"
    with pytest.raises(InvalidInput):
        admin.update_unit(session, boss.id, "itjen", parent="bawaslu-papua", move=True)   # a cycle
    with pytest.raises(InvalidInput):
        admin.update_unit(session, boss.id, "itjen", timezone="Europe/Paris")
    assert audit_changes(session).count("renamed") == 1


def test_staff_role_unit_oversight_disable_and_filters(session, demo, boss):
    inspector = demo["inspector"]["staff_id"]
    admin.set_role(session, boss.id, inspector, "supervisor")
    admin.set_oversight(session, boss.id, inspector, ["dit-smp"], True)
    admin.move_staff(session, boss.id, "inspektur", "dit-smp")
    admin.set_active(session, boss.id, "inspektur", False)
    listed = admin.list_staff(session, role="supervisor", active="disabled")
    assert [(m["username"], m["oversees"], m["escalation_pool"], m["unit_name"]) for m in listed] == [
        ("inspektur", ["dit-smp"], True, "Direktorat Sekolah Menengah Pertama")]
    assert [m["username"] for m in admin.list_staff(session, q="ADMIN")] == ["admin1"]
    assert len(admin.list_staff(session, unit="itjen")) == 3            # itjen and below
    assert {"role", "moved", "oversight", "disabled"} <= set(audit_changes(session))
    assert events(session, "staff_changed")[-1]["active"] is False


def test_password_reset_refuses_the_old_password_and_forces_a_change(session, demo, boss, passwords):
    account = demo["inspector"]
    now = dt.datetime.now(dt.timezone.utc)
    signed = auth.login(session, passwords, "inspektur", account["password"],
                        pyotp.TOTP(account["totp_secret"]).at(now), ttl=dt.timedelta(hours=1), now=now)
    reset = admin.reset_password(session, passwords, boss.id, "inspektur")
    assert reset["sessions_revoked"] == 1
    with pytest.raises(Exception):
        auth.authenticate(session, signed.token)                         # the old session is dead
    later = now + dt.timedelta(seconds=31)
    code = pyotp.TOTP(account["totp_secret"]).at(later)
    assert auth.login(session, passwords, "inspektur", account["password"], code,
                      ttl=dt.timedelta(hours=1), now=later) is None      # the old password is refused
    fresh = auth.login(session, passwords, "inspektur", reset["password"], code, ttl=dt.timedelta(hours=1), now=later)
    with pytest.raises(PasswordChangeRequired):
        auth.authenticate(session, fresh.token)
    staff = auth.authenticate(session, fresh.token, changing_password=True)
    with pytest.raises(InvalidInput):
        admin.change_own_password(session, passwords, staff, reset["password"], "short", "short")
    with pytest.raises(InvalidInput):
        admin.change_own_password(session, passwords, staff, "wrong", "a-long-new-password", None)
    admin.change_own_password(session, passwords, staff, reset["password"], "a-long-new-password",
                              "a-long-new-password")
    assert auth.authenticate(session, fresh.token) is staff
    assert {"password_reset", "password_changed"} <= set(audit_changes(session))


def test_totp_reset_kills_the_old_authenticator_at_once(session, demo, boss, passwords):
    account = demo["inspector"]
    reset = admin.reset_totp(session, boss.id, "inspektur")
    now = dt.datetime.now(dt.timezone.utc)
    old_code = pyotp.TOTP(account["totp_secret"]).at(now)
    assert auth.login(session, passwords, "inspektur", account["password"], old_code,
                      ttl=dt.timedelta(hours=1), now=now) is None
    new_code = pyotp.TOTP(reset["totp_secret"]).at(now)
    assert auth.login(session, passwords, "inspektur", account["password"], new_code,
                      ttl=dt.timedelta(hours=1), now=now) is not None
    assert reset["otpauth_uri"].startswith("otpauth://totp/")


def test_unlock_lifts_a_sign_in_lock(session, demo, boss):
    staff = session.get(Staff, demo["inspector"]["staff_id"])
    staff.failed_logins, staff.locked_until = 9, dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    assert admin.list_staff(session, q="inspektur")[0]["locked"] is True
    admin.unlock(session, boss.id, "inspektur")
    assert (staff.failed_logins, staff.locked_until) == (0, None)


UNITS = """code,name,parent,inspectorate,timezone
kpu,Komisi Pemilihan Umum,,true,Asia/Jakarta
kpu-papua,KPU Provinsi Papua,kpu,false,Asia/Jayapura
kpu-jayapura,KPU Kota Jayapura,kpu-papua,false,Asia/Jayapura
"""


def test_units_import_is_idempotent_updates_and_never_deletes(session, demo, boss):
    first = directory_import.import_units_text(session, boss.id, UNITS)
    assert first["ok"] and first["added"] == ["kpu", "kpu-papua", "kpu-jayapura"]
    again = directory_import.import_units_text(session, boss.id, UNITS)
    assert (again["added"], again["changed"], again["unchanged"]) == ([], [], 3)
    edited = UNITS.replace("KPU Kota Jayapura,kpu-papua", "KPU Kota Jayapura (baru),kpu").replace(
        "kpu-papua,KPU Provinsi Papua,kpu,false,Asia/Jayapura\n", "")
    result = directory_import.import_units_text(session, boss.id, edited)
    assert result["changed"] == [{"code": "kpu-jayapura", "changes": ["renamed", "moved"]}]
    assert session.get(Unit, "kpu-papua") is not None                    # not in the file: kept


def test_a_bad_units_file_imports_nothing_and_names_every_bad_line(session, demo, boss):
    bad = """code,name,parent,inspectorate,timezone
kpu,Komisi Pemilihan Umum,,true,Asia/Jakarta
kpu-a,,kpu,false,Asia/Jakarta
kpu-b,KPU B,nowhere,false,
kpu,Duplicate,,false,
kpu-c,KPU C,kpu-d,false,Europe/Paris
kpu-d,KPU D,kpu-c,maybe,
Bad Code,X,,false,
"""
    result = directory_import.import_units_text(session, boss.id, bad)
    assert not result["ok"] and result["added"] == []
    assert sorted({e["line"] for e in result["errors"]}) == [3, 4, 5, 6, 7, 8]
    messages = " ".join(e["message"] for e in result["errors"])
    for words in ("name is empty", "unknown parent 'nowhere'", "already on line 2", "cycle", "time zone",
                  "true or false", "lowercase"):
        assert words in messages
    assert session.get(Unit, "kpu") is None
    assert directory_import.import_units_text(session, boss.id, "code,name\nx,y\n")["errors"][0]["line"] == 1


def test_staff_import_creates_accounts_once_with_one_time_secrets(session, demo, boss, passwords):
    text = "username,name,email,unit,role\nbudi,Budi Santoso,budi@x.org,dit-smp,inspector\nsiti,Siti,siti@x.org,itjen,supervisor\n"
    result = directory_import.import_staff_text(session, passwords, boss.id, text)
    assert [c["username"] for c in result["created"]] == ["budi", "siti"]
    assert all(c["password"] and c["totp_secret"] for c in result["created"])
    assert session.query(Staff).filter_by(username="budi").one().must_change_password is True
    again = directory_import.import_staff_text(session, passwords, boss.id, text)
    assert again["created"] == [] and again["existing"] == ["budi", "siti"]
    bad = directory_import.import_staff_text(session, passwords, boss.id,
                                             "username,name,email,unit,role\nx y,,nope,nowhere,boss\n")
    assert not bad["ok"] and len(bad["errors"]) == 5 and {e["line"] for e in bad["errors"]} == {2}

"""The administration console and API on a running verification service (real broker and
PostgreSQL): admin-only (404 otherwise), same-origin checks, audit, the reset flows end to end."""
import re
import time

import pyotp
import requests
import sqlalchemy
from sqlalchemy.orm import Session

from verification import auth, directory
from verification.models import Unit

from test_verification_integration import (  # noqa: F401  (fixtures)
    base_url, broker, config, count, db, login, seed, storage, verification,
)

COST = auth.Passwords(auth.HashingCost(time_cost=1, memory_kib=8, parallelism=1))


def make_admin(db):
    """An administrator with a known password (as `wbs inspector add --role admin` makes one)."""
    with Session(db) as session:
        made = directory.add_staff(session, COST, "admin1", "admin@wbs.example.org", "itjen", "admin",
                                   display_name="Admin Satu")
        session.commit()
    return made


def console_session(base, account, at=None):
    """A signed-in console (cookie) session, as a browser would get it."""
    browser = requests.Session()
    code = pyotp.TOTP(account["totp_secret"]).at(at or time.time())
    answer = browser.post(f"{base}/login", data={"username": account["username"], "password": account["password"],
                                                 "otp": code}, headers={"Origin": base}, allow_redirects=False,
                          timeout=10)
    assert answer.status_code == 303, answer.text
    return browser


def post(browser, base, path, data, origin=True):
    return browser.post(f"{base}{path}", data=data, headers={"Origin": base} if origin else {},
                        allow_redirects=False, timeout=10)


def test_admin_api_and_pages_are_for_administrators_only(verification, storage, config, db):
    demo = seed(verification)
    base = base_url(config)
    boss = make_admin(db)
    token = login(base, boss)
    units = requests.get(f"{base}/api/v1/admin/units", headers=token, timeout=10)
    assert units.status_code == 200
    assert [u["code"] for u in units.json()["units"]][:1] == ["itjen"]
    staff = requests.get(f"{base}/api/v1/admin/staff?role=inspector", headers=token, timeout=10).json()["staff"]
    assert [m["username"] for m in staff] == ["inspektur", "inspektur-kpu"]
    inspector = login(base, demo["inspector"], at=time.time() + 30)
    for path in ("/api/v1/admin/units", "/api/v1/admin/staff"):
        assert requests.get(f"{base}{path}", headers=inspector, timeout=10).status_code == 404
    page = console_session(base, demo["supervisor"])
    assert page.get(f"{base}/admin", timeout=10).status_code == 404
    assert page.get(f"{base}/admin/staff", timeout=10).status_code == 404
    assert post(page, base, "/admin/units", {"code": "x", "name": "X"}).status_code == 404


def test_admin_actions_need_the_same_origin_and_are_audited(verification, storage, config, db):
    seed(verification)
    base = base_url(config)
    boss = make_admin(db)
    browser = console_session(base, boss)
    refused = post(browser, base, "/admin/units", {"code": "bawaslu", "name": "Bawaslu"}, origin=False)
    assert refused.status_code in (303, 401, 403) and count(db, "SELECT count(*) FROM units WHERE code='bawaslu'") == 0
    added = post(browser, base, "/admin/units", {"code": "bawaslu", "name": "Bawaslu RI", "inspectorate": "1",
                                                 "timezone": "Asia/Makassar"})
    assert added.status_code == 303 and added.headers["Location"] == "/admin/units/bawaslu"
    post(browser, base, "/admin/units/bawaslu", {"name": "Badan Pengawas Pemilu"})
    post(browser, base, "/admin/units/bawaslu", {"flags": "1", "inspectorate": "1"})     # disable: active unticked
    with Session(db) as session:
        unit = session.get(Unit, "bawaslu")
        assert (unit.name, unit.inspectorate, unit.active, unit.timezone) == (
            "Badan Pengawas Pemilu", True, False, "Asia/Makassar")
    tree = browser.get(f"{base}/admin", timeout=10).text
    assert "Badan Pengawas Pemilu" in tree and "Nonaktif" in tree
    assert count(db, "SELECT count(*) FROM audit_log WHERE action='unit' AND actor=:a", a=boss["staff_id"]) == 3


def test_reset_password_and_authenticator_end_to_end(verification, storage, config, db):
    demo = seed(verification)
    base = base_url(config)
    boss = make_admin(db)
    browser = console_session(base, boss)
    inspector = demo["inspector"]
    page = post(browser, base, f"/admin/staff/{inspector['staff_id']}/reset-password", {})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    one_time = re.search(r'id="one-time-password">([^<]+)<', page.text).group(1)

    old = requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "username": "inspektur", "password": inspector["password"],
        "otp": pyotp.TOTP(inspector["totp_secret"]).now()})
    assert old.status_code == 401                                      # the old password is dead
    fresh = login(base, dict(inspector, password=one_time), at=time.time() + 30)
    blocked = requests.get(f"{base}/api/v1/cases", headers=fresh, timeout=10)
    assert blocked.status_code == 403 and "password_change_required" in blocked.text
    short = requests.post(f"{base}/api/v1/me/password", headers=fresh, timeout=10,
                          json={"current": one_time, "new": "short"})
    assert short.status_code == 400
    changed = requests.post(f"{base}/api/v1/me/password", headers=fresh, timeout=10,
                            json={"current": one_time, "new": "kata-sandi-baru-2026"})
    assert changed.status_code == 204
    assert requests.get(f"{base}/api/v1/cases", headers=fresh, timeout=10).status_code == 200

    page = post(browser, base, f"/admin/staff/{inspector['staff_id']}/reset-totp", {})
    secret = re.search(r'id="totp-secret">([^<]+)<', page.text).group(1)
    assert requests.get(f"{base}/api/v1/cases", headers=fresh, timeout=10).status_code == 401   # sessions ended
    at = time.time()
    stale = requests.post(f"{base}/api/v1/auth/login", timeout=10, json={
        "username": "inspektur", "password": "kata-sandi-baru-2026", "otp": pyotp.TOTP(inspector["totp_secret"]).at(at)})
    assert stale.status_code == 401                                    # the old authenticator is dead
    assert login(base, {"username": "inspektur", "password": "kata-sandi-baru-2026", "totp_secret": secret}, at=at)
    changes = [row[0] for row in sqlalchemy.create_engine(config["DATABASE_URL"]).connect().execute(
        sqlalchemy.text("SELECT detail FROM audit_log WHERE action='account' ORDER BY seq"))]
    assert any("password_reset" in c for c in changes) and any("totp_reset" in c for c in changes)
    assert any("password_changed" in c for c in changes)


def test_a_new_account_must_choose_its_password_in_the_console(verification, storage, config, db):
    seed(verification)
    base = base_url(config)
    browser = console_session(base, make_admin(db))
    page = post(browser, base, "/admin/staff", {"username": "budi", "display_name": "Budi Santoso",
                                                "email": "budi@wbs.example.org", "unit": "dit-smp", "role": "inspector"})
    assert page.status_code == 200
    account = {"username": "budi", "password": re.search(r'id="one-time-password">([^<]+)<', page.text).group(1),
               "totp_secret": re.search(r'id="totp-secret">([^<]+)<', page.text).group(1)}
    person = console_session(base, account)
    assert person.get(f"{base}/", allow_redirects=False, timeout=10).headers["Location"] == "/password"
    assert person.get(f"{base}/password", timeout=10).status_code == 200
    refused = post(person, base, "/password", {"current": account["password"], "new": "kata-sandi-budi-2026",
                                               "repeat": "kata-sandi-budi-2026"}, origin=False)
    assert refused.status_code != 303 or refused.headers["Location"] == "/login"
    short = post(person, base, "/password", {"current": account["password"], "new": "short", "repeat": "short"})
    assert short.status_code == 400
    changed = post(person, base, "/password", {"current": account["password"], "new": "kata-sandi-budi-2026",
                                               "repeat": "kata-sandi-budi-2026"})
    assert changed.status_code == 303 and changed.headers["Location"] == "/"
    assert person.get(f"{base}/", allow_redirects=False, timeout=10).status_code == 200


def test_staff_csv_upload_is_all_or_nothing_and_shows_each_new_secret_once(verification, storage, config, db):
    seed(verification)
    base = base_url(config)
    browser = console_session(base, make_admin(db))
    assert 'action="/admin/staff/import"' in browser.get(f"{base}/admin/staff", timeout=10).text

    def upload(text, origin=True):
        return browser.post(f"{base}/admin/staff/import", files={"file": ("staff.csv", text.encode(), "text/csv")},
                            headers={"Origin": base} if origin else {}, allow_redirects=False, timeout=30)
    good = ("username,name,email,unit,role\n"
            "budi,Budi Santoso,budi@wbs.example.org,itjen,inspector\n"
            "sari,Sari Dewi,sari@wbs.example.org,dit-smp,supervisor\n")
    refused = upload(good, origin=False)
    assert refused.status_code in (303, 401, 403) and count(db, "SELECT count(*) FROM staff WHERE username='budi'") == 0
    bad = upload(good + "tono,Tono,tono@wbs.example.org,no-such-unit,inspector\n")
    assert bad.status_code == 400 and "4:" in bad.text               # the bad line, by its number
    assert count(db, "SELECT count(*) FROM staff WHERE username IN ('budi','sari')") == 0   # nothing imported

    page = upload(good)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    rows = re.findall(r"<tr>\s*<td[^>]*>(\w+)</td>\s*<td[^>]*><code>([^<]+)</code></td>\s*<td[^>]*><code>([^<]+)</code>",
                      page.text)
    assert [r[0] for r in rows] == ["budi", "sari"]
    _, password, totp_secret = rows[0]
    signed_in = login(base, {"username": "budi", "password": password, "totp_secret": totp_secret})
    blocked = requests.get(f"{base}/api/v1/cases", headers=signed_in, timeout=10)
    assert blocked.status_code == 403 and "password_change_required" in blocked.text   # a one-time password
    again = upload(good)                                              # re-importing changes nothing
    assert again.status_code == 200 and "<code>" not in again.text
    assert count(db, "SELECT count(*) FROM staff WHERE username IN ('budi','sari')") == 2

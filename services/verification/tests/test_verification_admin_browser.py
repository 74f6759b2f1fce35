"""The administration console in headless Chromium without JavaScript: the unit tree, adding a
unit, the staff list and a password reset, on a desktop and a 390 px phone. Screenshots under
test-output/screenshots/."""
import pyotp
from selenium.webdriver.support.ui import Select

from tests.browser import click_and_load, screenshot

from test_verification_admin_integration import make_admin
from test_verification_integration import (  # noqa: F401  (fixtures)
    base_url, broker, config, count, db, seed, storage, verification,
)


def sign_in(driver, base, account):
    driver.get(f"{base}/login")
    driver.find_element("id", "username").send_keys(account["username"])
    driver.find_element("id", "password").send_keys(account["password"])
    driver.find_element("id", "otp").send_keys(pyotp.TOTP(account["totp_secret"]).now())
    click_and_load(driver, ("id", "sign-in"))


def test_an_administrator_manages_units_and_accounts(chromium_without_javascript, verification, storage, config,
                                                     db, request):
    driver = chromium_without_javascript
    seed(verification)
    base = base_url(config)
    sign_in(driver, base, make_admin(db))
    driver.get(f"{base}/admin")
    tree = driver.find_element("id", "unit-tree").text
    assert "Inspektorat Jenderal" in tree and "Direktorat Sekolah Menengah Pertama" in tree
    assert "(Administrator)" in driver.page_source and "Kasus saya" not in driver.page_source
    screenshot(driver, request, "1-unit-tree")

    form = driver.find_element("id", "add-unit")
    form.find_element("name", "code").send_keys("dit-sma")
    form.find_element("name", "name").send_keys("Direktorat Sekolah Menengah Atas")
    Select(form.find_element("name", "parent")).select_by_value("itjen")
    Select(form.find_element("name", "timezone")).select_by_value("Asia/Makassar")
    click_and_load(driver, form.find_element("css selector", "button"))
    assert driver.current_url.endswith("/admin/units/dit-sma") and "WITA" in driver.page_source
    screenshot(driver, request, "2-unit-added")

    driver.get(f"{base}/admin/staff?role=inspector")
    assert "Inspektur Demo" in driver.find_element("id", "staff").text
    assert "Pemeriksa" in driver.find_element("id", "staff").text
    screenshot(driver, request, "3-staff-list")
    click_and_load(driver, ("link text", "Inspektur Demo"))
    click_and_load(driver, ("id", "reset-password"))
    assert driver.find_element("id", "one-time-password").text
    screenshot(driver, request, "4-one-time-password")
    assert count(db, "SELECT count(*) FROM audit_log WHERE action IN ('unit', 'account')") >= 2

    driver.set_window_size(390, 844)
    for path, label in (("/admin", "5-phone-unit-tree"), ("/admin/staff", "6-phone-staff")):
        driver.get(f"{base}{path}")
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), path
        screenshot(driver, request, label)

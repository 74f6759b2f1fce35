"""The case list in headless Chromium on a 390 px wide phone: register numbers, unit names,
times with WIB, Indonesian role name, pages, and no horizontal scrolling. Screenshots under
test-output/screenshots/."""
import pyotp

from tests.browser import click_and_load, screenshot

from test_verification_integration import (  # noqa: F401  (fixtures)
    base_url, broker, config, count, db, open_one, seed, storage, verification,
)

PHONE = (390, 844)


def fits_the_width(driver) -> bool:
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")


def test_the_case_list_on_a_phone(chromium_without_javascript, verification, storage, broker, db, config,
                                  request):
    driver = chromium_without_javascript
    demo = seed(verification)
    base = base_url(config)
    for _ in range(3):
        open_one(verification, broker, db)
    driver.set_window_size(*PHONE)

    driver.get(f"{base}/login")
    account = demo["inspector"]
    driver.find_element("id", "username").send_keys(account["username"])
    driver.find_element("id", "password").send_keys(account["password"])
    driver.find_element("id", "otp").send_keys(pyotp.TOTP(account["totp_secret"]).now())
    click_and_load(driver, ("id", "sign-in"))
    assert driver.execute_script("return window.innerWidth") <= PHONE[0]

    driver.get(f"{base}/")
    text = driver.find_element("tag name", "body").text
    assert "(Pemeriksa)" in text and "(inspector)" not in text
    assert "WBS/ITJEN/" in text and "/00003" in text
    assert "Direktorat Sekolah Menengah Pertama" in text and "dit-smp" not in text
    assert " WIB" in text
    assert "3 kasus ditemukan" in driver.find_element("id", "total").text
    assert fits_the_width(driver), driver.execute_script("return document.documentElement.scrollWidth")
    screenshot(driver, request, "1-phone-case-list")

    driver.get(f"{base}/?per_page=2&sort=received")
    assert "/00001" in driver.find_element("css selector", "table.cases").text
    click_and_load(driver, ("css selector", "a[rel=next]"))
    rows = driver.find_elements("css selector", "table.cases tbody tr")
    assert len(rows) == 1 and "/00003" in rows[0].text
    assert fits_the_width(driver)
    screenshot(driver, request, "2-phone-second-page")

    click_and_load(driver, ("css selector", "table.cases a"))
    assert "WBS/ITJEN/" in driver.find_element("css selector", ".reference").text
    assert fits_the_width(driver)
    screenshot(driver, request, "3-phone-case")

"""The inspector console in headless Chromium: sign in with TOTP, open a case, move it, post a
message, switch to English; screenshots under test-output/screenshots/. The console runs no
scripts, so the test also checks that nothing on the page needed JavaScript."""
import pyotp
from selenium.webdriver.support.ui import Select

from tests.browser import click_and_load, screenshot

from test_verification_integration import (  # noqa: F401  (fixtures)
    NARRATIVE, base_url, broker, config, count, db, open_one, seed, storage, verification,
)


def test_inspector_signs_in_opens_moves_and_messages_a_case(chromium_without_javascript, verification, storage,
                                                          broker, db, config, request):
    driver = chromium_without_javascript
    demo = seed(verification)
    base = base_url(config)
    event, case_id = open_one(verification, broker, db)

    driver.get(f"{base}/login")
    account = demo["inspector"]
    driver.find_element("id", "username").send_keys(account["username"])
    driver.find_element("id", "password").send_keys(account["password"])
    driver.find_element("id", "otp").send_keys(pyotp.TOTP(account["totp_secret"]).now())
    screenshot(driver, request, "1-sign-in")
    click_and_load(driver, ("id", "sign-in"))
    assert "Kasus saya" in driver.page_source
    screenshot(driver, request, "2-my-cases")

    click_and_load(driver, ("css selector", f"a[href='/cases/{case_id}']"))
    assert driver.find_element("id", "narrative").text == NARRATIVE
    assert driver.find_element("id", "case-state").text == "Diterima"

    Select(driver.find_element("id", "transition-to")).select_by_value("verification")
    click_and_load(driver, ("id", "transition-submit"))
    assert driver.find_element("id", "case-state").text == "Verifikasi"

    Select(driver.find_element("id", "visibility")).select_by_value("reporter")
    driver.find_element("id", "message-text").send_keys("Mohon lampirkan dokumen kontrak.")
    click_and_load(driver, ("id", "post-message"))
    assert "Mohon lampirkan dokumen kontrak." in driver.find_element("id", "messages").text
    assert count(db, "SELECT count(*) FROM case_messages WHERE case_id = :c", c=case_id) == 1
    screenshot(driver, request, "3-case-moved-and-messaged")

    driver.get(f"{base}/cases/{case_id}?lang=en")
    assert driver.find_element("id", "case-state").text == "Verification"
    assert "To the reporter" in driver.find_element("id", "messages").text
    screenshot(driver, request, "4-case-in-english")
    driver.get(f"{base}/stats")
    assert "Statistics" in driver.page_source and "<svg" in driver.page_source
    screenshot(driver, request, "5-statistics")

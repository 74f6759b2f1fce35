"""Headless Chromium for browser tests, driven through Selenium and Debian's chromedriver.

Why Selenium and not Playwright: Playwright's sync API runs an asyncio loop that never wakes
under eventlet's monkey-patching (the suite patches like ``nameko run`` does); Selenium speaks
plain HTTP to chromedriver, which green sockets handle. ``make test`` installs Debian's
``chromium`` and ``chromium-driver`` and sets ``HYPOTHESIS_NO_PLUGINS=1``, because hypothesis
would otherwise import trio (a Selenium dependency), which cannot load on patched sockets.

Screenshots go to ``test-output/screenshots/`` so a reviewer can look at what the test saw.
"""
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WBS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("WBS_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1600")


def start_chromium(javascript: bool = True, language: str = "id"):
    """A new headless Chromium with an empty profile; ``javascript=False`` turns scripts off."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="wbs-chromium-")
    for arg in ARGS + (f"--user-data-dir={profile}", f"--lang={language}"):
        options.add_argument(arg)
    prefs = {"intl.accept_languages": language}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    driver._wbs_profile = profile
    return driver


def stop_chromium(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver._wbs_profile, ignore_errors=True)


def click_and_load(driver, target, timeout: float = 20) -> None:
    """Click something that loads a new page, and return once that page has replaced the old one.

    ``target``: an element, or a ``(by, value)`` locator, which is found again if the element
    went stale between finding and clicking (on a loaded machine chromedriver has answered "node
    does not belong to the document" for an element it had just found).

    chromedriver's click returns when the click is dispatched, not when the form post it starts
    has been answered; reading the page straight after can find the old page's elements, or
    elements that go stale under the reader. Waiting for the old root element to go stale and
    the new document to finish loading removes that race.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    for attempt in range(3):
        old_root = driver.find_element("tag name", "html")
        element = driver.find_element(*target) if isinstance(target, tuple) else target
        try:
            element.click()
            break
        except WebDriverException as exc:
            if not (_stale(exc) and isinstance(target, tuple)) or attempt == 2:
                raise
            time.sleep(0.5)
    wait = WebDriverWait(driver, timeout)
    wait.until(lambda _driver: _gone(old_root))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _stale(exc) -> bool:
    """Whether chromedriver says the element left the document: as a stale reference, or (on a
    loaded machine) as "node does not belong to the document"."""
    from selenium.common.exceptions import StaleElementReferenceException

    return isinstance(exc, StaleElementReferenceException) or "does not belong to the document" in str(exc)


def _gone(element) -> bool:
    """selenium's ``staleness_of``, also for chromedriver's second way of saying it."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException as exc:
        if _stale(exc):
            return True
        raise
    return False


def screenshot(driver, request, label: str) -> Path:
    """Save what the browser shows as test-output/screenshots/<test name>-<label>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{request.node.name}-{label}")[:150]
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.fixture
def chromium():
    """A headless Chromium with JavaScript on, closed after the test."""
    driver = start_chromium()
    yield driver
    stop_chromium(driver)


@pytest.fixture
def chromium_without_javascript():
    driver = start_chromium(javascript=False)
    yield driver
    stop_chromium(driver)

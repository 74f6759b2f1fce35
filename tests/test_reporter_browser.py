"""The reporter's side in a real browser (headless Chromium), against all four services.

A reporter submits a report with two files, in Bahasa Indonesia and in English, reads the
receipt from the page, signs in with it on the follow-up page, reads the inspector's question
(posted through the console API with visibility "reporter"), answers it and adds a file; the
inspector then sees the answer. With JavaScript on, the proof of work (WBS_POW_BITS=8 here) is
solved in the page's Web Worker and the upload goes through the progress-bar path; a second run
with JavaScript off submits and follows up with plain HTML forms (WBS_POW_BITS=0, as required
for that path). Screenshots of every step go to test-output/screenshots/.
"""
import os

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser import click_and_load, screenshot
from tests.fixtures import wait_until
from tests.stack import Stack
from tests.test_end_to_end import enrol, sign_in

WAIT = 60


@pytest.fixture
def reporter_stack(tmp_path, rabbit_uri, pg_database, smtp_sink):
    def start(pow_bits, **env):
        databases = {s: pg_database(s) for s in ("intake", "storage", "verification", "notification")}
        stack = Stack(tmp_path / "stack", rabbit_uri, databases, smtp=(smtp_sink.host, smtp_sink.port),
                      pow_bits=pow_bits, extra_env=env)
        stack.start()
        stack.wbs("unit", "add", "br-itjen", "--name", "Inspektorat Jenderal", "--inspectorate")
        stack.wbs("unit", "add", "br-dit", "--name", "Direktorat Sarana", "--parent", "br-itjen")
        stack.inspector = enrol(stack, "br-inspektur", "br-itjen")
        stack.auth = sign_in(stack, stack.inspector)  # once: a TOTP code is good for one sign-in
        started.append(stack)
        return stack

    started = []
    yield start
    for stack in started:
        stack.stop()


def evidence_files(tmp_path, tag):
    paths = []
    for name, data in ((f"kuitansi-{tag}.pdf", b"%PDF-1.4 kuitansi " + os.urandom(300_000)),
                       (f"foto-{tag}.jpg", b"\xff\xd8\xff\xe0 foto " + os.urandom(120_000))):
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def wait_for(driver, by, value):
    return WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((by, value)))


def fill_report(driver, category, description, files):
    Select(driver.find_element(By.ID, "category")).select_by_value(category)
    driver.find_element(By.ID, "title").send_keys("Pungutan pada layanan sertifikasi")
    driver.find_element(By.ID, "description").send_keys(description)
    driver.find_element(By.ID, "party_name").send_keys("Pak Hendra")
    driver.find_element(By.ID, "party_position").send_keys("Kepala seksi")
    driver.find_element(By.ID, "occurred_from").send_keys("03012026")
    Select(driver.find_element(By.ID, "unit")).select_by_value("br-dit")
    driver.find_element(By.ID, "location").send_keys("Loket pelayanan lantai 2")
    driver.find_element(By.ID, "how").send_keys("Diminta uang tunai agar berkas diproses.")
    Select(driver.find_element(By.ID, "relationship")).select_by_value("public")
    driver.find_element(By.CSS_SELECTOR, "input[name=involved][value=no]").click()
    driver.find_element(By.ID, "good_faith").click()
    driver.find_element(By.ID, "evidence").send_keys("\n".join(files))


def submit_and_read_receipt(driver, request, label):
    driver.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    receipt = wait_for(driver, By.ID, "receipt").text.strip()
    screenshot(driver, request, f"{label}-receipt")
    assert len(receipt.replace("-", "")) == 20
    return receipt


def sign_in_on_page(driver, base, receipt, request, label, lang):
    driver.get(f"{base}/follow-up?lang={lang}")
    field = driver.find_element(By.ID, "receipt")
    field.send_keys(receipt.lower())
    screenshot(driver, request, f"{label}-sign-in")
    field.send_keys(Keys.ENTER)  # the keyboard alone signs in
    return wait_for(driver, By.ID, "state")


def case_for(stack, auth, category):
    def find():
        cases = requests.get(f"{stack.console_url}/api/v1/cases", headers=auth, timeout=10).json()["cases"]
        return next((c for c in cases if c["category"]["code"] == category), None)
    return wait_until(find, timeout=30)


def follow_up_with_the_inspector(driver, stack, request, label, lang, category, question, answer, extra_file=None):
    auth = stack.auth
    case = case_for(stack, auth, category)
    posted = requests.post(f"{stack.console_url}/api/v1/cases/{case['case_id']}/messages", headers=auth,
                           json={"text": question, "visibility": "reporter"}, timeout=10)
    assert posted.status_code == 201, f"verification's message API: {posted.status_code} {posted.text}"
    internal = requests.post(f"{stack.console_url}/api/v1/cases/{case['case_id']}/messages", headers=auth,
                             json={"text": f"internal note {label}", "visibility": "internal"}, timeout=10)
    assert internal.status_code == 201

    def question_shown():
        driver.get(f"{stack.intake_url}/follow-up?lang={lang}")
        return question in driver.find_element(By.TAG_NAME, "main").text
    wait_until(question_shown, timeout=30, interval=1)
    page = driver.find_element(By.TAG_NAME, "main").text
    assert f"internal note {label}" not in page
    screenshot(driver, request, f"{label}-question")

    driver.find_element(By.ID, "text").send_keys(answer)
    click_and_load(driver, (By.CSS_SELECTOR, "#message-form button[type=submit]"))
    wait_for(driver, By.CSS_SELECTOR, "p.notice")
    if extra_file:
        driver.find_element(By.ID, "evidence").send_keys(extra_file)
        driver.find_element(By.CSS_SELECTOR, "#evidence-form button[type=submit]").click()
        WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "3 berkas bukti" in d.find_element(By.TAG_NAME, "main").text)
    screenshot(driver, request, f"{label}-answered")

    def answer_seen_by_inspector():
        detail = requests.get(f"{stack.console_url}/api/v1/cases/{case['case_id']}", headers=auth, timeout=10).json()
        return answer in str(detail.get("messages"))
    wait_until(answer_seen_by_inspector, timeout=30, interval=0.5)


def test_reporter_submits_and_follows_up_in_both_languages(chromium, reporter_stack, request, tmp_path):
    stack = reporter_stack(pow_bits=8, INTAKE_MAX_FILE_BYTES=str(1024 * 1024))
    driver = chromium
    runs = (("id", "bribery", "Pemeriksa: kapan tepatnya uang diminta?", "Tanggal 3 Januari, pagi hari."),
            ("en", "procurement", "Inspector: who else was at the counter?", "Two colleagues from the front office."))
    for lang, category, question, answer in runs:
        label = f"js-{lang}"
        driver.get(f"{stack.intake_url}/?lang={lang}")
        heading = driver.find_element(By.TAG_NAME, "h1").text
        assert heading == {"id": "Laporkan dugaan pelanggaran", "en": "Report a suspected violation"}[lang]
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        if lang == "id":  # the page refuses a file over the limit before sending anything
            big = tmp_path / "terlalu-besar.bin"
            big.write_bytes(b"x" * (1024 * 1024 + 1))
            chooser = driver.find_element(By.ID, "evidence")
            chooser.send_keys(str(big))
            status = driver.find_element(By.ID, "pow-status")
            assert "terlalu besar" in status.text
            assert driver.execute_script("return document.getElementById('evidence').validity.valid") is False
            screenshot(driver, request, "js-id-too-big")
            chooser.clear()
        fill_report(driver, category, f"Laporan {lang}: petugas meminta uang.", evidence_files(tmp_path, lang))
        # the proof of work was solved in the Web Worker while the form was being filled in
        form = driver.find_element(By.ID, "report-form")
        WebDriverWait(driver, WAIT).until(lambda d: form.get_attribute("data-pow-ready"))
        assert form.get_attribute("data-pow-ready") == "worker"
        screenshot(driver, request, f"{label}-form")
        receipt = submit_and_read_receipt(driver, request, label)
        state = sign_in_on_page(driver, stack.intake_url, receipt, request, label, lang)
        assert state.get_attribute("data-code") in ("received", "verification")
        extra = evidence_files(tmp_path, f"later-{lang}")[1] if lang == "id" else None
        follow_up_with_the_inspector(driver, stack, request, label, lang, category, question, answer, extra)
        click_and_load(driver, (By.CSS_SELECTOR, "#signout-form button"))
        wait_for(driver, By.ID, "signin-form")
        driver.delete_all_cookies()

    auth = stack.auth
    cases = requests.get(f"{stack.console_url}/api/v1/cases", headers=auth, timeout=10).json()["cases"]
    counts = {c["category"]["code"]: requests.get(f"{stack.console_url}/api/v1/cases/{c['case_id']}", headers=auth,
                                                   timeout=10).json()["evidence"] for c in cases}
    assert len(counts["bribery"]) == 3 and len(counts["procurement"]) == 2


def test_reporter_submits_and_answers_without_javascript(chromium_without_javascript, reporter_stack, request,
                                                         tmp_path):
    stack = reporter_stack(pow_bits=0)
    driver = chromium_without_javascript
    driver.get(f"{stack.intake_url}/")
    fill_report(driver, "fraud", "Tanpa JavaScript: aset kantor dijual.", evidence_files(tmp_path, "nojs"))
    screenshot(driver, request, "nojs-form")
    receipt = submit_and_read_receipt(driver, request, "nojs")
    sign_in_on_page(driver, stack.intake_url, receipt, request, "nojs", "id")
    follow_up_with_the_inspector(driver, stack, request, "nojs", "id", "fraud",
                                 "Siapa pembelinya?", "Sebuah toko di pasar.")

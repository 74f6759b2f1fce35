"""The console's email pages against running verification and notification services (real
broker, PostgreSQL and the aiosmtpd sink): a staff member's "Notifikasi" page (delivery
preference, OpenPGP key with its reason when refused, removal), the administrators' email
templates (404 for anyone else; preview; save makes the next email use the edit), all form posts
behind the same-origin check, every change in the audit chain."""
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.orm import Session

from tests.fixtures import wait_until

from notification.service import NotificationService
from verification.models import AuditEntry

from test_verification_admin_integration import console_session, make_admin, post
from test_verification_integration import (  # noqa: F401  (fixtures)
    base_url, broker, config, count, db, open_one, seed, storage, verification,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "notification" / "tests"))
from pgp_keys import make_key  # noqa: E402  (notification's test keys)


def start_notification(container_factory, service_config, smtp_sink, base):
    config = service_config("notification", SMTP_HOST=smtp_sink.host, SMTP_PORT=smtp_sink.port,
                            WBS_CONSOLE_URL=base, NOTIFY_SWEEP_INTERVAL_SECONDS=0.1, NOTIFY_DIGEST_HOUR=24)
    container = container_factory(NotificationService, config)
    container.start()
    return container


def audit_changes(db):
    with Session(db) as session:
        return [(e.action, e.detail) for e in session.query(AuditEntry).order_by(AuditEntry.seq)]


def test_a_staff_member_sets_delivery_and_an_openpgp_key_on_their_own_page(
        verification, storage, config, db, container_factory, service_config, smtp_sink):
    demo = seed(verification)
    base = base_url(config)
    start_notification(container_factory, service_config, smtp_sink, base)
    browser = console_session(base, demo["inspector"])
    page = browser.get(f"{base}/me/notifications", timeout=30)
    assert page.status_code == 200, page.text
    assert "Notifikasi" in page.text and 'id="no-key"' in page.text
    assert 'href="/me/notifications"' in page.text  # in the navigation
    assert 'value="immediate" checked' in page.text
    assert 'name="digest"' not in page.text  # the digest period is a supervisor's

    # Another site's form (no Origin) changes nothing.
    refused = post(browser, base, "/me/notifications/preference", {"delivery": "daily"}, origin=False)
    assert refused.status_code == 303 and refused.headers["Location"] == "/login"
    assert 'value="immediate" checked' in browser.get(f"{base}/me/notifications", timeout=30).text
    saved = post(browser, base, "/me/notifications/preference", {"delivery": "daily"})
    assert saved.status_code == 303 and saved.headers["Location"] == "/me/notifications?saved=preference"
    page = browser.get(f"{base}/me/notifications?saved=preference&lang=en", timeout=30)
    assert 'value="daily" checked' in page.text and "Notifications" in page.text and 'id="saved"' in page.text

    # Refused keys come back with the reason, in the reader's language.
    expired = make_key(expires=timedelta(days=1), created=datetime.now(timezone.utc) - timedelta(days=10))
    answer = post(browser, base, "/me/notifications/key?lang=id", {"armored_key": str(expired.pubkey)})
    assert answer.status_code == 400 and "kunci sudah kedaluwarsa" in answer.text
    private = make_key()
    answer = post(browser, base, "/me/notifications/key", {"armored_key": str(private)})
    assert answer.status_code == 400 and "ini kunci privat" in answer.text  # the language chosen last
    assert post(browser, base, "/me/notifications/key", {"armored_key": "hello"}).status_code == 400
    assert post(browser, base, "/me/notifications/key", {"armored_key": str(private.pubkey)},
                origin=False).headers.get("Location") == "/login"

    key = make_key(expires=timedelta(days=365))
    registered = post(browser, base, "/me/notifications/key", {"armored_key": str(key.pubkey)})
    assert registered.status_code == 303
    page = browser.get(f"{base}/me/notifications", timeout=30).text
    fingerprint = str(key.fingerprint).replace(" ", "")
    assert fingerprint in page
    assert (datetime.now(timezone.utc) + timedelta(days=365)).strftime("%Y-%m-%d") in page
    removed = post(browser, base, "/me/notifications/key/remove", {})
    assert removed.status_code == 303 and 'id="no-key"' in browser.get(f"{base}/me/notifications", timeout=30).text
    changes = [detail for action, detail in audit_changes(db) if action == "account"]
    assert any('"change":"email_preference"' in d and "daily/daily" in d for d in changes)
    assert any('"change":"openpgp_key"' in d and fingerprint in d for d in changes)
    assert any('"change":"openpgp_key_removed"' in d for d in changes)


def test_email_templates_are_for_administrators_and_an_edit_changes_the_next_email(
        verification, storage, broker, config, db, container_factory, service_config, smtp_sink):
    demo = seed(verification)
    base = base_url(config)
    start_notification(container_factory, service_config, smtp_sink, base)
    boss = make_admin(db)
    supervisor = console_session(base, demo["supervisor"])
    for path in ("/admin/templates", "/admin/templates/case_assigned/en"):
        assert supervisor.get(f"{base}{path}", timeout=30).status_code == 404
    assert post(supervisor, base, "/admin/templates/case_assigned/en",
                {"subject": "x", "text": "{{ link }}", "action": "save"}).status_code == 404

    admin = console_session(base, boss, at=time.time() + 30)
    listing = admin.get(f"{base}/admin/templates?lang=en", timeout=30)
    assert listing.status_code == 200 and 'href="/admin/templates/case_assigned/en"' in listing.text
    assert 'href="/admin/templates"' in listing.text  # in the navigation
    editor = admin.get(f"{base}/admin/templates/case_assigned/en", timeout=30)
    assert editor.status_code == 200 and "A case needs your attention" in editor.text and "{{ link }}" in editor.text
    assert admin.get(f"{base}/admin/templates/no_such_kind/en", timeout=30).status_code == 404

    edit = {"subject": "Inspectorate General: a case for you", "text": "Hotline 1500-123\n{{ link }}\n"}
    preview = post(admin, base, "/admin/templates/case_assigned/en", dict(edit, action="preview"))
    assert preview.status_code == 200 and 'id="preview"' in preview.text
    assert "Hotline 1500-123\nhttps://example.invalid/sample-link" in preview.text
    bad = post(admin, base, "/admin/templates/case_assigned/en",
               {"subject": "x", "text": "{{ narrative }}", "action": "save"})
    assert bad.status_code == 400 and 'id="template-refused"' in bad.text and "may use only link" in bad.text
    foreign = post(admin, base, "/admin/templates/case_assigned/en", dict(edit, action="save"), origin=False)
    assert foreign.status_code in (303, 401) and foreign.headers.get("Location") == "/login"
    assert "version 1" not in admin.get(f"{base}/admin/templates?lang=en", timeout=30).text
    saved = post(admin, base, "/admin/templates/case_assigned/en", dict(edit, action="save"))
    assert saved.status_code == 303 and saved.headers["Location"] == "/admin/templates?saved=case_assigned.en"
    assert "version 1" in admin.get(f"{base}/admin/templates?lang=en", timeout=30).text
    assert ("email_template", '{"change":"version","detail":"1","target":"case_assigned.en"}') in audit_changes(db)

    # The next case assigned to the inspector: the edited text, the reference in the subject.
    _, case_id = open_one(verification, broker, db)
    (message,) = smtp_sink.wait_for(1, timeout=30)
    assert message["To"] == count(db, "SELECT s.email FROM staff s JOIN cases c ON c.assignee_id = s.id "
                                      "WHERE c.case_id = :id", id=case_id)
    subject = " ".join(str(message["Subject"]).split())
    reference = count(db, "SELECT reference FROM cases WHERE case_id = :id", id=case_id)
    assert reference and subject.startswith("[WBS] {}: ".format(reference))
    assert "Inspectorate General: a case for you" in subject
    body = message.get_body().get_content()
    assert "Hotline 1500-123" in body and "{}/cases/{}".format(base, case_id) in body

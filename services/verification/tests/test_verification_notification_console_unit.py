"""The console's email pages with nameko's worker_factory, an in-memory database and a stand-in
for notification's RPCs (the broker-backed test is test_verification_notification_console.py):
who reaches which page, what each form sends, the same-origin refusal, the reasons shown."""
import datetime as dt
from contextlib import contextmanager

import pyotp
import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from verification import auth, directory
from verification.entrypoints.notification_console import _Notification
from verification.errors import InvalidInput
from verification.models import AuditEntry
from verification.web_tier import VerificationWeb

HOST = "console.example.go.id"


class OneSession:
    """``Database`` over the test's session."""

    def __init__(self, session):
        self.session = session

    @contextmanager
    def transaction(self):
        yield self.session
        self.session.flush()


class FakeNotification:
    """What notification would answer; records what the console asked."""

    def __init__(self):
        self.calls, self.key = [], None

    def staff_settings(self, staff_id):
        self.calls.append(("staff_settings", staff_id))
        return {"staff_id": staff_id, "delivery": "immediate", "digest": "daily", "key": self.key}

    def set_preference(self, staff_id, delivery, digest):
        self.calls.append(("set_preference", staff_id, delivery, digest))
        return {"staff_id": staff_id, "delivery": delivery or "immediate", "digest": digest or "daily"}

    def register_key(self, staff_id, armored):
        self.calls.append(("register_key", staff_id))
        if "EXPIRED" in armored:
            raise InvalidInput("the key has expired")
        self.key = {"fingerprint": "ABCD" * 10, "expires_at": "2027-01-31T00:00:00+00:00"}
        return self.key

    def remove_key(self, staff_id):
        self.calls.append(("remove_key", staff_id))
        return {"removed": True}

    def list_templates(self, actor):
        self.calls.append(("list_templates", actor))
        return [{"kind": "case_assigned", "language": lang, "version": 0, "subject": "A case needs your attention",
                 "text": "Dear colleague,\n{{ link }}\n", "html": None} for lang in ("id", "en")]

    def preview_template(self, actor, kind, language, subject, text, html):
        self.calls.append(("preview_template", actor, kind, language))
        if "narrative" in text:
            raise InvalidInput("text may use only link")
        return {"subject": subject, "text": text.replace("{{ link }}", "https://example.invalid/sample-link"),
                "html": None}

    def set_template(self, actor, kind, language, subject, text, html):
        self.calls.append(("set_template", actor, kind, language, subject, text, html))
        return {"kind": kind, "language": language, "version": 3}


@pytest.fixture
def console(session, demo, passwords):
    notification = FakeNotification()
    service = worker_factory(VerificationWeb, db=OneSession(session), notification=notification)
    admin = directory.add_staff(session, passwords, "admin1", "admin@example.org", "itjen", "admin")
    session.flush()

    def token(account, username):
        code = pyotp.TOTP(account["totp_secret"]).now()
        signed = auth.login(session, passwords, username, account["password"], code, ttl=dt.timedelta(hours=1))
        session.flush()
        return signed.token
    tokens = {"inspector": token(demo["inspector"], "inspektur"), "supervisor": token(demo["supervisor"], "supervisor"),
              "admin": token(admin, "admin1")}
    return service, notification, tokens, demo, admin


def request(method, path, token, data=None, origin=True):
    headers = {"Host": HOST, "Cookie": "wbs_console={}".format(token)}
    if origin:
        headers["Origin"] = "https://" + HOST
    return Request(EnvironBuilder(method=method, path=path, headers=headers, data=data).get_environ())


def page(response):
    return response.get_data(as_text=True)


def test_the_own_page_shows_saves_and_refuses_with_the_reason(console, session):
    service, notification, tokens, demo, _ = console
    me = demo["inspector"]["staff_id"]
    shown = service.me_notifications_page(request("GET", "/me/notifications", tokens["inspector"]))
    assert shown.status_code == 200 and "Notifikasi" in page(shown) and 'id="no-key"' in page(shown)
    assert 'name="digest"' not in page(shown)
    assert "digest" in page(service.me_notifications_page(request("GET", "/me/notifications", tokens["supervisor"])))

    foreign = service.me_notifications_preference(request("POST", "/me/notifications/preference",
                                                          tokens["inspector"], {"delivery": "daily"}, origin=False))
    assert foreign.status_code == 303 and foreign.headers["Location"] == "/login"
    assert not [c for c in notification.calls if c[0] == "set_preference"]
    saved = service.me_notifications_preference(request("POST", "/me/notifications/preference", tokens["inspector"],
                                                        {"delivery": "daily"}))
    assert saved.headers["Location"] == "/me/notifications?saved=preference"
    assert ("set_preference", me, "daily", None) in notification.calls

    refused = service.me_notifications_key(request("POST", "/me/notifications/key?lang=en", tokens["inspector"],
                                                   {"armored_key": "EXPIRED KEY"}))
    assert refused.status_code == 400 and "Key refused: the key has expired" in page(refused)
    assert "kunci sudah kedaluwarsa" in page(service.me_notifications_key(request(
        "POST", "/me/notifications/key?lang=id", tokens["inspector"], {"armored_key": "EXPIRED"})))
    registered = service.me_notifications_key(request("POST", "/me/notifications/key", tokens["inspector"],
                                                      {"armored_key": "A KEY"}))
    assert registered.status_code == 303
    shown = page(service.me_notifications_page(request("GET", "/me/notifications", tokens["inspector"])))
    assert "ABCD" * 10 in shown and "2027-01-31" in shown
    assert service.me_notifications_key_remove(request("POST", "/me/notifications/key/remove", tokens["inspector"],
                                                       {})).status_code == 303
    assert ("remove_key", me) in notification.calls
    details = [e.detail for e in session.query(AuditEntry).filter(AuditEntry.actor == me)]
    assert any("email_preference" in d for d in details) and any("ABCD" in d for d in details)
    assert any("openpgp_key_removed" in d for d in details)


def test_templates_are_for_administrators_only_and_a_save_is_audited(console, session):
    service, notification, tokens, _, admin = console
    for token in (tokens["inspector"], tokens["supervisor"]):
        assert service.admin_templates_page(request("GET", "/admin/templates", token)).status_code == 404
        assert service.admin_template_submit(request("POST", "/admin/templates/case_assigned/en", token, {
            "subject": "x", "text": "{{ link }}", "action": "save"}), "case_assigned", "en").status_code == 404
    assert not [c for c in notification.calls if c[0].endswith("template") or c[0] == "list_templates"]

    listing = service.admin_templates_page(request("GET", "/admin/templates", tokens["admin"]))
    assert listing.status_code == 200 and 'href="/admin/templates/case_assigned/en"' in page(listing)
    editor = service.admin_template_page(request("GET", "/admin/templates/case_assigned/en", tokens["admin"]),
                                         "case_assigned", "en")
    assert "A case needs your attention" in page(editor) and "{{ link }}" in page(editor)
    assert service.admin_template_page(request("GET", "/admin/templates/nope/en", tokens["admin"]),
                                       "nope", "en").status_code == 404

    form = {"subject": "Itjen: a case", "text": "Hotline 1500-123\r\n{{ link }}\r\n"}
    preview = service.admin_template_submit(request("POST", "/admin/templates/case_assigned/en", tokens["admin"],
                                                    dict(form, action="preview")), "case_assigned", "en")
    assert preview.status_code == 200 and "Hotline 1500-123\nhttps://example.invalid/sample-link" in page(preview)
    bad = service.admin_template_submit(request("POST", "/admin/templates/case_assigned/en", tokens["admin"],
                                                {"subject": "x", "text": "{{ narrative }}", "action": "preview"}),
                                        "case_assigned", "en")
    assert bad.status_code == 400 and "may use only link" in page(bad)
    foreign = service.admin_template_submit(request("POST", "/admin/templates/case_assigned/en", tokens["admin"],
                                                    dict(form, action="save"), origin=False), "case_assigned", "en")
    assert foreign.headers["Location"] == "/login"
    assert not [c for c in notification.calls if c[0] == "set_template"]
    saved = service.admin_template_submit(request("POST", "/admin/templates/case_assigned/en", tokens["admin"],
                                                  dict(form, action="save")), "case_assigned", "en")
    assert saved.headers["Location"] == "/admin/templates?saved=case_assigned.en"
    assert ("set_template", admin["staff_id"], "case_assigned", "en", "Itjen: a case",
            "Hotline 1500-123\n{{ link }}\n", None) in notification.calls
    (entry,) = session.query(AuditEntry).filter(AuditEntry.action == "email_template")
    assert entry.actor == admin["staff_id"] and '"detail":"3"' in entry.detail


def test_the_console_signs_each_command_for_exactly_its_arguments():
    from wbs_plumbing.grants import CommandSigner, CommandVerifier
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    verifier = CommandVerifier({"verification": key.public_key()})
    asked = []

    class Proxy:
        def __getattr__(self, name):
            class Method:
                method_name = name

                def call_async(self, *args, **kwargs):
                    asked.append((name, args, kwargs))

                    class Reply:
                        def result(self):
                            return {"removed": True}
                    return Reply()
            return Method()
    client = _Notification(Proxy(), CommandSigner("verification", key), 5)
    client.remove_key("s-1")
    client.set_template("a-1", "case_assigned", "en", "s", "{{ link }}", None)
    (_, _, removed), (_, _, template) = asked
    verifier.check(removed["command"], "remove_key", ("verification",), staff_id="s-1")
    verifier.check(template["command"], "set_template", ("verification",), kind="case_assigned", language="en",
                   actor="a-1")
    assert template["actor"] == "a-1"

"""The console's email pages, served by verification, kept by notification.

* ``/me/notifications`` (every staff member, for their own account): immediate emails or one a
  day, a supervisor's digest period, and an OpenPGP public key (fingerprint and expiry shown;
  a key notification refuses is shown again with the reason); remove the key.
* ``/admin/templates`` (administrators only; 404 for everyone else, like the rest of ``/admin``):
  every email kind in both languages with the version in use, an editor with a preview rendered
  by notification, and save (a new version).

notification owns these settings and templates; the pages call its RPCs with verification's own
signed command (``wbs_plumbing.grants``, issuer ``verification``), bound to the signed-in staff
member (``staff_id``) or, for templates, to the administrator who acts (``actor``): verification
signs only after the session (and for templates the ``admin`` role) is checked, and notification
accepts verification's key for exactly these RPCs (docs/broker-trust.md). Each change is also in
verification's audit chain (who, which account or template, never a key or a text). No
transaction is open during an RPC. Pages work without JavaScript; every form post passes the
same-origin check of the rest of the console.

``NotificationDirectory`` is the one RPC notification asks here for these features: the ids of
the active administrators, told when a staff member's key runs out (ids only).
"""
from __future__ import annotations

from nameko.exceptions import RemoteError
from sqlalchemy import select

from wbs_plumbing.deadline import Unavailable, call_with_deadline
from wbs_plumbing.grants import CommandSigner
from wbs_plumbing.queues import RpcProxy, rpc
from wbs_plumbing.web import http

from .. import admin, audit, casefile, views, web
from ..errors import Forbidden, InvalidInput, NotFound, VaultError
from ..models import Staff
from ..settings import Settings
from wbs_plumbing.config import service_settings
from .base import EXPECTED, Dependencies, remote_errors

KINDS = ("case_assigned", "reporter_replied", "routing_failed", "sla_reminder", "sla_breached", "sla_escalated",
         "daily_bundle", "supervisor_digest", "key_expiring", "key_expired", "key_expiring_admin",
         "key_expired_admin", "reporter_news")
LANGUAGES = ("id", "en")
TEMPLATE_ACTION = "email_template"
# notification's reasons for refusing a key -> the catalogue key that says it in the reader's language
KEY_REASONS = (("private key", "key_refused_private"), ("expired", "key_refused_expired"),
               ("revoked", "key_refused_revoked"), ("not an OpenPGP key", "key_refused_not_a_key"),
               ("ASCII-armored", "key_refused_not_a_key"), ("self-signature", "key_refused_signature"),
               ("encryption", "key_refused_no_encryption"))


class NotificationUnavailable(VaultError):
    """notification did not answer in time (a 503 page: try again)."""


class _Notification:
    """notification's RPCs as the console uses them: signed, with a deadline, errors mapped."""

    def __init__(self, proxy, signer: CommandSigner, timeout: float):
        self._proxy, self._signer, self._timeout = proxy, signer, timeout

    def _call(self, method: str, *args, bind: dict, **kwargs):
        command = self._signer.issue(method, **bind)
        try:
            return call_with_deadline(getattr(self._proxy, method), self._timeout, *args, command=command, **kwargs)
        except Unavailable:
            raise NotificationUnavailable("The notification service did not answer; please try again") from None
        except RemoteError as exc:
            if exc.exc_type == "Invalid":
                raise InvalidInput(str(exc.value)) from None
            if exc.exc_type == "Forbidden":  # notification does not know verification's key
                raise Forbidden("The notification service refused the console's command") from None
            raise

    def staff_settings(self, staff_id: str) -> dict:
        return self._call("staff_settings", staff_id, bind={"staff_id": staff_id})

    def set_preference(self, staff_id: str, delivery: str | None, digest: str | None) -> dict:
        return self._call("set_preference", staff_id, delivery=delivery, digest=digest, bind={"staff_id": staff_id})

    def register_key(self, staff_id: str, armored: str) -> dict:
        return self._call("register_key", staff_id, armored, bind={"staff_id": staff_id})

    def remove_key(self, staff_id: str) -> dict:
        return self._call("remove_key", staff_id, bind={"staff_id": staff_id})

    def list_templates(self, actor: str) -> list:
        return self._call("list_templates", actor=actor, bind={"actor": actor})

    def preview_template(self, actor: str, kind: str, language: str, subject: str, text: str, html) -> dict:
        return self._call("preview_template", kind, language, subject, text, html, actor=actor,
                          bind={"kind": kind, "language": language, "actor": actor})

    def set_template(self, actor: str, kind: str, language: str, subject: str, text: str, html) -> dict:
        return self._call("set_template", kind, language, subject, text, html, actor=actor,
                          bind={"kind": kind, "language": language, "actor": actor})


class NotificationRpc(RpcProxy):
    """The notification service, called with verification's signed command."""

    def __init__(self, **options):
        super().__init__("notification", **options)

    def setup(self):
        super().setup()
        self.timeout = service_settings(self.container, Settings.from_config).storage_timeout_seconds
        self.signer = CommandSigner.from_config(self.container.config, "verification")

    def get_dependency(self, worker_ctx):
        return _Notification(super().get_dependency(worker_ctx), self.signer, self.timeout)


def key_reason(message: str) -> str:
    """The catalogue key for notification's reason to refuse a key (the reason itself if unknown)."""
    return next((key for needle, key in KEY_REASONS if needle in message), "")


def _me(db, token):
    with casefile.signed_in(db, token) as (_, staff):
        return views.staff_view(staff)


def _admin(db, token):
    with casefile.signed_in(db, token) as (_, staff):
        return views.staff_view(admin.require_admin(staff))


def _template_form(data: dict) -> tuple[str, str, str | None]:
    subject, text = data.get("subject") or "", (data.get("text") or "").replace("\r\n", "\n")
    html = (data.get("html") or "").replace("\r\n", "\n")
    return subject, text, html if html.strip() else None


class NotificationConsole(Dependencies):
    notification = NotificationRpc()

    def _notification_page(self, request, page_name, status=200, **context):
        lang = web.language(request)
        return web.remember_language(request, web.page(page_name, status=status, lang=lang, **context),
                                     self.settings.secure_cookies)

    # ----------------------------------------------------------------- own account

    def _me_page(self, request, me, status=200, **context):
        current = self.notification.staff_settings(me["staff_id"])
        return self._notification_page(request, "me_notifications.html", status=status, me=me, current=current,
                                       saved=request.args.get("saved"), **context)

    @http("GET", "/me/notifications")
    @web.console
    def me_notifications_page(self, request):
        """The signed-in staff member's email preference and OpenPGP key."""
        return self._me_page(request, _me(self.db, web.cookie_token(request)))

    @http("POST", "/me/notifications/preference")
    @web.console_form
    def me_notifications_preference(self, request, data, token):
        """Form delivery (immediate|daily), digest (daily|weekly). Audited; emits nothing."""
        me = _me(self.db, token)
        delivery = data.get("delivery") if data.get("delivery") in ("immediate", "daily") else None
        digest = data.get("digest") if data.get("digest") in ("daily", "weekly") else None
        if delivery is None and digest is None:
            raise InvalidInput("Choose immediate or daily")
        saved = self.notification.set_preference(me["staff_id"], delivery, digest)
        self._audit(me["staff_id"], audit.ACCOUNT, target=me["staff_id"], change="email_preference",
                    detail="{}/{}".format(saved["delivery"], saved["digest"]))
        return "/me/notifications?saved=preference"

    @http("POST", "/me/notifications/key")
    @web.console
    def me_notifications_key(self, request):
        """Form armored_key: registered (fingerprint and expiry shown), or the page again with
        notification's reason (400): not a key, a private key, expired, revoked, no encryption."""
        web.same_origin(request)
        data = web.form(request)
        me = _me(self.db, web.cookie_token(request))
        try:
            registered = self.notification.register_key(me["staff_id"], data.get("armored_key") or "")
        except InvalidInput as refused:
            return self._me_page(request, me, status=400, refused=refused.message,
                                 refused_key=key_reason(refused.message))
        self._audit(me["staff_id"], audit.ACCOUNT, target=me["staff_id"], change="openpgp_key",
                    detail=registered["fingerprint"])
        return web.redirect("/me/notifications?saved=key")

    @http("POST", "/me/notifications/key/remove")
    @web.console_form
    def me_notifications_key_remove(self, request, data, token):
        """Forget the signed-in staff member's key (their next emails go in clear). Audited."""
        me = _me(self.db, token)
        if self.notification.remove_key(me["staff_id"])["removed"]:
            self._audit(me["staff_id"], audit.ACCOUNT, target=me["staff_id"], change="openpgp_key_removed")
        return "/me/notifications?saved=removed"

    # ----------------------------------------------------------------- email templates (admin)

    @http("GET", "/admin/templates")
    @web.console
    def admin_templates_page(self, request):
        """Every email kind × language with the version in use (0: the shipped default)."""
        me = _admin(self.db, web.cookie_token(request))
        listed = self.notification.list_templates(me["staff_id"])
        versions = {(t["kind"], t["language"]): t["version"] for t in listed}
        kinds = [k for k in KINDS if (k, "id") in versions] + sorted({k for k, _ in versions} - set(KINDS))
        return self._notification_page(request, "admin_templates.html", me=me, kinds=kinds, languages=LANGUAGES,
                                       versions=versions, saved=request.args.get("saved"))

    def _template(self, me, kind, language):
        if language not in LANGUAGES:
            raise NotFound("No such template")
        found = next((t for t in self.notification.list_templates(me["staff_id"])
                      if t["kind"] == kind and t["language"] == language), None)
        if found is None:
            raise NotFound("No such template")
        return found

    @http("GET", "/admin/templates/<kind>/<language>")
    @web.console
    def admin_template_page(self, request, kind, language):
        """The editor of one template, filled with the sources in use."""
        me = _admin(self.db, web.cookie_token(request))
        template = self._template(me, kind, language)
        return self._notification_page(request, "admin_template.html", me=me, edited=template,
                                       form=template, preview=None)

    @http("POST", "/admin/templates/<kind>/<language>")
    @web.console
    def admin_template_submit(self, request, kind, language):
        """Form subject, text, html, action = preview | save. Preview: the page again with the
        email rendered by notification (sample link); save: a new version (audited), back to the
        list. A template notification refuses: the page again (400) with its reason."""
        web.same_origin(request)
        data = web.form(request)
        me = _admin(self.db, web.cookie_token(request))
        template = self._template(me, kind, language)
        subject, text, html = _template_form(data)
        form = dict(template, subject=subject, text=text, html=html)
        try:
            if data.get("action") == "save":
                saved = self.notification.set_template(me["staff_id"], kind, language, subject, text, html)
                self._audit(me["staff_id"], TEMPLATE_ACTION, target="{}.{}".format(kind, language),
                            change="version", detail=str(saved["version"]))
                return web.redirect("/admin/templates?saved={}.{}".format(kind, language))
            preview = self.notification.preview_template(me["staff_id"], kind, language, subject, text, html)
        except InvalidInput as refused:
            return self._notification_page(request, "admin_template.html", status=400, me=me, edited=template,
                                           form=form, preview=None, refused=refused.message)
        return self._notification_page(request, "admin_template.html", me=me, edited=template, form=form,
                                       preview=preview)

    def _audit(self, actor: str, action: str, **detail) -> None:
        with self.db.transaction() as session:
            audit.append(session, actor, action, None, **detail)


class NotificationDirectory(Dependencies):
    @rpc(expected_exceptions=EXPECTED)
    @remote_errors
    def administrator_ids(self):
        """Input: none. Returns the ids of the active administrators (notification tells them when
        a staff member's OpenPGP key runs out; it sends to each through ``get_recipient``). Ids
        only. Emits nothing."""
        with self.db.transaction() as session:
            return [str(i) for i in session.scalars(select(Staff.id).where(Staff.role == "admin",
                                                                          Staff.active.is_(True)))]

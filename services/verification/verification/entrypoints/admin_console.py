"""The administration console (``/admin``) and its JSON API (``/api/v1/admin/``), and the
password change every account on a one-time password must make first (``/password``).

Only the ``admin`` role sees any of it; for everyone else every admin address answers 404, like a
case out of reach. Pages work without JavaScript; every form post goes through the same-origin
check as the rest of the console (``web.console_form`` / ``web.same_origin``). The use cases are
``admin`` (and ``directory_import`` for the CSV upload); each one is audited there.
"""
from __future__ import annotations

from contextlib import contextmanager

from wbs_plumbing.web import http

from .. import admin, auth, casefile, directory_import, views, web, zones
from ..errors import InvalidInput, NotFound
from ..models import ROLES
from .base import Dependencies

MAX_UPLOAD_BYTES = 1024 * 1024


def as_admin(db, token, use_case, *args, **kwargs):
    """(the administrator, ``use_case(session, admin_id, ...)``); NotFound for anyone else."""
    with casefile.signed_in(db, token) as (session, staff):
        admin.require_admin(staff)
        return views.staff_view(staff), use_case(session, staff.id, *args, **kwargs)


@contextmanager
def signed_in_for_password(db, token):
    """Like ``casefile.signed_in``, but lets an account on a one-time password in (only here)."""
    with db.transaction() as session:
        yield session, auth.authenticate(session, token, changing_password=True)


def _viewing(session, _actor, use_case, *args, **kwargs):
    return use_case(session, *args, **kwargs)


def _uploaded_csv(request) -> str:
    """The text of the form's ``file`` (at most 1 MiB, UTF-8 with or without a BOM)."""
    if request.content_length is None or request.content_length > MAX_UPLOAD_BYTES:
        raise InvalidInput("The file must be at most 1 MiB")
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("Choose a CSV file")
    return upload.read(MAX_UPLOAD_BYTES + 1).decode("utf-8-sig", errors="replace")


def _filters(request) -> dict:
    return {k: (request.args.get(k) or "").strip() or None for k in ("q", "unit", "role", "active")}


class AdminConsole(Dependencies):
    def _admin_page(self, request, template, status=200, **context):
        lang = web.language(request)
        return web.remember_language(request, web.page(template, status=status, lang=lang, roles=ROLES,
                                                        zones=zones.CHOICES, **context),
                                     self.settings.secure_cookies)

    # ----------------------------------------------------------------- own password

    @http("GET", "/password")
    @web.console
    def password_page(self, request):
        """The form to choose a new password (forced after a reset or for a new account)."""
        with signed_in_for_password(self.db, web.cookie_token(request)) as (_, staff):
            me = views.staff_view(staff)
            forced = bool(staff.must_change_password)
        return self._admin_page(request, "password.html", me=me, forced=forced)

    @http("POST", "/password")
    @web.console
    def password_submit(self, request):
        """Form current, new, repeat. Back to the case list (or /admin) once changed."""
        web.same_origin(request)
        data = web.form(request)
        with signed_in_for_password(self.db, web.cookie_token(request)) as (session, staff):
            admin.change_own_password(session, self.passwords, staff, data.get("current"), data.get("new"),
                                      data.get("repeat"))
            role = staff.role
        return web.redirect("/admin" if role == "admin" else "/")

    @http("POST", "/api/v1/me/password")
    @web.api
    def api_change_password(self, request):
        """Input: bearer token, {current, new}. 204 once changed (required after a reset or for a
        new account: until then every other call answers 403 password_change_required); 400 a
        wrong current password or a new one under 12 characters. Emits nothing."""
        data = web.json_body(request)
        with signed_in_for_password(self.db, web.bearer_token(request)) as (session, staff):
            admin.change_own_password(session, self.passwords, staff, web.text_field(data, "current", required=True),
                                      web.text_field(data, "new", required=True), None)
        return web.no_content()

    # ----------------------------------------------------------------- units

    @http("GET", "/admin")
    @web.console
    def admin_units_page(self, request):
        """The unit tree with the number of cases per unit, and the forms to add and import."""
        me, tree = as_admin(self.db, web.cookie_token(request), _viewing, admin.unit_tree)
        return self._admin_page(request, "admin_units.html", me=me, tree=tree)

    @http("POST", "/admin/units")
    @web.console_form
    def admin_unit_add(self, request, data, token):
        """Form code, name, parent, inspectorate, timezone. Emits unit_changed."""
        code = (data.get("code") or "").strip()
        as_admin(self.db, token, admin.add_unit, code, data.get("name", ""), data.get("parent") or None,
                 web.form_flag(data, "inspectorate"), data.get("timezone") or None)
        return f"/admin/units/{code}"

    @http("GET", "/admin/units/<code>")
    @web.console
    def admin_unit_page(self, request, code):
        """One unit: rename, move, inspectorate flag, disable, time zone, deadline clocks."""
        me, tree = as_admin(self.db, web.cookie_token(request), _viewing, admin.unit_tree)
        unit = next((u for u in tree if u["code"] == code), None)
        if unit is None:
            raise NotFound("No such unit")
        return self._admin_page(request, "admin_unit.html", me=me, unit=unit, tree=tree)

    @http("POST", "/admin/units/<code>")
    @web.console_form
    def admin_unit_update(self, request, data, token, code):
        """Form name, parent, inspectorate, active, timezone, clock fields. Emits unit_changed."""
        clocks = {}
        for name in ("ack_days", "verification_days", "feedback_months"):
            if (data.get(name) or "").strip():
                try:
                    clocks[name] = int(data[name])
                except ValueError:
                    raise InvalidInput(f"'{name}' must be a whole number")
        if "clocks" in data:
            clocks.update(ack_working_days=web.form_flag(data, "ack_working_days"),
                          verification_working_days=web.form_flag(data, "verification_working_days"))
        as_admin(self.db, token, admin.update_unit, code, name=data.get("name"),
                 parent=data.get("parent"), move="parent" in data,
                 inspectorate=web.form_flag(data, "inspectorate") if "flags" in data else None,
                 active=web.form_flag(data, "active") if "flags" in data else None,
                 timezone=data.get("timezone") or None, clocks=clocks or None)
        return f"/admin/units/{code}"

    @http("POST", "/admin/import")
    @web.console
    def admin_import(self, request):
        """Multipart ``file``: a units CSV, all or nothing (``directory_import``). The page lists
        every bad line with its number, or what was added and changed."""
        web.same_origin(request)
        me, outcome = as_admin(self.db, web.cookie_token(request), directory_import.import_units_text,
                               _uploaded_csv(request))
        return self._admin_page(request, "admin_import.html", status=200 if outcome["ok"] else 400,
                                me=me, outcome=outcome)

    @http("POST", "/admin/staff/import")
    @web.console
    def admin_staff_import(self, request):
        """Multipart ``file``: a staff CSV (``username,name,email,unit,role``), all or nothing.
        The answer page shows each new account's one-time password and authenticator enrolment
        once (never stored in clear, never shown again), or every bad line with its number."""
        web.same_origin(request)
        me, outcome = as_admin(self.db, web.cookie_token(request),
                               lambda s, a, text: directory_import.import_staff_text(s, self.passwords, a, text),
                               _uploaded_csv(request))
        return self._admin_page(request, "admin_staff_import.html", status=200 if outcome["ok"] else 400,
                                me=me, outcome=outcome)

    # ----------------------------------------------------------------- staff

    @http("GET", "/admin/staff")
    @web.console
    def admin_staff_page(self, request):
        """Accounts with filters (text, unit with sub-units, role, state) and the form to add one."""
        filters = _filters(request)
        me, members = as_admin(self.db, web.cookie_token(request), _viewing, admin.list_staff, **filters)
        _, tree = as_admin(self.db, web.cookie_token(request), _viewing, admin.unit_tree)
        return self._admin_page(request, "admin_staff.html", me=me, members=members, filters=filters, tree=tree)

    @http("POST", "/admin/staff")
    @web.console
    def admin_staff_add(self, request):
        """Form username, name, email, unit, role, nip. Shows the one-time password and TOTP once."""
        web.same_origin(request)
        data = web.form(request)
        me, created = as_admin(self.db, web.cookie_token(request), lambda s, a, *x: admin.add_staff(s, self.passwords, a, *x),
                               data.get("username", ""), data.get("email", ""), data.get("unit", ""),
                               data.get("role", "inspector"), data.get("display_name") or None, data.get("nip") or None)
        return self._admin_page(request, "admin_secret.html", me=me, secret=created, kind="added")

    @http("GET", "/admin/staff/<ref>")
    @web.console
    def admin_member_page(self, request, ref):
        """One account: role, unit, oversight, disable/enable and the resets."""
        me, members = as_admin(self.db, web.cookie_token(request), _viewing, admin.list_staff)
        member = next((m for m in members if m["staff_id"] == ref or m["username"] == ref), None)
        if member is None:
            raise NotFound("No such account")
        _, tree = as_admin(self.db, web.cookie_token(request), _viewing, admin.unit_tree)
        return self._admin_page(request, "admin_member.html", me=me, member=member, tree=tree)

    @http("POST", "/admin/staff/<ref>")
    @web.console_form
    def admin_member_update(self, request, data, token, ref):
        """Form action = role | unit | oversight | enable | disable | revoke | unlock."""
        action = data.get("action")
        if action == "role":
            as_admin(self.db, token, admin.set_role, ref, data.get("role", ""))
        elif action == "unit":
            as_admin(self.db, token, admin.move_staff, ref, data.get("unit", ""))
        elif action == "oversight":
            as_admin(self.db, token, admin.set_oversight, ref, (data.get("oversees") or "").split(","),
                     web.form_flag(data, "escalation_pool"))
        elif action in ("enable", "disable"):
            as_admin(self.db, token, admin.set_active, ref, action == "enable")
        elif action == "revoke":
            as_admin(self.db, token, admin.revoke_sessions, ref)
        elif action == "unlock":
            as_admin(self.db, token, admin.unlock, ref)
        else:
            raise InvalidInput("Unknown action")
        return f"/admin/staff/{ref}"

    @http("POST", "/admin/staff/<ref>/reset-password")
    @web.console
    def admin_reset_password(self, request, ref):
        """A one-time password, shown once on the answer page; forced change at next sign-in."""
        web.same_origin(request)
        me, secret = as_admin(self.db, web.cookie_token(request),
                              lambda s, a, r: admin.reset_password(s, self.passwords, a, r), ref)
        return self._admin_page(request, "admin_secret.html", me=me, secret=secret, kind="password")

    @http("POST", "/admin/staff/<ref>/reset-totp")
    @web.console
    def admin_reset_totp(self, request, ref):
        """A new TOTP enrolment, shown once; the old authenticator is dead at once."""
        web.same_origin(request)
        me, secret = as_admin(self.db, web.cookie_token(request), admin.reset_totp, ref)
        return self._admin_page(request, "admin_secret.html", me=me, secret=secret, kind="totp")

    # ----------------------------------------------------------------- JSON API

    @http("GET", "/api/v1/admin/units")
    @web.api
    def api_admin_units(self, request):
        """Input: an administrator's bearer token. 200 {units: [...]} depth first with their
        parent, flags, time zone, clocks and number of cases. 404 for any other role."""
        _, tree = as_admin(self.db, web.bearer_token(request), _viewing, admin.unit_tree)
        return web.json_response({"units": tree})

    @http("GET", "/api/v1/admin/staff")
    @web.api
    def api_admin_staff(self, request):
        """Input: an administrator's bearer token; filters q, unit (with sub-units), role, active
        (active|disabled). 200 {staff: [...]}. 404 for any other role."""
        _, members = as_admin(self.db, web.bearer_token(request), _viewing, admin.list_staff, **_filters(request))
        return web.json_response({"staff": members})

"""The verification service: cases, units, staff, routing, lifecycle; the inspector console and API.

Entrypoints only: each parses its input, calls one function (``domain``, ``casefile``, ``auth``)
with its collaborators, and shapes the answer (``web``). Errors are domain errors mapped in one
place: ``web.api`` for the JSON API, ``web.console`` for pages, ``_rpc_errors`` for RPC.
"""
from __future__ import annotations

import functools

from nameko.rpc import rpc

from wbs_contracts import errors as contract_errors
from wbs_plumbing.db import Database
from wbs_plumbing.reliable import event_handler
from wbs_plumbing.web import http

from . import casefile, domain, web
from .dependencies import PasswordHashing, Vault, VerificationSettings
from .errors import Conflict, DomainError, InvalidInput, NotFound
from .models import Base, OutboxMessage, ProcessedEvent

_REMOTE = {InvalidInput: contract_errors.Invalid, Conflict: contract_errors.Conflict, NotFound: contract_errors.NotFound}
_EXPECTED = tuple(_REMOTE.values())


def _rpc_errors(method):
    """Raise the shared contract error types over RPC, so callers can tell refusals apart."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except DomainError as exc:
            remote = next((r for d, r in _REMOTE.items() if isinstance(exc, d)), contract_errors.Invalid)
            raise remote(exc.message) from None

    return wrapper


class VerificationService:
    name = "verification"

    db = Database(Base, OutboxMessage)
    settings = VerificationSettings()
    passwords = PasswordHashing()
    vault = Vault()

    # ------------------------------------------------------------------ events

    @event_handler("intake", "report_submitted")
    def handle_report_submitted(self, event):
        """Open, route and announce the case for a submitted report.

        Input: ``report_submitted`` {report_id, unit, category, evidence_count} (schema-checked).
        Emits: ``case_opened``; ``case_assigned`` when an inspector was found.
        Errors: a malformed event is dead-lettered at once (PermanentError); database failures
        are retried, then dead-lettered. Redelivery does nothing (processed_events + unique
        report_id).
        """
        try:
            with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
                if session is None:
                    return
                domain.open_case(session, event)
        except InvalidInput as exc:
            raise contract_errors.PermanentError(exc.message) from None

    # ------------------------------------------------------------------ RPC

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def list_units(self):
        """Input: none. Returns [{code, name, parent, inspectorate}]. Emits nothing."""
        with self.db.transaction() as session:
            return domain.list_units(session)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def add_unit(self, code, name, parent=None, inspectorate=False):
        """Input: unit code, name, optional parent code and inspectorate flag. Returns the unit.
        Emits nothing. Errors: Invalid (bad code, unknown parent), Conflict (code exists)."""
        with self.db.transaction() as session:
            return domain.add_unit(session, code, name, parent, inspectorate)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def add_staff(self, username, email, unit, role="inspector", display_name=None):
        """Input: username, email, home unit code, role. Returns {staff_id, username, role, unit,
        password, totp_secret, otpauth_uri}: the password is shown this once. Emits nothing.
        Errors: Invalid (bad field, unknown unit), Conflict (username taken)."""
        with self.db.transaction() as session:
            return domain.add_staff(session, self.passwords, username, email, unit, role,
                                    display_name=display_name)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def get_recipient(self, staff_id):
        """Input: staff id. Returns {email, display_name, language} or None (unknown/inactive).
        Emits nothing. For notification's content-free emails."""
        with self.db.transaction() as session:
            return domain.get_recipient(session, staff_id)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def get_report_status(self, report_id, language="id"):
        """Input: report id (intake, for the reporter's status page). Returns {state: {code,
        label}, history: [{code, label, at}]} with reporter labels, or None. Emits nothing.
        Never returns staff names or internal reasons."""
        with self.db.transaction() as session:
            return domain.report_status(session, report_id, language)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def seed_demo(self):
        """Input: none. Creates the demo directory once. Returns {inspector, supervisor} with
        username, password and TOTP secret (fixed in development; random, shown once,
        otherwise). Emits nothing."""
        with self.db.transaction() as session:
            return domain.seed_demo(session, self.passwords, development=self.settings.development)

    # ------------------------------------------------------------------ inspector API

    @http("POST", "/api/v1/auth/login")
    @web.api
    def api_login(self, request):
        """Input: {username, password, otp}. 200 {token, expires_at}; 401 for any wrong factor
        or a replayed code; 400 malformed. Emits nothing."""
        data = web.json_body(request)
        result = casefile.sign_in(self.db, self.passwords, self.settings,
                                  web.text_field(data, "username", required=True),
                                  web.text_field(data, "password", required=True),
                                  web.text_field(data, "otp", required=True))
        return web.signed_in(result)

    @http("POST", "/api/v1/auth/logout")
    @web.api
    def api_logout(self, request):
        """Input: bearer token. 204; the session is revoked. Emits nothing."""
        casefile.sign_out(self.db, web.bearer_token(request))
        return web.no_content()

    @http("GET", "/api/v1/cases")
    @web.api
    def api_list_cases(self, request):
        """Input: bearer token; filters state, unit, category. 200 {cases: [...]} (metadata of
        the cases in the caller's reach). 401 without a valid session. Emits nothing."""
        _, cases = casefile.list_cases(self.db, web.bearer_token(request), **web.case_filters(request))
        return web.json_response({"cases": cases})

    @http("GET", "/api/v1/cases/<case_id>")
    @web.api
    def api_get_case(self, request, case_id):
        """Input: bearer token, case id. 200 the case with narrative, parties, evidence list and
        history (a content read, audited by storage). 404 missing or out of reach; 503 storage
        away. Emits nothing."""
        _, case = casefile.read_case_file(self.db, self.vault, web.bearer_token(request), case_id)
        return web.json_response(case)

    @http("POST", "/api/v1/cases/<case_id>/transitions")
    @web.api
    def api_transition(self, request, case_id):
        """Input: bearer token, {to, reason}. 200 the case's metadata and history. 409 a move the
        lifecycle forbids; 400 missing reason or unknown state; 404 out of reach.
        Emits: ``case_status_changed``."""
        data = web.json_body(request)
        case = casefile.transition(self.db, web.bearer_token(request), case_id,
                                   web.text_field(data, "to", required=True), web.text_field(data, "reason"))
        return web.json_response(case)

    @http("GET", "/api/v1/cases/<case_id>/evidence/<evidence_id>")
    @web.api
    def api_evidence(self, request, case_id, evidence_id):
        """Input: bearer token. 200 the decrypted file as an attachment, streamed 1 MiB at a time
        from storage. 404 missing or out of reach. Emits nothing."""
        item, chunks = casefile.open_evidence(self.db, self.vault, web.bearer_token(request), case_id, evidence_id)
        return web.attachment(item, chunks)

    # ------------------------------------------------------------------ console pages

    @http("GET", "/login")
    def login_page(self, request):
        """The sign-in form."""
        return web.page("login.html")

    @http("POST", "/login")
    @web.console
    def login_submit(self, request):
        """Input: form username, password, otp. Sets the HttpOnly SameSite=Strict session cookie
        and redirects to the case list; shows the form again with a generic error otherwise."""
        web.same_origin(request)
        data = web.form(request)
        try:
            result = casefile.sign_in(self.db, self.passwords, self.settings, data.get("username", ""),
                                      data.get("password", ""), data.get("otp", ""))
        except DomainError:
            return web.page("login.html", status=401, error="Nama pengguna, kata sandi atau kode salah.")
        return web.set_session_cookie(web.redirect("/"), result, self.settings.secure_cookies)

    @http("POST", "/logout")
    @web.console
    def logout_submit(self, request):
        """Revokes the session and clears the cookie."""
        web.same_origin(request)
        casefile.sign_out(self.db, web.cookie_token(request))
        return web.clear_session_cookie(web.redirect("/login"), self.settings.secure_cookies)

    @http("GET", "/")
    @web.console
    def cases_page(self, request):
        """The signed-in staff member's cases."""
        me, cases = casefile.list_cases(self.db, web.cookie_token(request), **web.case_filters(request))
        return web.page("cases.html", me=me, cases=cases)

    @http("GET", "/cases/<case_id>")
    @web.console
    def case_page(self, request, case_id):
        """One case: narrative, parties, evidence links, history and the transition form
        (a content read, audited by storage)."""
        me, case = casefile.read_case_file(self.db, self.vault, web.cookie_token(request), case_id)
        return web.page("case.html", me=me, case=case)

    @http("POST", "/cases/<case_id>/transitions")
    @web.console
    def case_transition_submit(self, request, case_id):
        """Form to, reason. Emits ``case_status_changed``; redirects back to the case."""
        web.same_origin(request)
        data = web.form(request)
        casefile.transition(self.db, web.cookie_token(request), case_id, data.get("to", ""), data.get("reason"))
        return web.redirect(f"/cases/{case_id}")

    @http("GET", "/cases/<case_id>/evidence/<evidence_id>")
    @web.console
    def case_evidence_download(self, request, case_id, evidence_id):
        """The decrypted evidence file as an attachment, streamed."""
        item, chunks = casefile.open_evidence(self.db, self.vault, web.cookie_token(request), case_id, evidence_id)
        return web.attachment(item, chunks)

    @http("GET", "/static/console.css")
    def stylesheet(self, request):
        return web.stylesheet()

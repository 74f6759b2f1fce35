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
from wbs_plumbing.timers import configured_timer
from wbs_plumbing.web import http

from . import audit, casefile, deadlines, domain, openapi, statistics, web
from .dependencies import Clock, GrantSigning, PasswordHashing, Vault, VerificationSettings
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
    signer = GrantSigning()
    clock = Clock()

    # ------------------------------------------------------------------ events

    @event_handler("intake", "report_submitted")
    def handle_report_submitted(self, event):
        """Open, route and announce the case for a submitted report.

        Input: ``report_submitted`` {report_id, unit, category, evidence_count} (schema-checked).
        The report's parties are read from storage first (grant subject ``verification``), so
        routing can exclude anyone named in them.
        Emits: ``case_opened``; ``case_assigned`` when someone eligible was found.
        Errors: a malformed event is dead-lettered at once (PermanentError); storage or database
        failures are retried, then dead-lettered. Redelivery does nothing (processed_events +
        unique report_id).
        """
        try:
            parties, note = casefile.routing_parties(self.vault, event.get("report_id") or "")
            with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
                if session is None:
                    return
                domain.open_case(session, event, parties=parties, parties_note=note, now=self.clock(),
                                 calendar=self.settings.calendar)
        except InvalidInput as exc:
            raise contract_errors.PermanentError(exc.message) from None

    @event_handler("intake", "reporter_message_posted")
    def handle_reporter_message_posted(self, event):
        """Record the reporter's answer on the case.

        Input: ``reporter_message_posted`` {report_id, message_id} (the text is in storage).
        Emits: ``case_message_posted`` {case_id, direction: from_reporter, message_id}; and
        ``case_status_changed`` when the case was waiting for the reporter (back to verification).
        Errors: malformed -> dead-lettered; no case yet -> retried, then dead-lettered.
        """
        try:
            with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
                if session is None:
                    return
                domain.record_reporter_message(session, event, now=self.clock(), calendar=self.settings.calendar)
        except InvalidInput as exc:
            raise contract_errors.PermanentError(exc.message) from None

    @event_handler("storage", "report_shredded")
    def handle_report_shredded(self, event):
        """Mark the case's content destroyed (retention ran): pages stop asking storage for it.

        Input: ``report_shredded`` {report_id}. Emits nothing. Errors: database failures are
        retried, then dead-lettered; an unknown report is fine (nothing to mark).
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            domain.mark_content_destroyed(session, event.get("report_id") or "", now=self.clock())

    # ------------------------------------------------------------------ timers

    @configured_timer(interval=60, config_key="DEADLINE_CHECK_SECONDS")
    def check_deadlines(self):
        """Publish ``sla_breached`` once for each clock past its due time.

        Input: none (timer; time from the Clock dependency). Emits: ``sla_breached`` {case_id,
        clock, due_at}. Errors: a database failure is logged by nameko; the next tick retries.
        """
        with self.db.transaction() as session:
            deadlines.check_breaches(session, self.clock())

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
    def add_staff(self, username, email, unit, role="inspector", display_name=None, nip=None,
                  escalation_pool=False, oversees=None):
        """Input: username, email, home unit code, role; optional NIP, escalation-pool flag and
        overseen units (supervisors; default their home unit). Returns {staff_id, username, role,
        unit, password, totp_secret, otpauth_uri}: the password is shown this once. Emits
        nothing. Errors: Invalid (bad field, unknown unit), Conflict (username taken)."""
        with self.db.transaction() as session:
            return domain.add_staff(session, self.passwords, username, email, unit, role,
                                    display_name=display_name, nip=nip, escalation_pool=escalation_pool,
                                    oversees=oversees)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def set_staff_active(self, staff, active):
        """Input: username or staff id, active flag. Disabling revokes every session at once.
        Returns the account with ``sessions_revoked``. Emits nothing. Errors: NotFound."""
        with self.db.transaction() as session:
            return domain.set_staff_active(session, staff, bool(active))

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def revoke_sessions(self, staff):
        """Input: username or staff id. Ends every open session of the account at once (a lost
        laptop) without disabling it. Returns {staff_id, sessions_revoked}. Emits nothing.
        Errors: NotFound."""
        with self.db.transaction() as session:
            return domain.revoke_staff_sessions(session, staff)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def move_staff(self, staff, unit):
        """Input: username or staff id, new home unit. Returns the account. Emits nothing.
        Errors: NotFound, Invalid (unknown unit)."""
        with self.db.transaction() as session:
            return domain.move_staff(session, staff, unit)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def set_supervision(self, staff, units):
        """Input: a supervisor's username or id, the unit codes they oversee (replaces the
        list). Returns {staff_id, oversees}. Emits nothing. Errors: NotFound, Invalid."""
        with self.db.transaction() as session:
            return domain.set_supervision(session, staff, list(units or []))

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def set_unit_clocks(self, code, **clocks):
        """Input: unit code; ack_days, ack_working_days, verification_days,
        verification_working_days, feedback_months. Returns the unit's clocks. Emits nothing.
        Errors: NotFound, Invalid."""
        with self.db.transaction() as session:
            return domain.set_unit_clocks(session, code, **clocks)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def case_contacts(self, case_id):
        """Input: case id. Returns {case_id, assignee_id, supervisor_ids} (ids only) or None.
        For notification's deadline emails. Emits nothing."""
        with self.db.transaction() as session:
            return domain.case_contacts(session, case_id)

    @rpc(expected_exceptions=_EXPECTED)
    @_rpc_errors
    def verify_audit_chain(self):
        """Input: none. Walks the audit chain. Returns {ok, entries, first_bad_seq, problem,
        head_hash}. Emits nothing. Used by ``wbs audit verify``."""
        with self.db.transaction() as session:
            return audit.verify(session).as_dict()

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
        label}, history: [{code, label, at}], messages: [{message_id, direction, at}], grant}
        with reporter labels, or None. ``grant`` lets the reporter read exactly those messages
        from storage (null when there are none). Emits nothing. Never returns staff names,
        internal reasons or internal notes."""
        return casefile.report_status(self.db, self.signer, report_id, language)

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
        _, cases = casefile.list_cases(self.db, web.bearer_token(request), now=self.clock(),
                                      **web.case_filters(request))
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
                                   web.text_field(data, "to", required=True), web.text_field(data, "reason"),
                                   web.transition_detail(data), calendar=self.settings.calendar,
                                   now=self.clock())
        return web.json_response(case)

    @http("POST", "/api/v1/cases/<case_id>/messages")
    @web.api
    def api_post_message(self, request, case_id):
        """Input: bearer token, {text, visibility: reporter|internal, awaiting_reporter?}. 201
        {message_id, direction, at, state}. The text goes to storage sealed and is stored
        encrypted. Emits: ``case_message_posted``; ``case_status_changed`` when moved to
        awaiting_reporter. 400 bad input; 404 out of reach; 409 move forbidden; 503 storage away."""
        data = web.json_body(request)
        result = casefile.post_message(self.db, self.vault, web.bearer_token(request), case_id,
                                       web.text_field(data, "text", required=True),
                                       web.text_field(data, "visibility", required=True),
                                       web.bool_field(data, "awaiting_reporter"), calendar=self.settings.calendar)
        return web.json_response(result, status=201)

    @http("POST", "/api/v1/cases/<case_id>/flags")
    @web.api
    def api_flags(self, request, case_id):
        """Input: bearer token, {on_hold?, conflict_flagged?} (booleans; the conflict flag is a
        supervisor's). 200 the case. Emits nothing. 400/403/404."""
        data = web.json_body(request)
        case = casefile.set_flags(self.db, web.bearer_token(request), case_id,
                                  on_hold=web.bool_field(data, "on_hold", default=None),
                                  conflict_flagged=web.bool_field(data, "conflict_flagged", default=None))
        return web.json_response(case)

    @http("POST", "/api/v1/cases/<case_id>/legal-hold")
    @web.api
    def api_legal_hold(self, request, case_id):
        """Input: bearer token (supervisor), {legal_hold: bool, reason}. 200 the case. Emits:
        ``legal_hold_changed`` {case_id, report_id, legal_hold}. 400/403/404."""
        data = web.json_body(request)
        case = casefile.set_legal_hold(self.db, web.bearer_token(request), case_id,
                                       web.bool_field(data, "legal_hold", required=True),
                                       web.text_field(data, "reason"))
        return web.json_response(case)

    @http("POST", "/api/v1/cases/<case_id>/recusal")
    @web.api
    def api_recuse(self, request, case_id):
        """Input: bearer token (the assignee), {reason}. 200 {case_id, assignee_id,
        routing_note}: the case was routed again without them. Emits: ``case_assigned`` when
        someone took it. 400/403/404/503."""
        data = web.json_body(request)
        return web.json_response(casefile.recuse(self.db, self.vault, web.bearer_token(request), case_id,
                                                 web.text_field(data, "reason", required=True)))

    @http("POST", "/api/v1/cases/<case_id>/parties")
    @web.api
    def api_add_parties(self, request, case_id):
        """Input: bearer token, {parties: [{name, nip?, position?, unit?}]}. 200 {case_id,
        assignee_id, routing_note, excluded}: everyone named or with a declared conflict is
        excluded for good; a conflicted assignee loses the case, which is routed again. The
        names are stored in storage as an internal note. Emits: ``case_message_posted``
        (internal), ``case_assigned`` when rerouted. 400/404/503."""
        data = web.json_body(request)
        parties = data.get("parties")
        if not isinstance(parties, list):
            raise InvalidInput("'parties' must be a list")
        return web.json_response(casefile.add_parties(self.db, self.vault, web.bearer_token(request), case_id, parties))

    @http("POST", "/api/v1/cases/<case_id>/assignment")
    @web.api
    def api_reassign(self, request, case_id):
        """Input: bearer token (supervisor), {assignee: username or staff id}. 200 the case.
        Emits: ``case_assigned``. 400 unknown person; 403 not a supervisor; 404; 409 not
        eligible (conflict or wrong pool, with the reason); 503."""
        data = web.json_body(request)
        return web.json_response(casefile.reassign(self.db, self.vault, web.bearer_token(request), case_id,
                                                   web.text_field(data, "assignee", required=True)))

    @http("POST", "/api/v1/me/conflicts")
    @web.api
    def api_declare_conflict(self, request):
        """Input: bearer token, {unit?, name?, nip?, note?}. 201 the declaration; routing
        excludes the declarer from matching cases from now on. Emits nothing. 400."""
        data = web.json_body(request)
        result = casefile.declare_conflict(self.db, web.bearer_token(request),
                                           unit=web.text_field(data, "unit"), name=web.text_field(data, "name"),
                                           nip=web.text_field(data, "nip"), note=web.text_field(data, "note"))
        return web.json_response(result, status=201)

    @http("GET", "/api/v1/stats")
    @web.api
    def api_stats(self, request):
        """Input: bearer token; ``format=csv`` for CSV. 200 counts by unit, category, state and
        month (1-4 shown as "<5"), in-time shares, median days per stage. Emits nothing. 401."""
        _, figures = casefile.stats(self.db, web.bearer_token(request), now=self.clock())
        if request.args.get("format") == "csv":
            return web.csv_response(statistics.to_csv(figures), "wbs-statistik.csv")
        return web.json_response(figures)

    @http("GET", "/api/v1/openapi.json")
    def api_openapi(self, request):
        """The OpenAPI 3 document of this API. Emits nothing."""
        return web.json_response(openapi.document())

    @http("GET", "/api/v1/cases/<case_id>/evidence/<evidence_id>")
    @web.api
    def api_evidence(self, request, case_id, evidence_id):
        """Input: bearer token. 200 the decrypted file as an attachment, streamed 1 MiB at a time
        from storage. 404 missing or out of reach. Emits nothing."""
        item, chunks = casefile.open_evidence(self.db, self.vault, web.bearer_token(request), case_id, evidence_id)
        return web.attachment(item, chunks)

    # ------------------------------------------------------------------ console pages

    def _page(self, request, template, status=200, **context):
        lang = web.language(request)
        return web.remember_language(request, web.page(template, status=status, lang=lang, **context),
                                     self.settings.secure_cookies)

    @http("GET", "/login")
    def login_page(self, request):
        """The sign-in form."""
        return self._page(request, "login.html")

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
            return self._page(request, "login.html", status=401, error=True)
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
        """The signed-in staff member's cases with their deadlines, filterable."""
        filters = web.case_filters(request)
        me, cases = casefile.list_cases(self.db, web.cookie_token(request), now=self.clock(), **filters)
        return self._page(request, "cases.html", me=me, cases=cases, filters=filters,
                          categories=domain.CATEGORY_LABELS)

    @http("GET", "/supervision")
    @web.console
    def supervision_page(self, request):
        """Supervisor view: cases that failed routing first, then every case in oversight."""
        token = web.cookie_token(request)
        me, cases = casefile.list_cases(self.db, token, now=self.clock())
        _, unassigned = casefile.list_cases(self.db, token, now=self.clock(), unassigned=True)
        return self._page(request, "supervision.html", me=me, cases=cases, unassigned=unassigned)

    @http("GET", "/stats")
    @web.console
    def stats_page(self, request):
        """Statistics with server-rendered SVG bar charts (no scripts)."""
        me, figures = casefile.stats(self.db, web.cookie_token(request), now=self.clock())
        lang = web.language(request)
        figures = statistics.localise(figures, lang)
        from .i18n import translator
        t = translator(lang)
        charts = {key: statistics.bar_chart(figures[key], t(key)) for key in ("by_unit", "by_category", "by_state", "by_month")}
        return self._page(request, "stats.html", me=me, stats=figures, charts=charts)

    @http("GET", "/stats.csv")
    @web.console
    def stats_csv(self, request):
        """The statistics as CSV."""
        _, figures = casefile.stats(self.db, web.cookie_token(request), now=self.clock())
        return web.csv_response(statistics.to_csv(figures), "wbs-statistik.csv")

    @http("GET", "/conflicts")
    @web.console
    def conflicts_page(self, request):
        """The signed-in staff member's declared conflicts of interest, and a form to add one."""
        me, declared = casefile.my_conflicts(self.db, web.cookie_token(request))
        return self._page(request, "conflicts.html", me=me, declared=declared)

    @http("POST", "/conflicts")
    @web.console_form
    def conflicts_submit(self, request, data, token):
        """Form unit, name, nip, note. Routing excludes the declarer from matching cases."""
        casefile.declare_conflict(self.db, token, unit=data.get("unit"), name=data.get("name"),
                                  nip=data.get("nip"), note=data.get("note"))
        return "/conflicts"

    @http("GET", "/cases/<case_id>")
    @web.console
    def case_page(self, request, case_id):
        """One case: narrative, parties, evidence, messages, history, deadlines, transitions with
        reasons, flags and the recusal record (a content read, audited)."""
        me, case = casefile.read_case_file(self.db, self.vault, web.cookie_token(request), case_id)
        return self._page(request, "case.html", me=me, case=case)

    @http("POST", "/cases/<case_id>/transitions")
    @web.console_form
    def case_transition_submit(self, request, data, token, case_id):
        """Form to, detail, reason. Emits ``case_status_changed``; redirects back to the case."""
        casefile.transition(self.db, token, case_id, data.get("to", ""), data.get("reason"),
                            data.get("detail") or None, calendar=self.settings.calendar, now=self.clock())
        return f"/cases/{case_id}"

    @http("POST", "/cases/<case_id>/messages")
    @web.console_form
    def case_message_submit(self, request, data, token, case_id):
        """Form text, visibility, awaiting_reporter. Emits ``case_message_posted``."""
        casefile.post_message(self.db, self.vault, token, case_id, data.get("text"),
                              data.get("visibility"), web.form_flag(data, "awaiting_reporter"),
                              calendar=self.settings.calendar)
        return f"/cases/{case_id}"

    @http("POST", "/cases/<case_id>/flags")
    @web.console_form
    def case_flags_submit(self, request, data, token, case_id):
        """Form on_hold (1/0)."""
        casefile.set_flags(self.db, token, case_id, on_hold=web.form_flag(data, "on_hold"))
        return f"/cases/{case_id}"

    @http("POST", "/cases/<case_id>/legal-hold")
    @web.console_form
    def case_legal_hold_submit(self, request, data, token, case_id):
        """Form legal_hold (1/0), reason. Emits ``legal_hold_changed``."""
        casefile.set_legal_hold(self.db, token, case_id, web.form_flag(data, "legal_hold"),
                                data.get("reason"))
        return f"/cases/{case_id}"

    @http("POST", "/cases/<case_id>/parties")
    @web.console_form
    def case_parties_submit(self, request, data, token, case_id):
        """Form name, nip, position: one party found later (see api_add_parties)."""
        result = casefile.add_parties(self.db, self.vault, token, case_id,
                                      [{k: data.get(k) for k in ("name", "nip", "position") if data.get(k)}])
        me = casefile.whoami(self.db, token)
        still_mine = result["assignee_id"] == me["staff_id"] or me["role"] == "supervisor"
        return f"/cases/{case_id}" if still_mine else "/"

    @http("POST", "/cases/<case_id>/assignment")
    @web.console_form
    def case_reassign_submit(self, request, data, token, case_id):
        """Form assignee. Emits ``case_assigned``."""
        casefile.reassign(self.db, self.vault, token, case_id, data.get("assignee"))
        return f"/cases/{case_id}"

    @http("POST", "/cases/<case_id>/recusal")
    @web.console_form
    def case_recusal_submit(self, request, data, token, case_id):
        """Form reason. Emits ``case_assigned`` when someone else takes the case."""
        casefile.recuse(self.db, self.vault, token, case_id, data.get("reason"))
        return "/"

    @http("GET", "/cases/<case_id>/evidence/<evidence_id>")
    @web.console
    def case_evidence_download(self, request, case_id, evidence_id):
        """The decrypted evidence file as an attachment, streamed (audited)."""
        item, chunks = casefile.open_evidence(self.db, self.vault, web.cookie_token(request), case_id, evidence_id)
        return web.attachment(item, chunks)

    @http("GET", "/static/console.css")
    def stylesheet(self, request):
        return web.stylesheet()

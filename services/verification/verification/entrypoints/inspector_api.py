"""The inspector's JSON API under ``/api/v1`` (the web tier). Bearer tokens from
``/api/v1/auth/login``; errors are JSON with the status ``http_errors`` gives them."""
from __future__ import annotations

from wbs_plumbing.web import http

from .. import casefile, caselist, openapi, statistics, web
from ..errors import InvalidInput
from .base import Dependencies


class InspectorApi(Dependencies):
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
        """Input: bearer token; q (register number or part), state, unit (with its sub-units),
        category, assignee (username, id or ``none``), received_from/received_to (YYYY-MM-DD,
        WIB), sort, page, per_page (at most 200). 200 {cases: [...], total, page, per_page}
        (metadata of the cases in the caller's reach, nearest deadline first by default). 400 a
        bad parameter, with the reason; 401 without a valid session. Emits nothing."""
        query = caselist.parse_query(request.args)
        _, result = casefile.with_viewer(self.db, web.bearer_token(request), caselist.search, query,
                                         self.clock())
        return web.json_response(result)

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

    @http("GET", "/api/v1/cases/<case_id>/export")
    @web.api
    def api_export(self, request, case_id):
        """Input: bearer token. 200 the case exported for referral, a ZIP streamed as it is built:
        summary.html, narrative.txt, parties.json, history.json, evidence/NN-<name>, manifest.json
        and SHA256SUMS (SHA-256 of every file). 404 missing or out of reach; 409 the report was
        shredded; 503 storage away. Audited. Emits: ``case_exported`` {case_id, reference,
        exported_by}."""
        name, chunks = casefile.export_case(self.db, self.vault, web.bearer_token(request), case_id,
                                            render=web.render_document, now=self.clock())
        return web.zip_download(name, chunks)

    @http("GET", "/api/v1/cases/<case_id>/evidence/<evidence_id>")
    @web.api
    def api_evidence(self, request, case_id, evidence_id):
        """Input: bearer token. 200 the decrypted file as an attachment, streamed 1 MiB at a time
        from storage. 404 missing or out of reach. Emits nothing."""
        item, chunks = casefile.open_evidence(self.db, self.vault, web.bearer_token(request), case_id, evidence_id)
        return web.attachment(item, chunks)

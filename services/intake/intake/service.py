"""The intake service: the reporter's only door into the system.

Entrypoints parse the request, call one domain function with its collaborators, and return.
Everything a reporter sends that is sensitive goes sealed to storage; intake keeps metadata and
the receipt's keyed hash, and announces `report_submitted` through its outbox.

Anonymity: the `http` entrypoint (wbs_plumbing.web, via intake.web) runs a web server with no
access log, and no entrypoint reads the client address, User-Agent, X-Forwarded-For or
Accept-Language.
"""

from nameko.rpc import RpcProxy

from wbs_plumbing.db import Database
from wbs_plumbing.rpc import RoutedRpcProxy
from wbs_plumbing.web import json_response

from intake import domain, web
from intake.dependencies import IntakeSettings, UnitDirectory, Vault
from intake.models import Base, OutboxMessage
from intake.openapi import document as openapi_document
from intake.schemas import RELATIONSHIPS, ReportInvalid, categories_listing
from intake.web import http

POW_HEADER = "X-WBS-PoW"


class IntakeService:
    name = "intake"

    db = Database(Base, OutboxMessage)
    settings = IntakeSettings()
    storage = RoutedRpcProxy("storage")
    verification = RpcProxy("verification")
    units = UnitDirectory("verification")

    def _vault(self):
        return Vault(self.storage, self.settings.rpc_timeout_seconds)

    # -- reporter API -----------------------------------------------------------------------

    @http("GET", "/api/v1/pow")
    def get_pow(self, request):
        """A proof-of-work challenge. Input: none. Emits nothing. Errors: none."""
        return json_response(domain.issue_pow(self.settings))

    @http("GET", "/api/v1/units")
    def get_units(self, request):
        """Units a report can be about (from verification, cached). Errors: 503."""
        return json_response({"units": self.units.listing()})

    @http("GET", "/api/v1/categories")
    def get_categories(self, request):
        """Violation categories with id/en labels. Errors: none."""
        return json_response({"categories": categories_listing()})

    @http("GET", "/api/v1/openapi.json")
    def get_openapi(self, request):
        """The OpenAPI 3 document for this API, including how to solve the proof of work."""
        return json_response(openapi_document(self.settings.pow_bits))

    @http("POST", "/api/v1/reports")
    def post_report(self, request):
        """Submit a report. Input: JSON report, or multipart (`report` part + `evidence` files),
        header X-WBS-PoW. Emits `report_submitted`. Errors: 400 malformed, 413 too large,
        415 media type, 422 invalid (with fields), 428 proof of work, 503 storage/verification.
        """
        domain.require_pow(self.db.transaction, self.settings, request.headers.get(POW_HEADER))
        parts, to_report = web.report_parts(request, self.settings)
        result = domain.submit_report(
            parts, to_report, units=self.units, vault=self._vault(),
            transaction=self.db.transaction, settings=self.settings,
        )
        return json_response({k: result[k] for k in ("report_id", "receipt", "received_at")},
                             status=201)

    @http("POST", "/api/v1/reporter/session")
    def post_reporter_session(self, request):
        """Sign in with a receipt. Input: {"receipt"}, header X-WBS-PoW. Emits nothing.
        Errors: 401 (same body for every wrong receipt), 400, 415, 428."""
        domain.require_pow(self.db.transaction, self.settings, request.headers.get(POW_HEADER))
        body = web.json_body(request)
        receipt = body.get("receipt") if isinstance(body, dict) else None
        with self.db.transaction() as session:
            answer = domain.open_reporter_session(session, receipt, self.settings)
        return json_response(answer)

    @http("GET", "/api/v1/reporter/report")
    def get_reporter_report(self, request):
        """The reporter's view of their report. Input: Authorization: Bearer <token>.
        Emits nothing. Errors: 401."""
        with self.db.transaction() as session:
            report = domain.report_for_token(session, request.headers.get("Authorization"))
            view = domain.reporter_view(report)
        return json_response(view)

    @http("POST", "/api/v1/reporter/evidence")
    def post_reporter_evidence(self, request):
        """Add evidence to one's report. Input: Authorization: Bearer <token>, multipart with
        file parts `evidence`. Emits nothing (storage emits `evidence_stored` per file).
        Errors: 401, 400, 413, 503."""
        with self.db.transaction() as session:
            report_id = domain.report_for_token(session, request.headers.get("Authorization")).report_id
        answer = domain.add_evidence(
            web.multipart_parts(request, self.settings), report_id, vault=self._vault(),
            transaction=self.db.transaction, settings=self.settings,
        )
        return json_response(answer, status=201)

    # -- reporter web page ------------------------------------------------------------------

    @http("GET", "/")
    def get_form(self, request):
        """The report form (Bahasa Indonesia; works without JavaScript when WBS_POW_BITS=0).
        Errors: 503 page if the unit list is unavailable."""
        try:
            units = self.units.listing()
        except Exception as exc:
            return web.error_page(exc)
        return web.form_page(units, categories_listing(), RELATIONSHIPS, self.settings)

    @http("POST", "/submit")
    def post_form(self, request):
        """The form's multipart post. Input: form fields then `evidence` files; proof of work in
        `?pow=` (set by /static/pow.js) or the X-WBS-PoW header. Emits `report_submitted`.
        Errors: the form again with reasons (400), or an error page (400/413/428/503)."""
        capture = web.FormCapture(domain.report_from_form)
        try:
            proof = request.args.get("pow") or request.headers.get(POW_HEADER)
            domain.require_pow(self.db.transaction, self.settings, proof)
            result = domain.submit_report(
                web.multipart_parts(request, self.settings), capture, units=self.units,
                vault=self._vault(), transaction=self.db.transaction, settings=self.settings,
            )
        except ReportInvalid as exc:
            return web.invalid_form_page(self.units, self.settings, exc, capture.values)
        except Exception as exc:
            return web.error_page(exc)
        return web.render("receipt.html", status=201, **result)

    @http("GET", "/static/<name>")
    def get_static(self, request, name):
        """Same-origin style sheet and the proof-of-work script. Errors: 404."""
        return web.static_file(name)

"""The intake service: the reporter's only door into the system.

Entrypoints parse the request, call one domain function with its collaborators, and return.
Everything a reporter sends that is sensitive goes sealed to storage; intake keeps metadata and
the receipt's keyed hash, and announces `report_submitted` and `reporter_message_posted`
through its outbox.

Anonymity: the `http` entrypoint (wbs_plumbing.web, via intake.web) runs a web server with no
access log, and no entrypoint reads the client address, User-Agent, X-Forwarded-For or
Accept-Language. Abuse control is a proof of work per costly request plus one global throttle
(intake.throttle), never anything per client.
"""

from wbs_plumbing.queues import RpcProxy  # transient reply queue (survives a broker node's loss)

from wbs_plumbing.db import Database
from wbs_plumbing.grants import CommandKey
from wbs_plumbing.ops import Ops
from wbs_plumbing.reliable import event_handler
from wbs_plumbing.rpc import RoutedRpcProxy
from wbs_plumbing.storage_client import StorageClient
from wbs_plumbing.timers import configured_timer
from wbs_plumbing.web import json_response

from intake import domain, forms, i18n, web
from intake.dependencies import Casework, IntakeSettings, UnitDirectory
from intake.errors import Unauthorized
from intake.models import Base, OutboxMessage, ProcessedEvent
from intake.openapi import document as openapi_document
from intake.schemas import RELATIONSHIPS, ReportInvalid, categories_listing
from intake.throttle import GlobalThrottle
from intake.web import http

POW_HEADER = "X-WBS-PoW"
NOTICES = {"message": web.N_("Your message was sent."), "evidence": web.N_("Your files were added."),
           "signed_in": None}


class IntakeService:
    name = "intake"

    db = Database(Base, OutboxMessage)
    ops = Ops()  # healthz, readyz, metrics on INTAKE_OPS_ADDRESS
    settings = IntakeSettings()
    throttle = GlobalThrottle()
    storage = RoutedRpcProxy("storage")
    verification = RpcProxy("verification")
    units = UnitDirectory("verification")
    commands = CommandKey("intake")  # signs discard_report of its own failed submissions

    def _vault(self):
        return StorageClient(self.storage, self.settings.rpc_timeout_seconds, commands=self.commands)

    def _casework(self):
        return Casework(self.verification, self.settings.rpc_timeout_seconds, commands=self.commands)

    def _report(self, authorization):
        with self.db.transaction() as session:
            return domain.report_for_token(session, authorization)

    def _pow(self, request):
        """Throttle first (cheap, global), then the proof, before any of the body is read."""
        self.throttle.admit()
        proof = request.args.get("pow") or request.headers.get(POW_HEADER)
        domain.require_pow(self.db.transaction, self.settings, proof)

    # -- events -----------------------------------------------------------------------------

    @event_handler("storage", "report_shredded")
    def handle_report_shredded(self, event):
        """storage destroyed a report (retention, or a discarded submission): forget it.

        Input: `report_shredded` {report_id} (schema-checked). Emits nothing. Afterwards its
        receipt answers 401 exactly like a wrong one, and open sessions stop working. Errors:
        database failures are retried, then dead-lettered; a redelivery does nothing twice.
        """
        with self.db.handle_once(event["event_id"], ProcessedEvent, "report_shredded") as session:
            if session is None:
                return
            domain.forget_report(session, event["report_id"])

    @configured_timer(interval=30, config_key="INTAKE_DISCARD_RETRY_SECONDS")
    def retry_discards(self):
        """Discard the refused submissions storage could not be told about when they failed.

        Input: none (timer). Emits nothing (storage publishes ``report_shredded``). Errors: none
        raised; what still fails waits for the next tick.
        """
        domain.retry_discards(vault=self._vault(), transaction=self.db.transaction)

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
        try:
            codes = sorted(self.units.codes())
        except Exception:  # the document without the unit list is still the document
            codes = None
        return json_response(openapi_document(self.settings.pow_bits, codes))

    @http("POST", "/api/v1/reports")
    def post_report(self, request):
        """Submit a report. Input: JSON report, or multipart (`report` part + `evidence` files),
        header X-WBS-PoW. Emits `report_submitted`. Errors: 400 malformed, 413 too large,
        415 media type, 422 invalid (with fields), 428 proof of work, 429 busy,
        503 storage/verification.
        """
        self._pow(request)
        report, files = web.report_request(request, self.settings)
        result = domain.submit_report(
            report, files, units=self.units, vault=self._vault(),
            transaction=self.db.transaction, settings=self.settings,
        )
        return json_response({k: result[k] for k in ("report_id", "receipt", "received_at")},
                             status=201)

    @http("POST", "/api/v1/reporter/session")
    def post_reporter_session(self, request):
        """Sign in with a receipt. Input: {"receipt"}, header X-WBS-PoW. Emits nothing.
        Errors: 401 (same body for every wrong receipt), 400, 415, 428, 429."""
        self._pow(request)
        body = web.json_body(request)
        receipt = body.get("receipt") if isinstance(body, dict) else None
        with self.db.transaction() as session:
            answer = domain.open_reporter_session(session, receipt, self.settings)
        return json_response(answer)

    @http("DELETE", "/api/v1/reporter/session")
    def delete_reporter_session(self, request):
        """Sign out. Input: Authorization: Bearer <token>. 204 whatever the token. Emits nothing."""
        with self.db.transaction() as session:
            domain.close_reporter_session(session, request.headers.get("Authorization"))
        return web.Response(status=204)

    @http("GET", "/api/v1/reporter/report")
    def get_reporter_report(self, request):
        """The reporter's view of their report: state with reporter label, history, messages.
        Input: Authorization: Bearer <token>, optional ?lang=id|en. Emits nothing.
        Errors: 401, 503 (verification or storage not answering)."""
        report = self._report(request.headers.get("Authorization"))
        view = domain.follow_up(report, casework=self._casework(), vault=self._vault(),
                                language=request.args.get("lang"))
        return json_response(view)

    @http("POST", "/api/v1/reporter/messages")
    def post_reporter_message(self, request):
        """Answer the inspector. Input: Authorization: Bearer <token>, {"text"}. Emits
        `reporter_message_posted` {report_id, message_id}. Errors: 401, 400, 413, 415,
        422 (empty, too long), 429, 503."""
        report = self._report(request.headers.get("Authorization"))
        self.throttle.admit()
        body = web.json_body(request, limit=domain.MAX_MESSAGE_BYTES * 2)
        text = body.get("text") if isinstance(body, dict) else None
        answer = domain.post_reporter_message(report.report_id, text, vault=self._vault(),
                                              transaction=self.db.transaction)
        return json_response(answer, status=201)

    @http("POST", "/api/v1/reporter/evidence")
    def post_reporter_evidence(self, request):
        """Add evidence to one's report. Input: Authorization: Bearer <token>, multipart with
        file parts `evidence`. Emits nothing (storage emits `evidence_stored` per file).
        Errors: 401, 400, 413 (request, file, files or bytes per report), 429, 503."""
        report = self._report(request.headers.get("Authorization"))
        self.throttle.admit()
        budget = domain.evidence_budget(report, self.settings.limits)
        answer = domain.add_evidence(
            forms.evidence_parts(web.multipart_parts(request, self.settings, budget)), report.report_id,
            vault=self._vault(), transaction=self.db.transaction, settings=self.settings,
        )
        return json_response(answer, status=201)

    # -- reporter web pages -----------------------------------------------------------------

    @http("GET", "/")
    def get_form(self, request):
        """The guided report form, in the reporter's chosen language (works without JavaScript
        when WBS_POW_BITS=0). Errors: 503 page if the unit list is unavailable."""
        lang, remember = web.page_language(request)
        try:
            units = self.units.listing()
        except Exception as exc:
            return web.error_page(lang, exc)
        return web.form_page(lang, units, categories_listing(), RELATIONSHIPS, self.settings,
                             remember=remember)

    @http("POST", "/submit")
    def post_form(self, request):
        """The form's multipart post. Input: form fields then `evidence` files; proof of work in
        `?pow=` (set by /static/pow.js) or the X-WBS-PoW header. Emits `report_submitted`.
        Errors: the form again with reasons (400), or an error page (400/413/428/429/503)."""
        lang, _ = web.page_language(request)
        capture = web.FormCapture(forms.report_from_form)
        try:
            self._pow(request)
            fields, files = forms.report_parts(web.multipart_parts(request, self.settings))
            result = domain.submit_report(
                capture(fields), files, units=self.units,
                vault=self._vault(), transaction=self.db.transaction, settings=self.settings,
            )
        except ReportInvalid as exc:
            return web.invalid_form_page(lang, self.units, self.settings, exc, capture.values)
        except Exception as exc:
            return web.error_page(lang, exc)
        return web.render("receipt.html", status=201, lang=lang, **result)

    @http("GET", "/follow-up")
    def get_follow_up(self, request):
        """The follow-up page: the sign-in form, or (signed in) state, history, messages, the
        answer form and the evidence form. Input: the `wbs_session` cookie. Emits nothing.
        Errors: an error page (503) when verification or storage does not answer."""
        lang, remember = web.page_language(request)
        try:
            report = self._report(web.session_authorization(request))
        except Unauthorized:
            response = web.signin_page(lang, self.settings, remember=remember)
            if request.cookies.get(web.SESSION_COOKIE):
                web.session_cookie(response, None, self.settings)
            return response
        notice = NOTICES.get(request.args.get("sent") or "")
        return self._follow_up_page(lang, report, remember=remember,
                                    notice=i18n.gettext(lang, notice) if notice else None)

    def _follow_up_page(self, lang, report, *, status=200, errors=None, notice=None, remember=False):
        try:
            view = domain.follow_up(report, casework=self._casework(), vault=self._vault(), language=lang)
        except Exception as exc:
            return web.error_page(lang, exc, back="/follow-up")
        try:
            budget = domain.evidence_budget(report, self.settings.limits)
        except domain.UploadTooLarge:
            budget = domain.no_budget(self.settings.limits)
        return web.followup_page(lang, view, budget, self.settings, remember=remember, notice=notice,
                                 errors=errors, status=status)

    @http("POST", "/follow-up/sign-in")
    def post_follow_up_sign_in(self, request):
        """Sign in on the page. Input: multipart field `receipt`; proof of work in `?pow=`.
        Emits nothing. Answers 303 to /follow-up with the session cookie, or the sign-in page
        again (401, the same for every wrong receipt), or an error page (400/428/429)."""
        lang, _ = web.page_language(request)
        try:
            self._pow(request)
            fields = web.form_fields(request, self.settings)
            with self.db.transaction() as session:
                answer = domain.open_reporter_session(session, fields.get("receipt"), self.settings)
        except Unauthorized:
            return web.signin_page(lang, self.settings, status=401,
                                   error=i18n.gettext(lang, web.WRONG_RECEIPT))
        except Exception as exc:
            return web.error_page(lang, exc, back="/follow-up")
        return web.session_cookie(web.redirect(f"/follow-up?lang={lang}"), answer["token"], self.settings)

    @http("POST", "/follow-up/messages")
    def post_follow_up_message(self, request):
        """Answer the inspector from the page. Input: the session cookie, multipart field
        `text`. Emits `reporter_message_posted`. Answers 303 to /follow-up, or an error page."""
        lang, _ = web.page_language(request)
        report = None
        try:
            report = self._report(web.session_authorization(request))
            self.throttle.admit()
            fields = web.form_fields(request, self.settings, limit=domain.MAX_MESSAGE_BYTES * 2)
            domain.post_reporter_message(report.report_id, fields.get("text"), vault=self._vault(),
                                         transaction=self.db.transaction)
        except ReportInvalid as exc:  # the page again, with the reason beside "Your message"
            return self._follow_up_page(lang, report, status=400, errors=exc.messages(lang))
        except Exception as exc:
            return web.error_page(lang, exc, back="/follow-up")
        return web.redirect(f"/follow-up?lang={lang}&sent=message")

    @http("POST", "/follow-up/evidence")
    def post_follow_up_evidence(self, request):
        """Add evidence from the page. Input: the session cookie, multipart `evidence` files.
        Emits nothing (storage emits `evidence_stored`). Answers 303 to /follow-up, or an
        error page (400/401/413/429/503)."""
        lang, _ = web.page_language(request)
        try:
            report = self._report(web.session_authorization(request))
            self.throttle.admit()
            budget = domain.evidence_budget(report, self.settings.limits)
            domain.add_evidence(forms.evidence_parts(web.multipart_parts(request, self.settings, budget)),
                                report.report_id,
                                vault=self._vault(), transaction=self.db.transaction,
                                settings=self.settings)
        except Exception as exc:
            return web.error_page(lang, exc, back="/follow-up")
        return web.redirect(f"/follow-up?lang={lang}&sent=evidence")

    @http("POST", "/follow-up/sign-out")
    def post_follow_up_sign_out(self, request):
        """Sign out on the page: the session ends at once and the cookie is removed. 303."""
        lang, _ = web.page_language(request)
        with self.db.transaction() as session:
            domain.close_reporter_session(session, web.session_authorization(request))
        return web.session_cookie(web.redirect(f"/follow-up?lang={lang}"), None, self.settings)

    @http("GET", "/static/<name>")
    def get_static(self, request, name):
        """Same-origin style sheet and scripts (proof of work, its worker). Errors: 404."""
        return web.static_file(name)

    @http("GET,POST,PUT,PATCH,DELETE,OPTIONS", "/<path:anything>")
    def no_such_route(self, request, anything):
        """Everything else: 404 (or 405 for a known path), as JSON with the security headers.

        Without this, the web server answers unknown paths itself, with an HTML page and none
        of the headers every reporter-facing answer must carry."""
        raise web.no_route(request.path)

"""The HTML console (the web tier): server-rendered pages, cookie sessions, form posts that
redirect. Domain errors become the sign-in page or an error page (``web.console``)."""
from __future__ import annotations

from wbs_contracts import vocabulary
from wbs_plumbing.web import http

from .. import casefile, caselist, statistics, web
from ..errors import DomainError
from .base import Dependencies


class Console(Dependencies):
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
        """The signed-in staff member's cases, nearest deadline first: search by register
        number, filters, sort and pages (``caselist``), times in each unit's zone."""
        query = caselist.parse_query(request.args)
        me, view = casefile.with_viewer(self.db, web.cookie_token(request), caselist.page_view, query,
                                        self.clock())
        return self._page(request, "cases.html", me=me, filters=query, page_link=query.link,
                          sorts=caselist.SORTS, categories=vocabulary.CATEGORIES, **view)

    @http("GET", "/supervision")
    @web.console
    def supervision_page(self, request):
        """Supervisor view: cases that failed routing first, then every case in oversight."""
        me, cases, unassigned = casefile.supervision(self.db, web.cookie_token(request), now=self.clock())
        return self._page(request, "supervision.html", me=me, cases=cases, unassigned=unassigned)

    @http("GET", "/stats")
    @web.console
    def stats_page(self, request):
        """Statistics with server-rendered SVG bar charts (no scripts)."""
        me, figures = casefile.stats(self.db, web.cookie_token(request), now=self.clock())
        figures, charts = statistics.console_view(figures, web.language(request))
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

    @http("GET", "/cases/<case_id>/export")
    @web.console
    def case_export_download(self, request, case_id):
        """The case exported for referral: a ZIP (summary, narrative, parties, evidence, history,
        SHA-256 manifest), streamed (``casefile.export_case``). Audited; emits ``case_exported``."""
        name, chunks = casefile.export_case(self.db, self.vault, web.cookie_token(request), case_id,
                                            render=web.render_document, now=self.clock())
        return web.zip_download(name, chunks)

    @http("GET", "/static/console.css")
    def stylesheet(self, request):
        return web.stylesheet()

"""The HTTP edge of intake: reading requests without spooling, rendering pages, mapping errors.

Only these request headers are ever read: Content-Type, Content-Length, X-WBS-PoW,
Authorization, and the site's own two cookies (`wbs_lang`, the page language the reporter
picked; `wbs_session`, the follow-up sign-in). REMOTE_ADDR, User-Agent, X-Forwarded-For and
Accept-Language are never touched (docs/architecture.md §5.1); the page language is Bahasa Indonesia unless
the reporter switches, never guessed from the browser (intake.i18n says why).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Callable

from nameko.exceptions import RemoteError
from werkzeug.wrappers import Response

from wbs_plumbing.web import ApiError, HttpEntrypoint, error_response

from intake import forms, i18n, unit_picker
from intake.forms import parse_json
from intake.errors import (
    BadRequest,
    Unauthorized,
    Unavailable,
    to_api_error,
)
from intake.pow import PowRejected
from intake.schemas import ReportInvalid
from intake.throttle import Throttled
from intake.uploads import (
    FieldPart,
    MalformedUpload,
    UploadTooLarge,
    boundary_from_content_type,
    iter_multipart,
)

log = logging.getLogger(__name__)

EXPECTED = (ApiError, ReportInvalid, PowRejected, UploadTooLarge, MalformedUpload, BadRequest,
            Unauthorized, Unavailable, Throttled, RemoteError)


class IntakeHttpEntrypoint(HttpEntrypoint):
    """The plumbing's quiet `http` entrypoint, plus intake's error mapping.

    Domain errors are expected (they are the reporter's to fix), so nameko logs them as
    warnings without treating them as crashes; none of their messages carries report content.
    """

    def __init__(self, method, url, expected_exceptions=EXPECTED, **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def response_from_exception(self, exc):
        return error_response(to_api_error(exc) or exc)


http = IntakeHttpEntrypoint.decorator


# -- reading bodies --------------------------------------------------------------------------

def read_bounded(stream, limit: int, chunk: int = 64 * 1024) -> bytes:
    """Read a whole (small) body, refusing with 413 as soon as it passes `limit`."""
    out = bytearray()
    while True:
        data = stream.read(chunk)
        if not data:
            return bytes(out)
        out += data
        if len(out) > limit:
            raise UploadTooLarge("field")


def _declared_length(request, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise UploadTooLarge("request")


def report_request(request, settings) -> tuple:
    """(report, evidence files) of `POST /api/v1/reports`: a JSON body, or the API's multipart
    form (the `report` part, then `evidence` files: see intake.forms)."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        _declared_length(request, settings.max_json_bytes)
        return parse_json(read_bounded(request.stream, settings.max_json_bytes)), iter(())
    if mimetype == "multipart/form-data":
        fields, files = forms.report_parts(multipart_parts(request, settings))
        return forms.report_from_json_part(fields), files
    raise ApiError(415, "unsupported_media_type",
                   "Send application/json or multipart/form-data.")


def multipart_parts(request, settings, limits=None):
    limits = limits or settings.limits
    _declared_length(request, limits.max_request_bytes)
    boundary = boundary_from_content_type(request.headers.get("Content-Type"))
    return iter_multipart(request.stream.read, boundary, limits)


def json_body(request, limit: int = 4096):
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send application/json.")
    _declared_length(request, limit)
    return parse_json(read_bounded(request.stream, limit))


# -- pages -----------------------------------------------------------------------------------

def N_(message: str) -> str:
    """Marks a string for the catalogue; it is translated where it is shown."""
    return message


FIELD_LABELS = {
    "unit": N_("The unit concerned"), "category": N_("Kind of violation"), "title": N_("Short title"),
    "description": N_("What happened?"), "location": N_("Place or activity"),
    "occurred.from": N_("From (date)"), "occurred.to": N_("Until (date)"), "parties": N_("Who did it"),
    "parties[0].name": N_("Name"), "parties[0].position": N_("Position"), "parties[0].unit": N_("Their unit"),
    "parties[0].nip": N_("NIP (civil-servant number)"), "parties[1].nip": N_("NIP (civil-servant number)"),
    "parties[1].name": N_("Another person involved"),
    "reporter.relationship": N_("How do you know about it?"),
    "reporter.involved": N_("Did you take part in it yourself?"),
    "reporter.identity.name": N_("Your name"), "reporter.identity.email": N_("Your email"),
    "reporter.identity.phone": N_("Your phone"), "reporter.contact_email": N_("Email for update notices"),
    "good_faith": N_("Declaration"), "text": N_("Your message"),
}

PAGE_ERRORS = {
    413: N_("The files or the report are too large, or there are too many files. Send fewer or smaller files."),
    428: N_("The security check (proof of work) failed or expired. Reload the page and send again."),
    429: N_("The service is very busy right now. Nothing was kept. Please try again in a minute."),
    503: N_("The service is temporarily unavailable. Nothing was kept. Please try again shortly."),
    400: N_("The form could not be read. Reload the page and try again."),
    401: N_("Receipt not recognised, or your session has ended. Please sign in again."),
}
OTHER_ERROR = N_("Something went wrong. Nothing was kept. Please try again.")
WRONG_RECEIPT = N_("Receipt not recognised. Check it and try again.")


def page_language(request) -> tuple[str, bool]:
    """The reporter's chosen page language (never Accept-Language: see intake.i18n)."""
    return i18n.choose(request.args.get("lang"), request.cookies.get(i18n.COOKIE))


def render(template: str, status: int = 200, *, lang: str = i18n.DEFAULT, remember: bool = False,
           **context) -> Response:
    html = i18n.environment(lang).get_template(template).render(**context)
    response = Response(html, status=status, mimetype="text/html")
    if remember:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, path="/",
                            httponly=True, samesite="Strict")
    return response


def human_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def _limits_context(limits) -> dict:
    total = limits.max_report_bytes if limits.max_report_bytes is not None else limits.max_request_bytes
    return {"max_files": limits.max_files, "max_file_bytes": limits.max_file_bytes,
            "max_report_bytes": total, "max_file_size": human_size(limits.max_file_bytes),
            "max_report_size": human_size(total)}


def labels(lang: str) -> dict:
    return {path: i18n.gettext(lang, label) for path, label in FIELD_LABELS.items()}


def form_page(lang: str, units: list, categories: list, relationships: dict, settings, *,
              status=200, errors=None, values=None, remember=False) -> Response:
    return render("form.html", status=status, lang=lang, remember=remember, units=units,
                  unit_groups=unit_picker.groups(units),
                  categories=categories, relationships=relationships, pow_bits=settings.pow_bits,
                  errors=errors or {}, values=values or {}, labels=labels(lang),
                  **_limits_context(settings.limits))


def invalid_form_page(lang: str, units, settings, exc: ReportInvalid, values: dict) -> Response:
    """The form again, filled in, with a reason (in the page's language) beside each problem."""
    from intake.schemas import RELATIONSHIPS, categories_listing

    try:
        listing = units.listing()
    except Exception as unavailable:
        return error_page(lang, unavailable)
    return form_page(lang, listing, categories_listing(), RELATIONSHIPS, settings, status=400,
                     errors=exc.messages(lang), values=values)


def error_page(lang: str, exc: Exception, back: str = "/", heading: str | None = None) -> Response:
    api = to_api_error(exc)
    if api is None:  # a bug, not the reporter's doing: log the type and trace, never the body
        log.error("unhandled error on the reporter page: %s", type(exc).__name__, exc_info=exc)
    status = api.status if api else 500
    message = i18n.gettext(lang, PAGE_ERRORS.get(status, OTHER_ERROR))
    response = render("error.html", status=status if status != 422 else 400, lang=lang,
                      message=message, back=back, heading=heading)
    if api is not None:
        for name, value in api.headers.items():
            response.headers[name] = value
    return response


def signin_page(lang: str, settings, *, status=200, error: str | None = None,
                remember=False) -> Response:
    return render("followup_signin.html", status=status, lang=lang, remember=remember,
                  pow_bits=settings.pow_bits, error=error, **_limits_context(settings.limits))


def followup_page(lang: str, view: dict, budget, settings, *, notice=None, errors=None,
                  status=200, remember=False) -> Response:
    return render("followup.html", status=status, lang=lang, remember=remember, view=view,
                  notice=notice, errors=errors or {}, labels=labels(lang),
                  session_minutes=settings.session_ttl_seconds // 60, **_limits_context(budget))


def redirect(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})


SESSION_COOKIE = "wbs_session"


def session_cookie(response: Response, token: str | None, settings) -> Response:
    """The follow-up page's sign-in, carried in a cookie so the page works without JavaScript.

    HttpOnly (no script reads it), SameSite=Strict (no other site can post with it: the
    follow-up forms need no further CSRF token), scoped to /follow-up, and as short-lived as
    the token itself. `None` deletes it.
    """
    if token is None:
        response.delete_cookie(SESSION_COOKIE, path="/follow-up", httponly=True, samesite="Strict")
    else:
        response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_ttl_seconds,
                            path="/follow-up", httponly=True, samesite="Strict")
    return response


def session_authorization(request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return f"Bearer {token}" if token else None


def form_fields(request, settings, limit: int = 64 * 1024) -> dict[str, str]:
    """The text fields of a small multipart page form (sign-in, message, sign-out); files refused."""
    from intake.uploads import UploadLimits

    limits = UploadLimits(max_request_bytes=limit, max_files=0, max_file_bytes=1,
                          max_field_bytes=limit, max_parts=8)
    _declared_length(request, limit)
    boundary = boundary_from_content_type(request.headers.get("Content-Type"))
    fields: dict[str, str] = {}
    for event in iter_multipart(request.stream.read, boundary, limits):
        if isinstance(event, FieldPart):
            try:
                fields[event.name] = event.value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("invalid_encoding", "The form is not UTF-8.") from None
    return fields


def no_route(path: str) -> ApiError:
    from intake.openapi import document

    methods = document(0)["paths"].get(path)
    if methods:
        allowed = ", ".join(sorted(m.upper() for m in methods))
        return ApiError(405, "method_not_allowed", "This method is not allowed here.",
                        headers={"Allow": allowed})
    return ApiError(404, "not_found", "No such page.")


class FormCapture:
    """Wraps `report_from_form` to keep the submitted text fields for re-showing the form.

    Only text fields: files are never kept. The values go back to the same browser in a
    no-store page, nowhere else.
    """

    def __init__(self, convert: Callable):
        self.convert = convert
        self.values: dict[str, str] = {}

    def __call__(self, fields: dict[str, bytes]):
        self.values = {k: v.decode("utf-8", "replace") for k, v in fields.items()
                       if k != "good_faith"}
        return self.convert(fields)


_STATIC = {"style.css": "text/css", "pow.js": "text/javascript", "pow-worker.js": "text/javascript",
           "unit-filter.js": "text/javascript"}
_static_cache: dict[str, bytes] = {}


def static_file(name: str) -> Response:
    if name not in _STATIC:
        raise ApiError(404, "not_found", "No such file.")
    if name not in _static_cache:
        _static_cache[name] = resources.files("intake").joinpath("static", name).read_bytes()
    return Response(_static_cache[name], mimetype=_STATIC[name])

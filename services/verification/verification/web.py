"""HTTP shaping for the console and its API: parsing requests, rendering pages, building responses.

Kept apart from ``service.py`` so entrypoints stay one call long, and from ``casefile.py`` so the
use cases know nothing about HTTP. Security choices made here:

* The console's session cookie is ``HttpOnly`` (no script can read it), ``SameSite=Strict``
  (no other site can make the browser send it, which is the console's CSRF defence, with an
  ``Origin`` check on every form post as a second line) and ``Secure`` in production.
* Pages load nothing from third parties and run no script; the Content-Security-Policy says so.
* Pages send ``Referrer-Policy: same-origin``, not ``no-referrer``: no other site ever learns a
  console URL, and the browser keeps sending the real ``Origin`` on the console's own form posts
  (under ``no-referrer`` it sends ``Origin: null``, which :func:`same_origin` must refuse).
* Evidence downloads are always ``attachment`` with ``nosniff``: a hostile file uploaded as
  evidence must never render inside the console's origin.
* Nothing here reads or logs client addresses or user agents.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.wrappers import Response

from wbs_contracts import vocabulary
from wbs_plumbing.web import JsonTooDeep, error_response, json_response, loads_json

from . import lifecycle, zones
from .errors import AuthenticationFailed, DomainError, InvalidInput, PasswordChangeRequired
from .http_errors import to_api_error

COOKIE_NAME = "wbs_console"
MAX_JSON_BYTES = 64 * 1024
CONSOLE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")
API_HEADERS = {"Cache-Control": "no-store"}
STATIC_DIR = Path(__file__).parent / "static"

_templates = Environment(
    loader=PackageLoader("verification", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# ``{{ case.created_at | local(case.zone.name) }}``: a stored UTC time as the unit's people read it.
_templates.filters["local"] = zones.local_iso


# --------------------------------------------------------------------------- requests


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def cookie_token(request) -> str | None:
    return request.cookies.get(COOKIE_NAME) or None


def json_body(request) -> dict:
    """The request's JSON object, refusing oversize or malformed bodies with a 400."""
    length = request.content_length
    if length is not None and length > MAX_JSON_BYTES:
        raise InvalidInput("Request body too large")
    raw = request.stream.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise InvalidInput("Request body too large")
    try:
        data = loads_json(raw or b"{}")
    except JsonTooDeep:
        raise InvalidInput("Body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("Body must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("Body must be a JSON object")
    return data


def _given(data: dict, name: str, required: bool, blank_is_missing: bool = False):
    """``data[name]``, or None when it is absent (refused when required)."""
    value = data.get(name)
    if value is None or (blank_is_missing and value == ""):
        if required:
            raise InvalidInput(f"'{name}' is required")
        return None
    return value


def text_field(data: dict, name: str, *, required: bool = False) -> str | None:
    value = _given(data, name, required, blank_is_missing=True)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a string")
    return value


def form(request) -> dict:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise InvalidInput("Request body too large")
    request.max_form_memory_size = MAX_JSON_BYTES
    return {k: v for k, v in request.form.items()}


def case_filters(request) -> dict:
    return {k: request.args.get(k) or None for k in ("state", "unit", "category")}


def bool_field(data: dict, name: str, *, required: bool = False, default=False):
    value = _given(data, name, required)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(f"'{name}' must be true or false")
    return value


def transition_detail(data: dict) -> str | None:
    """The coded reason of an end state, under its own name (sub_reason, authority, outcome)
    or the generic ``detail``."""
    for name in ("sub_reason", "authority", "outcome", "detail"):
        value = text_field(data, name)
        if value:
            return value
    return None


def form_flag(data: dict, name: str) -> bool:
    return data.get(name) in ("1", "true", "on", "yes")


# --------------------------------------------------------------------------- language

LANG_COOKIE = "wbs_lang"
LANGUAGES = ("id", "en")


def language(request, me: dict | None = None) -> str:
    """Bahasa Indonesia unless the staff member chose English (``?lang=en`` sets a cookie)."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    return "id"


def remember_language(request, response: Response, secure: bool) -> Response:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path="/", httponly=True,
                            samesite="Strict", secure=secure)
    return response


def csv_response(text: str, filename: str) -> Response:
    return Response(text.encode("utf-8"), status=200, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def same_origin(request) -> None:
    """Refuse a cookie-authenticated form post not made by the console's own pages (CSRF, belt
    and braces behind ``SameSite=Strict``). Browsers send ``Origin`` on every form post; a missing
    one or ``null`` (a sandboxed frame, a cross-origin redirect) is refused like a foreign one,
    and so is ``Sec-Fetch-Site`` other than ``same-origin`` where the browser sends it."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null" or urlsplit(origin).netloc != request.host:
        raise AuthenticationFailed("Cross-site request refused")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        raise AuthenticationFailed("Cross-site request refused")


# --------------------------------------------------------------------------- API responses


def api(handler):
    """Answer domain errors as JSON errors with their status (``http_errors.to_api_error``).

    The error is returned, not raised: a refused sign-in or a 404 is an answer, not a fault, and
    raising would make nameko log it at ERROR with a traceback for every wrong password.
    """

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except DomainError as exc:
            return error_response(to_api_error(exc))

    return wrapper


def signed_in(result) -> Response:
    return json_response({"token": result.token, "expires_at": _iso(result.expires_at)})


def no_content() -> Response:
    return Response(status=204)


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _ascii_filename(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" .") or "evidence"
    return ascii_name[:120]


def attachment(item: dict, chunks) -> Response:
    """Stream decrypted evidence as a download; never inline, never sniffed, never cached."""
    name = str(item.get("filename") or "evidence")
    headers = {
        "Content-Disposition": f"attachment; filename=\"{_ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if item.get("size_bytes") is not None:
        headers["Content-Length"] = str(int(item["size_bytes"]))
    return Response(chunks, status=200, headers=headers, mimetype="application/octet-stream",
                    direct_passthrough=True)


def zip_download(filename: str, chunks) -> Response:
    """Stream a case export (``export.archive``) as a ZIP download: chunked, since its length is
    known only at the end; never inline, never sniffed, never cached."""
    return Response(chunks, status=200, mimetype="application/zip", direct_passthrough=True, headers={
        "Content-Disposition": f'attachment; filename="{_ascii_filename(filename)}"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


def render_document(template: str, **context) -> str:
    """A template rendered as a standalone document (the export's summary), not a console page."""
    return _templates.get_template(template).render(**context)


# --------------------------------------------------------------------------- console pages


def page(template: str, status: int = 200, lang: str = "id", **context) -> Response:
    from .i18n import translator

    context.setdefault("states", lifecycle.STATE_LABELS)
    context.setdefault("relationships", vocabulary.RELATIONSHIPS)
    context.setdefault("lifecycle", lifecycle)
    html = _templates.get_template(template).render(lang=lang, t=translator(lang), **context)
    return Response(html, status=status, mimetype="text/html",
                    headers={"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


def redirect(location: str) -> Response:
    return Response("", status=303, headers={"Location": location})


def set_session_cookie(response: Response, result, secure: bool) -> Response:
    response.set_cookie(COOKIE_NAME, result.token, expires=result.expires_at, path="/",
                        httponly=True, samesite="Strict", secure=secure)
    return response


def clear_session_cookie(response: Response, secure: bool) -> Response:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict", secure=secure)
    return response


def console(handler):
    """Console pages: no session -> the sign-in page; other domain errors -> an error page."""

    @functools.wraps(handler)
    def wrapper(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AuthenticationFailed:
            return redirect("/login")
        except PasswordChangeRequired:
            return redirect("/password")
        except DomainError as exc:
            request = args[1] if len(args) > 1 else None
            lang = language(request) if request is not None else "id"
            error = to_api_error(exc)
            return page("error.html", status=error.status, lang=lang, message=_error_text(error.status, lang),
                        detail=error.message if error.status in (400, 403, 409) else None)

    return wrapper


def console_form(handler):
    """Console form posts: same-origin check, then ``handler(self, request, data, token, *args)``
    with the parsed form and the session cookie; it returns the path to redirect to (303)."""

    @console
    @functools.wraps(handler)
    def wrapper(service, request, *args, **kwargs):
        same_origin(request)
        location = handler(service, request, form(request), cookie_token(request), *args, **kwargs)
        return redirect(location)

    return wrapper


def _error_text(status: int, lang: str = "id") -> str:
    texts = {
        "id": {404: "Kasus tidak ditemukan.", 403: "Peran Anda tidak mengizinkan tindakan ini.",
               409: "Perubahan ini tidak diizinkan.", 503: "Penyimpanan tidak menjawab; silakan coba lagi."},
        "en": {404: "Case not found.", 403: "Your role does not allow this.",
               409: "This change is not allowed.", 503: "The store did not answer; please try again."},
    }[lang if lang in LANGUAGES else "id"]
    return texts.get(status, "Permintaan tidak valid." if lang == "id" else "Invalid request.")


def stylesheet() -> Response:
    css = (STATIC_DIR / "console.css").read_bytes()
    return Response(css, mimetype="text/css", headers={"Cache-Control": "public, max-age=3600"})

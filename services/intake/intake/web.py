"""The HTTP edge of intake: reading requests without spooling, rendering pages, mapping errors.

Only these request headers are ever read: Content-Type, Content-Length, X-WBS-PoW and
Authorization. REMOTE_ADDR, User-Agent, X-Forwarded-For and Accept-Language are never touched
(DESIGN.md §5.1); the page language is Bahasa Indonesia, not guessed from the browser.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Callable

from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.wrappers import Response

from wbs_plumbing.web import ApiError, HttpEntrypoint, error_response

from intake.domain import parse_json, report_from_json_part
from intake.errors import (
    BadRequest,
    Unauthorized,
    Unavailable,
    to_api_error,
)
from intake.pow import PowRejected
from intake.schemas import ReportInvalid
from intake.uploads import (
    FieldPart,
    MalformedUpload,
    UploadTooLarge,
    boundary_from_content_type,
    iter_multipart,
)

log = logging.getLogger(__name__)

EXPECTED = (ApiError, ReportInvalid, PowRejected, UploadTooLarge, MalformedUpload, BadRequest,
            Unauthorized, Unavailable)


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


def report_parts(request, settings) -> tuple:
    """(parts, to_report) for `POST /api/v1/reports`: a JSON body or the API's multipart form."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        _declared_length(request, settings.max_json_bytes)
        raw = read_bounded(request.stream, settings.max_json_bytes)
        return [FieldPart("report", raw)], lambda fields: parse_json(fields["report"])
    if mimetype == "multipart/form-data":
        return multipart_parts(request, settings), report_from_json_part
    raise ApiError(415, "unsupported_media_type",
                   "Send application/json or multipart/form-data.")


def multipart_parts(request, settings):
    _declared_length(request, settings.limits.max_request_bytes)
    boundary = boundary_from_content_type(request.headers.get("Content-Type"))
    return iter_multipart(request.stream.read, boundary, settings.limits)


def json_body(request, limit: int = 4096):
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send application/json.")
    _declared_length(request, limit)
    return parse_json(read_bounded(request.stream, limit))


# -- pages -----------------------------------------------------------------------------------

_env = Environment(
    loader=PackageLoader("intake", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

FIELD_LABELS = {
    "unit": "Unit kerja", "category": "Jenis pelanggaran", "title": "Judul",
    "description": "Kronologi", "location": "Tempat", "occurred.from": "Sejak tanggal",
    "occurred.to": "Sampai tanggal", "parties": "Terlapor", "parties[0].name": "Nama terlapor",
    "parties[0].position": "Jabatan terlapor", "reporter.relationship": "Hubungan Anda",
    "reporter.involved": "Keterlibatan Anda", "good_faith": "Pernyataan itikad baik",
}

PAGE_ERRORS = {
    413: "Berkas atau laporan terlalu besar, atau terlalu banyak berkas. Kurangi ukuran atau jumlah berkas.",
    428: "Pemeriksaan keamanan (proof of work) gagal atau kedaluwarsa. Muat ulang halaman lalu kirim lagi.",
    503: "Layanan sedang tidak tersedia. Tidak ada data yang disimpan. Silakan coba beberapa saat lagi.",
    400: "Formulir tidak dapat dibaca. Muat ulang halaman lalu coba lagi.",
}


def render(template: str, status: int = 200, **context) -> Response:
    html = _env.get_template(template).render(**context)
    return Response(html, status=status, mimetype="text/html")


def form_page(units: list, categories: list, relationships: dict, settings, *, status=200,
              errors=None, values=None) -> Response:
    return render("form.html", status=status, units=units, categories=categories,
                  relationships=relationships, pow_bits=settings.pow_bits,
                  max_files=settings.limits.max_files, errors=errors or {}, values=values or {},
                  labels=FIELD_LABELS)


def invalid_form_page(units, settings, exc: ReportInvalid, values: dict) -> Response:
    """The form again, filled in, with a reason (in Indonesian) beside each problem."""
    from intake.schemas import RELATIONSHIPS, categories_listing

    try:
        listing = units.listing()
    except Exception as unavailable:
        return error_page(unavailable)
    return form_page(listing, categories_listing(), RELATIONSHIPS, settings, status=400,
                     errors=exc.messages("id"), values=values)


def error_page(exc: Exception) -> Response:
    api = to_api_error(exc)
    if api is None:  # a bug, not the reporter's doing: log the type and trace, never the body
        log.error("unhandled error on the reporter page: %s", type(exc).__name__, exc_info=exc)
    status = api.status if api else 500
    message = PAGE_ERRORS.get(status, "Terjadi kesalahan. Tidak ada data yang disimpan. Silakan coba lagi.")
    return render("error.html", status=status if status != 422 else 400, message=message)


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


_STATIC = {"style.css": "text/css", "pow.js": "text/javascript"}
_static_cache: dict[str, bytes] = {}


def static_file(name: str) -> Response:
    if name not in _STATIC:
        raise ApiError(404, "not_found", "No such file.")
    if name not in _static_cache:
        _static_cache[name] = resources.files("intake").joinpath("static", name).read_bytes()
    return Response(_static_cache[name], mimetype=_STATIC[name])

"""HTTP entrypoints that log nothing about the client and never answer with a stack trace.

nameko's `@http` runs on eventlet's WSGI server, which by default writes an access log line per
request starting with the client IP (and the X-Forwarded-For chain). For a reporter that line is
the one thing that can identify them, so `QuietWebServer` switches access logging off entirely;
nothing in this module reads REMOTE_ADDR, User-Agent, X-Forwarded-For or Accept-Language.

nameko answers an unexpected exception with `500 Error: <type>: <message>` as plain text;
`http` answers every error as `{"error": {"code", "message"}}` with a 4xx for what the client
can fix, and a generic 500 that says nothing about the internals otherwise.
"""
import json
import logging

from eventlet import wsgi
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; worker-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
}


class ApiError(Exception):
    """A refusal the client can understand: HTTP status, a stable code, a human message.

    `fields` maps a field path to a reason for validation errors. Messages must never echo
    submitted content back (it could end up in a proxy's or browser's logs).
    """

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status=status,
                    headers=headers, mimetype="application/json")


def error_response(exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        return json_response(exc.body(), exc.status, exc.headers)
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        code = (exc.name or "bad_request").lower().replace(" ", "_")
        return json_response({"error": {"code": code, "message": exc.description or exc.name}},
                             exc.code)
    log.error("unhandled error in an HTTP handler: %s", type(exc).__name__, exc_info=exc)
    return json_response({"error": {"code": "internal_error",
                                    "message": "Something went wrong on our side; nothing was saved twice. Please try again."}},
                         500)


class _HideClientErrors(logging.Filter):
    """nameko logs every exception a worker raises, with a traceback, at ERROR. An ApiError is an
    answer to the client (a wrong password, a 404), not a fault: keep it out of the error log."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], ApiError))


logging.getLogger("nameko.containers").addFilter(_HideClientErrors())


def _silent_logger() -> logging.Logger:
    """eventlet's server also names the client address in some error and debug messages: give
    it a logger that writes nowhere and passes nothing up, whatever the logging config says."""
    silent = logging.getLogger("wbs.http.server")
    silent.addHandler(logging.NullHandler())
    silent.propagate = False
    silent.setLevel(logging.CRITICAL + 1)
    return silent


class QuietWebServer(WebServer):
    """nameko's web server without the access log (client IPs) and without debug tracebacks."""

    def get_wsgi_server(self, sock, wsgi_app, protocol=HttpOnlyProtocol, debug=False):
        return wsgi.Server(sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=False,
                           log=_silent_logger(), log_output=False, log_x_forwarded_for=False)


class HttpEntrypoint(HttpRequestHandler):
    server = QuietWebServer()

    def handle_request(self, request):
        response = super().handle_request(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def response_from_exception(self, exc):
        return error_response(exc)


http = HttpEntrypoint.decorator

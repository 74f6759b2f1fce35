"""HTTP entrypoints that log nothing about the client and never answer with a stack trace.

nameko's `@http` runs on eventlet's WSGI server, which by default writes an access log line per
request starting with the client IP (and the X-Forwarded-For chain). For a reporter that line is
the one thing that can identify them, so `QuietWebServer` switches access logging off entirely;
nothing in this module reads REMOTE_ADDR, User-Agent, X-Forwarded-For or Accept-Language.

nameko answers an unexpected exception with `500 Error: <type>: <message>` as plain text;
`http` answers every error as `{"error": {"code", "message"}}` with a 4xx for what the client
can fix, and a generic 500 that says nothing about the internals otherwise. The server's own
refusals (a bad request line, too many or too long headers) carry the same security headers and
never name the server or Python's version.

Slow clients cannot starve the service (DESIGN §10). nameko reads a request's body inside one of
the container's workers (`max_workers`, shared with RPC and event handlers), and eventlet has no
deadline on a request: ten clients sending one byte a second held every worker. Here:

* a connection gets `WEB_HEADER_DEADLINE_SECONDS` (10) to send its request line and headers,
  and each socket read `WEB_SOCKET_TIMEOUT_SECONDS` (10); one request per connection;
* a body of at most `WEB_BUFFERED_BODY_BYTES` (1 MiB) is read *before* a worker is taken, in the
  connection's own green thread, within `WEB_BODY_DEADLINE_SECONDS` (15): a trickling client holds
  a socket, never a worker, and gets a 408 at the deadline; a larger body (evidence uploads,
  streamed so no file is ever whole in memory) is read by the worker, but must keep
  `WEB_MIN_BODY_RATE` (16 KiB/s) on average after that grace, or it gets a 408 too;
* at most `WEB_MAX_CONNECTIONS` (256) connections are open at once (others wait in the listen
  backlog), and at most `WEB_MAX_WORKERS` (`max_workers` - 3) workers serve HTTP, so RPC and
  event handlers always have workers of their own.
"""
import io
import json
import logging
import os
import time
from dataclasses import dataclass

import eventlet
from eventlet import greenthread, wsgi
from eventlet.semaphore import Semaphore
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestTimeout
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


#: The deepest nesting a JSON body may have. The deepest document we accept (a report) is four
#: levels deep; anything far deeper is an attack on the parser's stack, not a report.
MAX_JSON_DEPTH = 32


class JsonTooDeep(ValueError):
    """A JSON body nested deeper than MAX_JSON_DEPTH: bad input, answered 400."""


def loads_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """Parse a client's JSON, refusing nesting deeper than ``max_depth`` (JsonTooDeep).

    Both web surfaces parse through here, so a depth bomb gets the same clear 400 on either port
    instead of a RecursionError deep in the C parser. The depth is measured on the parsed value
    with an explicit stack, so the check itself cannot recurse."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JsonTooDeep("nested too deeply") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise JsonTooDeep("nested too deeply")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return value


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status=status,
                    headers=headers, mimetype="application/json")


def error_response(exc: Exception) -> Response:
    if isinstance(exc, (RecursionError, JsonTooDeep)):  # JSON nested too deeply: bad input
        return json_response({"error": {"code": "too_deeply_nested",
                                        "message": "The JSON body is nested too deeply."}}, 400)
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
    answer to the client (a wrong password, a 404), not a fault: keep it out of the error log. So
    is a RecursionError: JSON nested deeper than the parser's stack, answered 400."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], (ApiError, RecursionError)))


logging.getLogger("nameko.containers").addFilter(_HideClientErrors())


def _silent_logger() -> logging.Logger:
    """eventlet's server also names the client address in some error and debug messages: give
    it a logger that writes nowhere and passes nothing up, whatever the logging config says."""
    silent = logging.getLogger("wbs.http.server")
    silent.addHandler(logging.NullHandler())
    silent.propagate = False
    silent.setLevel(logging.CRITICAL + 1)
    return silent


def _number(config, key, default, cast=float):
    """``key`` from the service's config, else from the environment (the same on both ports)."""
    value = config.get(key)
    if value in (None, ""):
        value = os.environ.get(key)
    return cast(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Limits:
    """What one client may hold (see the module docstring)."""

    header_seconds: float = 10.0
    socket_timeout: float = 10.0
    body_seconds: float = 15.0
    buffered_body_bytes: int = 1024 * 1024
    min_body_rate: float = 16 * 1024
    max_connections: int = 256
    max_workers: int = 7

    @classmethod
    def from_config(cls, config: dict) -> "Limits":
        workers = int(config.get("max_workers") or 10)
        return cls(
            header_seconds=_number(config, "WEB_HEADER_DEADLINE_SECONDS", 10.0),
            socket_timeout=_number(config, "WEB_SOCKET_TIMEOUT_SECONDS", 10.0),
            body_seconds=_number(config, "WEB_BODY_DEADLINE_SECONDS", 15.0),
            buffered_body_bytes=_number(config, "WEB_BUFFERED_BODY_BYTES", 1024 * 1024, int),
            min_body_rate=_number(config, "WEB_MIN_BODY_RATE", 16 * 1024.0),
            max_connections=_number(config, "WEB_MAX_CONNECTIONS", 256, int),
            max_workers=_number(config, "WEB_MAX_WORKERS", max(1, workers - 3), int),
        )


class _TooSlow(BaseException):
    """A client missed a deadline (BaseException: eventlet's handlers catch Exception)."""


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete error answer for the server's own refusals: security headers, no Server."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in SECURITY_HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _RefusalsWithHeaders:
    """eventlet writes its own 400/414 answers as raw bytes; give them our headers."""

    def __init__(self, wfile):
        self._wfile = wfile

    def write(self, data):
        if isinstance(data, bytes) and data.startswith(b"HTTP/1.0 4"):
            status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
            status, _, reason = status_line[len("HTTP/1.0 "):].partition(" ")
            data = _raw_response(int(status), reason, "bad_request", reason or "Bad request")
        return self._wfile.write(data)

    def __getattr__(self, name):
        return getattr(self._wfile, name)


class QuietProtocol(HttpOnlyProtocol):
    """No server version anywhere; every refusal of the HTTP layer with the security headers."""

    server_version = ""
    sys_version = ""

    def version_string(self):
        return ""

    def send_error(self, code, message=None, explain=None):
        try:
            reason = self.responses[code][0]
        except KeyError:
            reason = "Error"
        self.wfile.write(_raw_response(code, reason, reason.lower().replace(" ", "_"), message or reason))
        self.close_connection = True

    def handle_one_request(self):
        wfile = self.wfile
        self.wfile = _RefusalsWithHeaders(wfile)
        try:
            super().handle_one_request()
        finally:
            self.wfile = wfile


class _DeadlineApp(WsgiApp):
    """The request line and headers are in: the header deadline no longer applies."""

    def __call__(self, environ, start_response):
        self.server.headers_received()
        return super().__call__(environ, start_response)


class QuietWebServer(WebServer):
    """nameko's web server without the access log (client IPs) and without debug tracebacks,
    with deadlines and caps against slow clients (module docstring)."""

    def start(self):
        self.limits = Limits.from_config(self.container.config)
        self.connections = Semaphore(self.limits.max_connections)
        self.web_workers = Semaphore(self.limits.max_workers)
        self._header_timers = {}
        super().start()

    def get_wsgi_app(self):
        return _DeadlineApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=QuietProtocol, debug=False):
        return wsgi.Server(sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=False,
                           log=_silent_logger(), log_output=False, log_x_forwarded_for=False,
                           keepalive=False, socket_timeout=self.limits.socket_timeout)

    def run(self):
        while self._is_accepting:
            self.connections.acquire()  # at the cap, new clients wait in the listen backlog
            try:
                sock, addr = self._sock.accept()
            except BaseException:
                self.connections.release()
                raise
            sock.settimeout(self._serv.socket_timeout)
            self.container.spawn_managed_thread(lambda s=sock, a=addr: self._serve(s, a))

    def _serve(self, sock, address):
        me = greenthread.getcurrent()
        self._header_timers[me] = eventlet.Timeout(self.limits.header_seconds, _TooSlow())
        try:
            self.process_request(sock, address)
        except _TooSlow:
            sock.close()
        finally:
            timer = self._header_timers.pop(me, None)
            if timer is not None:
                timer.cancel()
            self.connections.release()

    def headers_received(self):
        timer = self._header_timers.pop(greenthread.getcurrent(), None)
        if timer is not None:
            timer.cancel()


class _DeadlineInput:
    """A streamed body that must arrive by ``deadline`` (monotonic seconds)."""

    def __init__(self, stream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def _within(self, read, *args):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout("The request body arrived too slowly.")
        try:
            with eventlet.Timeout(remaining, _TooSlow()):
                return read(*args)
        except (_TooSlow, OSError):
            raise RequestTimeout("The request body arrived too slowly.") from None

    def read(self, *args):
        return self._within(self._stream.read, *args)

    def readline(self, *args):
        return self._within(self._stream.readline, *args)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def _timeout_response() -> Response:
    response = json_response({"error": {"code": "request_timeout",
                                        "message": "The request body arrived too slowly."}}, 408,
                             headers={"Connection": "close"})
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class HttpEntrypoint(HttpRequestHandler):
    server = QuietWebServer()

    def handle_request(self, request):
        if not self._take_body(request):
            return _timeout_response()
        with self.server.web_workers:  # RPC and event handlers keep workers of their own
            response = super().handle_request(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _take_body(self, request) -> bool:
        """Read a small body before a worker is taken, or put a deadline on a large one;
        False if the client was too slow."""
        limits, environ = self.server.limits, request.environ
        length = request.content_length
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        stream = environ.get("wsgi.input")
        if stream is None or (not length and not chunked):
            return True
        if length is not None and length > limits.buffered_body_bytes:
            environ["wsgi.input"] = _DeadlineInput(
                stream, time.monotonic() + limits.body_seconds + length / limits.min_body_rate)
            return True
        want = length if length is not None else limits.buffered_body_bytes + 1
        parts, got = [], 0
        try:
            with eventlet.Timeout(limits.body_seconds, _TooSlow()):
                while got < want:
                    part = stream.read(min(65536, want - got))
                    if not part:
                        break
                    parts.append(part)
                    got += len(part)
        except (_TooSlow, OSError):
            return False
        body = b"".join(parts)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        return True

    def response_from_exception(self, exc):
        return error_response(exc)


http = HttpEntrypoint.decorator

"""Prometheus metrics shared by every service (exposed by `wbs_plumbing.ops` on the ops port).

Why one module: a metric's name, labels and buckets are a contract with the dashboards and the
alert rules in deploy/prometheus/; defining each once keeps every service speaking the same one.

Labels are chosen so they can never carry anything about a reporter: the service name, an
entrypoint's method name, an HTTP route *template* as declared in the code (``/api/v1/cases/<case_id>``,
never the requested path), an HTTP status code, a queue name, and a fixed outcome word. Nothing
here reads a request's path, headers, client address or body. The canary tests check it.
"""
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from wbs_contracts import errors as contract_errors

# No `*_created` series: Prometheus does not need them, and they double the scrape.
disable_created_metrics()

# Process-wide metrics: one registry per process, shared by the containers running in it.
REGISTRY = CollectorRegistry(auto_describe=True)

HANDLER_DURATION = Histogram(
    "wbs_handler_duration_seconds",
    "Time an entrypoint (RPC, event handler, timer, HTTP) took, by outcome.",
    ["service", "entrypoint", "outcome"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
HTTP_REQUESTS = Counter(
    "wbs_http_requests", "HTTP requests answered, by route template and status.",
    ["service", "route", "status"], registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "wbs_dead_letters", "Messages this process sent to wbs.dead-letters, by the queue they came from.",
    ["service", "queue"], registry=REGISTRY,
)
RETRIES = Counter(
    "wbs_handler_retries", "Failed event deliveries parked for a later retry, by queue.",
    ["service", "queue"], registry=REGISTRY,
)

# A refusal is an answer (a 4xx, an RPC error the caller maps to one), not a fault.
_REFUSALS = (contract_errors.NotFound, contract_errors.Forbidden, contract_errors.Invalid,
             contract_errors.Conflict, contract_errors.PermanentError)


def outcome(exc: BaseException | None) -> str:
    """`ok`, `refused` (the caller's mistake or a rule said no) or `error` (a fault)."""
    if exc is None:
        return "ok"
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status < 500:
        return "refused"
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        return "refused"
    if isinstance(exc, _REFUSALS) or type(exc).__name__ in ("NotFound", "Forbidden", "Invalid",
                                                            "Conflict", "Unauthorized"):
        return "refused"
    return "error"


def http_status(result, exc: BaseException | None) -> int:
    """The status nameko's HTTP entrypoint answers for this result or exception."""
    if exc is not None:
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            return status
        if isinstance(exc, HTTPException) and exc.code:
            return exc.code
        return 500
    if isinstance(result, Response):
        return result.status_code
    if isinstance(result, tuple) and result and isinstance(result[0], int):
        return result[0]
    return 200


def observe_worker(service: str, entrypoint, seconds: float, result, exc) -> None:
    """Record one finished worker: its duration, and for HTTP its route template and status."""
    HANDLER_DURATION.labels(service, entrypoint.method_name, outcome(exc)).observe(seconds)
    route = getattr(entrypoint, "url", None)
    if isinstance(route, str):
        HTTP_REQUESTS.labels(service, route, str(http_status(result, exc))).inc()


def count_dead_letter(service: str, queue: str) -> None:
    DEAD_LETTERS.labels(service, queue).inc()


def count_retry(service: str, queue: str) -> None:
    RETRIES.labels(service, queue).inc()

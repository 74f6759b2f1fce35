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

# The work a request costs, counted where it happens (`make bench` reads these to print the
# RPCs, confirmed publishes, transactions and SQL statements per report; docs/architecture.md §8).
RPC_SERVED = Counter(
    "wbs_rpc_served", "RPC calls this process answered, by method.",
    ["service", "method"], registry=REGISTRY,
)
AMQP_PUBLISHES = Counter(
    "wbs_amqp_publishes", "Messages this process published, by kind (rpc: requests and replies; "
    "event; other: retries, dead letters) and whether it waited for a publisher confirm.",
    ["kind", "confirmed"], registry=REGISTRY,
)
SQL_STATEMENTS = Counter(
    "wbs_sql_statements", "SQL statements this process sent to its database (pings excluded).",
    registry=REGISTRY,
)
DB_TRANSACTIONS = Counter(
    "wbs_db_transactions", "Database transactions this process ended, by outcome (commit, rollback).",
    ["outcome"], registry=REGISTRY,
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
    from nameko.rpc import Rpc

    HANDLER_DURATION.labels(service, entrypoint.method_name, outcome(exc)).observe(seconds)
    if isinstance(entrypoint, Rpc):
        RPC_SERVED.labels(service, entrypoint.method_name).inc()
    route = getattr(entrypoint, "url", None)
    if isinstance(route, str):
        HTTP_REQUESTS.labels(service, route, str(http_status(result, exc))).inc()


def count_dead_letter(service: str, queue: str) -> None:
    DEAD_LETTERS.labels(service, queue).inc()


def count_retry(service: str, queue: str) -> None:
    RETRIES.labels(service, queue).inc()


def _publish_kind(exchange) -> str:
    name = getattr(exchange, "name", exchange) or ""
    if name == "nameko-rpc" or name.startswith("rpc"):
        return "rpc"
    return "event" if name.endswith(".events") else "other"


def count_publish(kind: str, confirmed: bool) -> None:
    AMQP_PUBLISHES.labels(kind, "true" if confirmed else "false").inc()


def count_publishes() -> None:
    """Count every message published through nameko's `Publisher` (RPC requests and replies,
    retries and dead letters go through it; the outbox relay counts its own events with
    `count_publish`). Idempotent; once per process."""
    from nameko.amqp.publish import Publisher

    if getattr(Publisher.publish, "wbs_counted", False):
        return
    publish = Publisher.publish

    def counted(self, payload, **kwargs):
        count_publish(_publish_kind(kwargs.get("exchange", self.publish_kwargs.get("exchange"))),
                      kwargs.get("use_confirms", self.use_confirms))
        return publish(self, payload, **kwargs)

    counted.wbs_counted = True
    Publisher.publish = counted


#: Execution option of a connection in autocommit (``wbs_plumbing.db.autocommit``).
AUTOCOMMIT_OPTION = "wbs_autocommit"


def count_sql(engine) -> None:
    """Count the statements and transactions of `engine` (SQLAlchemy events; pings are not
    cursor executions, so they are not counted). A connection in autocommit
    (``wbs_plumbing.db.autocommit``) sends no BEGIN or COMMIT: its statements count, and the
    end SQLAlchemy gives it is not a transaction."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_args):
        SQL_STATEMENTS.inc()

    @event.listens_for(engine, "commit")
    def _commit(connection):
        if not connection.get_execution_options().get(AUTOCOMMIT_OPTION):
            DB_TRANSACTIONS.labels("commit").inc()

    @event.listens_for(engine, "rollback")
    def _rollback(connection):
        if not connection.get_execution_options().get(AUTOCOMMIT_OPTION):
            DB_TRANSACTIONS.labels("rollback").inc()


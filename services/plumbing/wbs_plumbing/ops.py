"""The ops listener: liveness, readiness and Prometheus metrics on a port of its own.

Why a separate listener: probes and metrics are for the orchestrator and the monitoring system,
never for reporters or inspectors. On the public ports (8000, 8001) they would be reachable from
the internet, and a worker (storage, notification) has no HTTP port at all. So every service
wires in `Ops()` with one line and gets, on ``<SERVICE>_OPS_ADDRESS`` (or ``OPS_ADDRESS`` in its
config; no listener when neither is set):

* ``GET /healthz``: 200 while the process runs its hub (liveness: restart me if this fails);
* ``GET /readyz``: 200 when the service can do its work, else 503 ``{"down": [...]}`` naming
  what is down: ``broker``, ``database``, and where the service has them ``object_store`` and
  ``key_file`` (readiness: send me no traffic until this passes);
* ``GET /metrics``: Prometheus text format (`wbs_plumbing.metrics` plus gauges read at scrape
  time: outbox backlog, emails pending and failed, uploads in flight).

What to check is found on the service class, not configured: the `Database` dependency gives the
database and the outbox; a dependency holding a ``store`` (storage's object store), a ``keyring``
(storage's key file), ``uploads`` (storage's uploads in progress) adds that check or gauge; a
``notifications`` table adds the email gauges. Each check runs under a short timeout, so a
black-holed dependency makes /readyz answer 503 instead of hanging the probe.

As a DependencyProvider it also sees every worker start and finish, which is where handler
durations and HTTP route/status counts are recorded (labels: see `wbs_plumbing.metrics`).
"""
import json
import logging
import os
import time
from datetime import datetime, timezone

import eventlet
from eventlet import wsgi
from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text

from wbs_plumbing import metrics
from wbs_plumbing.web import _silent_logger  # eventlet's server must log nothing here either

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 3.0


def ops_address(config: dict, service_name: str) -> str:
    """``OPS_ADDRESS`` from the config, else ``<SERVICE>_OPS_ADDRESS`` from the environment."""
    return str(config.get("OPS_ADDRESS") or
               os.environ.get(f"{service_name.upper()}_OPS_ADDRESS") or "").strip()


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)


# -- what a service is checked for ------------------------------------------------------------


def check_broker(amqp_uri: str) -> None:
    from kombu import Connection
    with Connection(amqp_uri, connect_timeout=CHECK_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1)


def check_database(engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check_object_store(store) -> None:
    client, bucket = getattr(store, "client", None), getattr(store, "bucket", None)
    if client is not None and bucket:
        if not client.bucket_exists(bucket):
            raise RuntimeError("bucket missing")
        return
    root = getattr(store, "root", None)
    if root is not None and not (os.path.isdir(root) and os.access(root, os.W_OK)):
        raise RuntimeError("store folder missing or read-only")


def check_key_file(keyring) -> None:
    path = getattr(keyring, "path", None)
    if path and not os.path.isfile(path):
        raise RuntimeError("key file missing")
    if not keyring.kek_ids:
        raise RuntimeError("no key-encryption key loaded")


class _ScrapeTimeGauges:
    """Gauges read when Prometheus scrapes: they describe state, so they are never stale."""

    def __init__(self, ops: "Ops"):
        self.ops = ops

    def collect(self):
        ops, service = self.ops, self.ops.service
        ready = GaugeMetricFamily("wbs_ready", "1 if this readiness check passed at the last "
                                  "/readyz (the orchestrator probes it), else 0.",
                                  labels=["service", "check"])
        for check, passed in sorted(ops.last_checks.items()):
            ready.add_metric([service, check], 1 if passed else 0)
        yield ready
        for gauges in (ops.outbox_gauges, ops.notification_gauges):
            try:  # a database that is away costs these gauges, not the whole scrape
                yield from list(gauges())
            except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001
                log.warning("%s: metrics: %s failed: %s", service, gauges.__name__, type(exc).__name__)
        uploads = ops.find("uploads", "__len__")
        if uploads is not None:
            family = GaugeMetricFamily("wbs_storage_uploads_in_flight",
                                       "Evidence uploads in progress in this storage process.",
                                       labels=["service"])
            family.add_metric([service], len(uploads.uploads))
            yield family


class Ops(DependencyProvider):
    """Probes and metrics on the ops port; see the module docstring. Wire in with ``ops = Ops()``."""

    def setup(self):
        config = self.container.config
        self.service = self.container.service_name
        self.address = ops_address(config, self.service)
        self.amqp_uri = config.get("AMQP_URI")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ScrapeTimeGauges(self))
        metrics.count_publishes()
        self._started: dict = {}
        self.last_checks: dict = {}  # check -> passed, as of the last /readyz (for wbs_ready)
        self._server = self._socket = None

    def start(self):
        if not self.address:
            return
        self._socket = eventlet.listen(_split(self.address))
        self._server = self.container.spawn_managed_thread(self._serve, identifier="ops-listener")
        log.info("%s: ops listener (healthz, readyz, metrics) on %s", self.service, self.address)

    def _serve(self):
        wsgi.server(self._socket, self.app, log=_silent_logger(), log_output=False,
                    log_x_forwarded_for=False, debug=False)

    def stop(self):
        server, self._server = self._server, None
        if server is not None:
            server.kill()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return None

    # -- worker timing ----------------------------------------------------------------------

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx.call_id] = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx.call_id, None)
        if started is None:
            return
        try:
            metrics.observe_worker(self.service, worker_ctx.entrypoint, time.monotonic() - started,
                                   result, exc_info[1] if exc_info else None)
        except Exception:  # noqa: BLE001 -- metrics must never fail a worker
            log.warning("%s: could not record metrics for a worker", self.service, exc_info=True)

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx.call_id, None)
        # Let go of the call's arguments now. A nameko worker context sits in a reference cycle
        # (context -> service instance -> an RPC proxy -> context), so it is freed only by the
        # cyclic garbage collector, often after it has been promoted to an old generation that
        # is rarely collected; with it went every 1 MiB evidence chunk it was called with. The
        # worker is done here: its reply or result was already handled.
        worker_ctx.args, worker_ctx.kwargs = (), {}

    # -- the service's parts ----------------------------------------------------------------

    def find(self, attribute: str, has: str):
        """The first dependency provider holding `attribute`, itself with an attribute `has`."""
        for provider in self.container.dependencies:
            value = getattr(provider, attribute, None)
            if provider is not self and value is not None and hasattr(value, has):
                return provider
        return None

    def databases(self):
        from wbs_plumbing.db import Database
        return [p for p in self.container.dependencies if isinstance(p, Database)]

    def checks(self) -> dict:
        found = {"broker": lambda: check_broker(self.amqp_uri)}
        for db in self.databases():
            found["database"] = lambda db=db: check_database(db.engine)
        store = self.find("store", "open_writer")
        if store is not None:
            found["object_store"] = lambda: check_object_store(store.store)
        keys = self.find("keyring", "kek_ids")
        if keys is not None:
            found["key_file"] = lambda: check_key_file(keys.keyring)
        return found

    def down(self) -> list[str]:
        """Names of the checks that fail (or take longer than CHECK_TIMEOUT_SECONDS)."""
        failed = []
        for name, check in self.checks().items():
            try:
                with eventlet.Timeout(CHECK_TIMEOUT_SECONDS):
                    check()
            except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 -- any failure means down
                log.warning("%s: readiness check %s failed: %s", self.service, name,
                            type(exc).__name__)
                failed.append(name)
            self.last_checks[name] = name not in failed
        return failed

    def outbox_gauges(self):
        pending = GaugeMetricFamily("wbs_outbox_pending",
                                    "Committed events not yet published by the outbox relay.",
                                    labels=["service"])
        age = GaugeMetricFamily("wbs_outbox_oldest_age_seconds",
                                "Age of the oldest unpublished outbox event (0 when none).",
                                labels=["service"])
        for db in self.databases():
            model = db.outbox_model
            if model is None or db.engine is None:
                continue
            count, oldest = self._query(db.engine, select(func.count(), func.min(model.created_at))
                                        .where(model.published_at.is_(None)))
            pending.add_metric([self.service], count or 0)
            age.add_metric([self.service], _age_seconds(oldest))
        yield pending
        yield age

    def notification_gauges(self):
        for db in self.databases():
            table = db.base.metadata.tables.get("notifications") if db.base is not None else None
            if table is None or db.engine is None:
                continue
            rows = self._query_all(db.engine, select(table.c.status, func.count())
                                   .where(table.c.status.in_(("pending", "failed")))
                                   .group_by(table.c.status))
            counts = dict(rows)
            for status in ("pending", "failed"):
                family = GaugeMetricFamily(f"wbs_notification_emails_{status}",
                                           f"Notification emails {status} (failed: gave up after "
                                           "the last retry)" if status == "failed" else
                                           "Notification emails waiting to be sent or retried.",
                                           labels=["service"])
                family.add_metric([self.service], counts.get(status, 0))
                yield family

    @staticmethod
    def _query(engine, statement):
        with eventlet.Timeout(CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            return connection.execute(statement).one()

    @staticmethod
    def _query_all(engine, statement):
        with eventlet.Timeout(CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            return connection.execute(statement).all()

    # -- the WSGI app -----------------------------------------------------------------------

    def app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, 405, b"method not allowed\n", "text/plain")
        if path == "/healthz":
            return _answer(start_response, 200, b'{"status":"alive"}', "application/json")
        if path == "/readyz":
            down = self.down()
            body = json.dumps({"down": down} if down else {"status": "ready"}).encode()
            return _answer(start_response, 503 if down else 200, body, "application/json")
        if path == "/metrics":
            try:
                body = generate_latest(metrics.REGISTRY) + generate_latest(self.registry)
            except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 -- e.g. database away
                log.warning("%s: metrics scrape failed: %s", self.service, type(exc).__name__)
                body = generate_latest(metrics.REGISTRY)
            return _answer(start_response, 200, body, CONTENT_TYPE_LATEST)
        return _answer(start_response, 404, b"not found\n", "text/plain")


def _age_seconds(oldest) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite returns naive datetimes; they are stored in UTC
        oldest = oldest.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())


def _answer(start_response, status: int, body: bytes, content_type: str):
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
              503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", content_type),
                                          ("Content-Length", str(len(body))),
                                          ("Cache-Control", "no-store")])
    return [body]

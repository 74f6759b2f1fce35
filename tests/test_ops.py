"""The ops listener (wbs_plumbing.ops): probes follow real outages, metrics carry no content.

Outages are made with a loopback TCP proxy this test controls between the service and the
machine's PostgreSQL or RabbitMQ: closing the proxy is a database or broker going away for that
one service, without touching the servers everyone else uses.
"""
import socket
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from nameko.rpc import rpc
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase

from tests.fixtures import free_port, wait_until
from wbs_plumbing.db import Database
from wbs_plumbing.ops import Ops
from wbs_plumbing.outbox import OutboxMixin
from wbs_plumbing.web import http


class TcpProxy:
    """Forwards a loopback port to `target`; `down()` closes it and every open connection."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self):
        """Stop listening and cut every open connection. Each socket is closed only by the
        green thread that waits on it (eventlet forbids closing a socket another one reads)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            socket.create_connection(("127.0.0.1", self.port)).close()  # wakes accept()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self, listener):
        while True:
            client, _ = listener.accept()
            if listener is not self._listener:
                client.close()
                listener.close()
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            done = []
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, done), daemon=True).start()

    @staticmethod
    def _pipe(source, sink, done):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except Exception:  # noqa: BLE001 -- the link was cut
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done.append(source)
        if len(done) == 2:  # both directions finished: nobody waits on either socket now
            source.close()
            sink.close()


def through(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    return urlunsplit(parts._replace(netloc=netloc))


def target_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def ready(address):
    response = requests.get(f"http://{address}/readyz", timeout=10)
    return response.status_code, response.json()


@pytest.fixture
def proxies(rabbit_uri, pg_database):
    made = []

    def make(url):
        proxy = TcpProxy(target_of(url)).up()
        made.append(proxy)
        return through(url, proxy), proxy

    yield make
    for proxy in made:
        proxy.down()


def test_readyz_turns_503_naming_the_database_or_broker_and_back_to_200(
        proxies, container_factory, service_config):
    # `proxies` first: set up before the container, so torn down after it
    from notification.service import NotificationService

    config = service_config("notification")
    config["DATABASE_URL"], db_proxy = proxies(config["DATABASE_URL"])
    config["AMQP_URI"], broker_proxy = proxies(config["AMQP_URI"])
    address = config["OPS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    container = container_factory(NotificationService, config)
    container.start()

    assert requests.get(f"http://{address}/healthz", timeout=5).status_code == 200
    assert ready(address) == (200, {"status": "ready"})

    db_proxy.down()
    assert ready(address) == (503, {"down": ["database"]})
    scraped = requests.get(f"http://{address}/metrics", timeout=10).text
    assert 'wbs_ready{check="database",service="notification"} 0.0' in scraped
    assert 'wbs_ready{check="broker",service="notification"} 1.0' in scraped
    assert requests.get(f"http://{address}/healthz", timeout=5).status_code == 200
    db_proxy.up()
    wait_until(lambda: ready(address)[0] == 200, timeout=20, interval=0.5)

    broker_proxy.down()
    assert ready(address) == (503, {"down": ["broker"]})
    broker_proxy.up()
    wait_until(lambda: ready(address)[0] == 200, timeout=20, interval=0.5)

    metrics = requests.get(f"http://{address}/metrics", timeout=10).text
    for name in ("wbs_outbox_pending{service=\"notification\"}",
                 "wbs_outbox_oldest_age_seconds{service=\"notification\"}",
                 "wbs_notification_emails_pending{service=\"notification\"} 0.0",
                 "wbs_notification_emails_failed{service=\"notification\"} 0.0"):
        assert name in metrics


def test_storage_readyz_names_the_object_store_and_the_key_file(
        proxies, container_factory, service_config, s3_server, s3_bucket, tmp_path):
    from storage.service import StorageService

    s3_endpoint, s3_proxy = proxies("http://" + s3_server["endpoint"])
    key_file = tmp_path / "keys.json"
    config = service_config(
        "storage", EVIDENCE_STORE="s3", S3_ENDPOINT=s3_endpoint.removeprefix("http://"),
        S3_ACCESS_KEY=s3_server["access_key"], S3_SECRET_KEY=s3_server["secret_key"],
        S3_BUCKET=s3_bucket, S3_SECURE=False, WBS_KEY_FILE=str(key_file))
    address = config["OPS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    container = container_factory(StorageService, config)
    container.start()
    assert ready(address) == (200, {"status": "ready"})
    assert 'wbs_storage_uploads_in_flight{service="storage"} 0.0' in requests.get(
        f"http://{address}/metrics", timeout=10).text

    s3_proxy.down()
    assert ready(address) == (503, {"down": ["object_store"]})
    s3_proxy.up()
    wait_until(lambda: ready(address)[0] == 200, timeout=20, interval=0.5)

    key_file.rename(tmp_path / "keys.json.away")
    assert ready(address) == (503, {"down": ["key_file"]})
    (tmp_path / "keys.json.away").rename(key_file)
    assert ready(address) == (200, {"status": "ready"})


# -- metrics labels: a service of this test, with an HTTP route that has a path parameter -----

class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class ProbeService:
    name = "opsprobe"

    db = Database(Base, Outbox)
    ops = Ops()

    @http("GET", "/things/<thing_id>")
    def get_thing(self, request, thing_id):
        if thing_id.startswith("missing"):
            from wbs_plumbing.web import ApiError
            raise ApiError(404, "not_found", "no such thing")
        return 200, "a thing"

    @rpc
    def stage(self, count):
        with self.db.transaction() as session:
            for _ in range(count):
                session.add(Outbox(event_id=str(uuid.uuid4()), exchange="nowhere.events",
                                   event_type="nothing_happened", body="{}", attempts=0))

    @rpc
    def pending(self):
        with self.db.transaction() as session:
            return len(list(session.scalars(select(Outbox).where(Outbox.published_at.is_(None)))))


def test_metrics_use_route_templates_and_never_hold_path_parameters_or_client_data(
        container_factory, service_config):
    from sqlalchemy import create_engine

    config = service_config("opsprobe", DB_AUTO_MIGRATE=False, OUTBOX_POLL_SECONDS=3600)
    engine = create_engine(config["DATABASE_URL"])
    Base.metadata.create_all(engine)
    engine.dispose()
    address = config["OPS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    container = container_factory(ProbeService, config)
    container.start()
    web = f"http://{config['WEB_SERVER_ADDRESS']}"

    canary = "CANARY" + uuid.uuid4().hex
    headers = {"User-Agent": f"ua-{canary}", "X-Forwarded-For": "203.0.113.77",
               "Accept-Language": f"x-{canary}"}
    assert requests.get(f"{web}/things/{canary}", headers=headers, timeout=5).status_code == 200
    assert requests.get(f"{web}/things/missing-{canary}", headers=headers,
                        timeout=5).status_code == 404

    from nameko.testing.services import entrypoint_hook
    with entrypoint_hook(container, "stage") as stage:
        stage(3)

    text = requests.get(f"http://{address}/metrics", timeout=10).text
    assert canary not in text and "203.0.113.77" not in text
    assert 'wbs_http_requests_total{route="/things/<thing_id>",service="opsprobe",status="200"} 1.0' in text
    assert 'wbs_http_requests_total{route="/things/<thing_id>",service="opsprobe",status="404"} 1.0' in text
    assert 'wbs_handler_duration_seconds_count{entrypoint="get_thing",outcome="ok",service="opsprobe"} 1.0' in text
    assert 'wbs_handler_duration_seconds_count{entrypoint="get_thing",outcome="refused",service="opsprobe"} 1.0' in text
    assert 'wbs_handler_duration_seconds_count{entrypoint="stage",outcome="ok",service="opsprobe"} 1.0' in text
    assert 'wbs_outbox_pending{service="opsprobe"} 3.0' in text
    age = next(line for line in text.splitlines()
               if line.startswith('wbs_outbox_oldest_age_seconds{service="opsprobe"}'))
    assert float(age.split()[-1]) > 0
    # the public port knows nothing of the probes
    assert requests.get(f"{web}/metrics", timeout=5).status_code == 404
    assert requests.get(f"{web}/healthz", timeout=5).status_code == 404

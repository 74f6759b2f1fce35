"""Shared fixtures: real RabbitMQ, PostgreSQL, S3 (moto's server) and SMTP (aiosmtpd) on loopback.

Every test that needs a broker gets its own RabbitMQ vhost, and its own PostgreSQL database;
both are removed afterwards. Under CI=true a missing server fails the run: nothing is skipped.
"""
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from email import message_from_bytes, policy
from urllib.parse import quote

import eventlet.patcher
import pytest
import requests
import sqlalchemy
from eventlet import tpool

RABBIT_HOST = os.environ.get("WBS_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("WBS_TEST_RABBIT_PORT", "5672"))
PG_ADMIN_URL = os.environ.get("WBS_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
RUN_ID = uuid.uuid4().hex[:8]
_subprocess = eventlet.patcher.original("subprocess")  # see _run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rabbitmqctl(*args: str, attempts: int = 4) -> str:
    """Run ``rabbitmqctl`` and return its output.

    A call that finds the node busy (exit 69 "unavailable", 75 "temporary failure") is tried
    again after a pause; a call that hangs is ended with its whole process group, because the
    Debian wrapper runs the CLI under ``su`` and killing the wrapper alone would leave the CLI's
    VM holding one of the few distribution ports every later call needs. A final failure says
    what the CLI printed."""
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    for attempt in range(1, attempts + 1):
        returncode, out, err = tpool.execute(_run_cli, [exe, *args])
        if returncode == 0:
            return out
        if returncode not in (69, 75) or attempt == attempts:
            raise subprocess.CalledProcessError(returncode, [exe, *args], out, f"{err[-3000:]}")
        time.sleep(3 * attempt)


def _run_cli(argv: list) -> tuple:
    """(exit status, stdout, stderr) of a command run in a native thread with the unpatched
    ``subprocess``: its pipes never go through eventlet's hub, so a descriptor number that a
    greenthread of some earlier container left a listener on cannot trip the call."""
    process = _subprocess.Popen(argv, stdout=_subprocess.PIPE, stderr=_subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    except _subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        return 75, out, f"timed out after 120 s\n{err}"
    return process.returncode, out, err


@pytest.fixture(scope="session")
def management_url():
    """RabbitMQ's management API, enabled once if the broker does not serve it yet. Tests make
    and remove their vhosts through it: an HTTP call costs milliseconds, where each
    ``rabbitmqctl`` call starts an Erlang VM (about a second of CPU) and needs one of the CLI's
    few distribution ports."""
    url = f"http://{RABBIT_HOST}:15672"

    def up():
        try:
            return requests.get(f"{url}/api/overview", auth=("guest", "guest"), timeout=5).ok
        except requests.RequestException:
            return False
    if not up():
        subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management"], check=True,
                       capture_output=True, timeout=180)
        wait_until(up, timeout=90)
    return url


class Vhosts:
    """A new vhost for each test, made and emptied through the management API.

    A vhost is never deleted while the run goes on, only emptied: RabbitMQ 3.10 can wedge for
    good while it deletes a vhost on a busy machine (the vhost's supervisor that is being stopped
    never stops, and every later add and delete waits behind it: seen when another broker node
    booted beside it). An empty vhost costs the broker two file handles; a test's queues, and
    the history stream above all, cost more, so they are deleted as soon as the test ends.
    The vhosts themselves are deleted when the run ends, within a bounded time."""

    def __init__(self, management_url: str):
        self.url, self.made = management_url, []

    def _call(self, method: str, path: str, timeout: float = 120, **kwargs):
        answer = requests.request(method, f"{self.url}/api/{path}", auth=("guest", "guest"),
                                  timeout=timeout, **kwargs)
        if not answer.ok and not (method == "DELETE" and answer.status_code == 404):
            raise RuntimeError(f"{method} /api/{path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if method == "GET" else None

    def make(self) -> str:
        vhost = f"wbs-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"
        self._call("PUT", f"vhosts/{vhost}", json={"description": "wbs-tests"})
        self.made.append(vhost)
        self._call("PUT", f"permissions/{vhost}/guest", json={"configure": ".*", "write": ".*", "read": ".*"})
        return vhost

    def empty(self, vhost: str) -> None:
        """After the test: its connections closed and its queues deleted (the test's services
        are stopped by now). kombu keeps publishers' connections in a pool per broker URI for
        the life of the process; each test's URI is new, so without this every test would
        leave its connections open until the broker runs out of sockets."""
        import kombu.pools
        kombu.pools.reset()
        quoted = quote(vhost, safe="")
        for connection in self._call("GET", f"vhosts/{quoted}/connections?columns=name"):
            self._call("DELETE", f"connections/{quote(connection['name'], safe='')}")
        for queue in self._call("GET", f"queues/{quoted}?columns=name"):
            self._call("DELETE", f"queues/{quoted}/{quote(queue['name'], safe='')}")

    def close(self, budget: float = 120) -> None:
        deadline = time.monotonic() + budget
        for vhost in self.made:
            if time.monotonic() > deadline:
                break
            try:
                self._call("DELETE", f"vhosts/{vhost}", timeout=max(1.0, deadline - time.monotonic()))
            except (requests.RequestException, RuntimeError):
                break  # a wedged deletion: leave the rest to the next run's operator, not hang


@pytest.fixture(scope="session")
def _rabbit_vhosts(management_url):
    vhosts = Vhosts(management_url)
    yield vhosts
    vhosts.close()


@pytest.fixture
def rabbit_uri(_rabbit_vhosts):
    """A vhost of its own on the machine's RabbitMQ, so queue names never collide between tests."""
    vhost = _rabbit_vhosts.make()
    yield f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
    _rabbit_vhosts.empty(vhost)


@pytest.fixture
def pg_database():
    """Factory: a fresh PostgreSQL database per name, all dropped after the test."""
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    made = {}

    def make(label: str = "main") -> str:
        if label not in made:
            name = f"wbs_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            made[label] = name
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + made[label]

    yield make
    with admin.connect() as connection:
        for name in made.values():
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(pg_database):
    """A fresh PostgreSQL database, dropped after the test."""
    return pg_database("main")


@pytest.fixture(scope="session")
def s3_server():
    """moto's standalone S3 server on loopback: the stand-in for MinIO (no MinIO runs here)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield {"endpoint": f"127.0.0.1:{port}", "access_key": "wbs-test-access",
           "secret_key": "wbs-test-secret-key", "secure": False}
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    from minio import Minio

    client = Minio(s3_server["endpoint"], access_key=s3_server["access_key"],
                   secret_key=s3_server["secret_key"], secure=False)
    name = f"wbs-test-{uuid.uuid4().hex[:12]}"
    client.make_bucket(name)
    return name


@pytest.fixture
def fast_teardown():
    """Replaces nameko's autouse ordering fixture: `container_factory` below orders teardown."""
    yield


@pytest.fixture
def container_factory(pg_database, rabbit_uri):
    """nameko's container factory, set up after (so torn down before) the databases and vhost.

    With nameko's own, containers outlive the test's databases and vhost, and their timers and
    outbox relays log errors against a database that no longer exists.
    """
    from nameko.containers import get_container_cls

    containers = []

    def make(service_cls, config):
        container = get_container_cls(config)(service_cls, config)
        containers.append(container)
        return container

    yield make
    for container in containers:
        try:
            container.kill()
        except Exception:
            pass


class SmtpSink:
    """An aiosmtpd server on loopback that keeps every message it accepts."""

    def __init__(self, port: int | None = None):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.raw = []
        self.peers = []  # the client (host, port) each message came from: one per connection
        self._lock = threading.Lock()
        self.host, self.port = "127.0.0.1", port or free_port()
        self.controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.peers.append(session.peer)
            self.raw.append(envelope.content)
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def service_config(rabbit_uri, pg_database, tmp_path):
    """Factory for a service's nameko config on this test's vhost, data dir and a database of its own.

    Each service name gets a PostgreSQL database of its own (read it back from
    `config["DATABASE_URL"]`), as in production: nobody reads another service's tables.
    """

    def make(service: str, **overrides) -> dict:
        config = {
            "AMQP_URI": rabbit_uri,
            "WBS_ENV": "development",
            "WBS_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": pg_database(service),
            "DB_AUTO_MIGRATE": True,
            "serializer": "msgpack",
            "ACCEPT": ["msgpack", "json"],
            "RETRY_DELAYS_MS": [50, 100],
            "OUTBOX_POLL_SECONDS": 0.2,
            "OUTBOX_SWEEP_AFTER_SECONDS": 1,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "WBS_POW_BITS": 0,
        }
        config.update(overrides)
        return config

    return make


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value; fail the test at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


__all__ = ["free_port", "wait_until", "SmtpSink", "requests"]

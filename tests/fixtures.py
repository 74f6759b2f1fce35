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

import pytest
import requests
import sqlalchemy

RABBIT_HOST = os.environ.get("WBS_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("WBS_TEST_RABBIT_PORT", "5672"))
PG_ADMIN_URL = os.environ.get("WBS_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
RUN_ID = uuid.uuid4().hex[:8]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([exe, *args], check=True, capture_output=True, text=True, timeout=60).stdout


#: Finished tests' vhosts are removed in batches of this many: each vhost holds file handles on the
#: broker (quorum queues, the history stream), and a broker started with the common limit of 1,024
#: open files runs out if a whole run's vhosts pile up; one call per test would be slow instead.
VHOST_BATCH = 10


def _delete_vhosts(names: list) -> None:
    if names:
        listed = ", ".join(f'<<"{name}">>' for name in names)
        rabbitmqctl("eval", f'[rabbit_vhost:delete(V, <<"wbs-tests">>) || V <- [{listed}]].')
        names.clear()


@pytest.fixture(scope="session")
def _rabbit_vhosts():
    """Finished tests' vhosts, removed in batches; whatever the run made is removed at its end."""
    finished = []
    yield finished
    _delete_vhosts(finished)
    rabbitmqctl("eval", "[rabbit_vhost:delete(V, <<\"wbs-tests\">>) || V <- rabbit_vhost:list_names(),"
                        f" binary:match(V, <<\"wbs-test-{RUN_ID}-\">>) =/= nomatch].")


@pytest.fixture
def rabbit_uri(_rabbit_vhosts):
    """A fresh vhost on the machine's RabbitMQ, so queue names never collide between tests."""
    vhost = f"wbs-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("eval",
                f'rabbit_vhost:add(<<"{vhost}">>, <<"wbs-tests">>), '
                f'rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"{vhost}">>, '
                '<<".*">>, <<".*">>, <<".*">>, <<"wbs-tests">>).')
    yield f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
    _rabbit_vhosts.append(vhost)
    if len(_rabbit_vhosts) >= VHOST_BATCH:
        _delete_vhosts(_rabbit_vhosts)


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

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.raw = []
        self._lock = threading.Lock()
        self.host, self.port = "127.0.0.1", free_port()
        self.controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
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

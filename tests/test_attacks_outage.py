"""Finding 5 of the security review: a broker outage killed storage for good, and `wbs run`
stopped everything when one child exited. Here: the supervisor restarts a dead child with
backoff and says so, the others keep running."""
import subprocess
import sys

from tests.fixtures import wait_until
from wbs_cli.supervisor import Backoff, Children


def test_backoff_doubles_to_its_cap_and_resets_after_a_healthy_run():
    backoff = Backoff(first=1, cap=8, healthy_after=60)
    assert [backoff.next(ran_for=0.5) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.next(ran_for=61) == 1  # it had run for a minute: start over


def test_a_dead_child_is_restarted_and_the_others_keep_running():
    lines, started = [], []

    def start(name):
        started.append(name)
        # "crashy" dies at once, every time; "steady" lives until stopped
        code = "import sys; sys.exit(3)" if name == "crashy" else "import time; time.sleep(60)"
        return subprocess.Popen([sys.executable, "-c", code])

    children = Children(("crashy", "steady"), start, lines.append)
    children.backoff["crashy"] = Backoff(first=0.1, cap=0.2)
    steady = children.processes["steady"]
    try:
        def restarted_twice():
            children.tick()
            return children.restarts["crashy"] >= 2
        wait_until(restarted_twice, timeout=20, interval=0.05)
        assert "crashy exited with 3; restarting it in 0 s" in lines
        assert "crashy restarted (restart 1)" in lines
        assert steady.poll() is None and children.processes["steady"] is steady
        assert started.count("steady") == 1
    finally:
        children.stop(timeout=5)
    assert steady.poll() is not None  # stop() ends every child


# -- a broker outage mid-RPC, on a broker node this test owns -------------------------------

import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import eventlet
import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

import wbs_plumbing.rpc  # noqa: F401 -- what every service imports: contains a lost reply
from storage.service import StorageService
from tests.fixtures import free_port, rabbitmqctl


@pytest.fixture
def own_broker():
    """A RabbitMQ node of its own beside the system broker (never rabbit@localhost): its own
    config (the system's pins 5672), name, distribution port and directories owned by the
    rabbitmq user. Returns (amqp uri, stop_app, start_app)."""
    port, dist = free_port(), free_port()
    node = f"wbs-outage-{uuid.uuid4().hex[:6]}@localhost"
    folder = Path(tempfile.mkdtemp(prefix="wbs-node-"))
    folder.chmod(0o755)
    (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n")
    (folder / "plugins").write_text("")
    shutil.chown(folder, "rabbitmq", "rabbitmq")
    for item in folder.iterdir():
        shutil.chown(item, "rabbitmq", "rabbitmq")
    env = dict(os.environ, RABBITMQ_CONFIG_FILE=str(folder / "rabbitmq.conf"), RABBITMQ_NODENAME=node,
               RABBITMQ_DIST_PORT=str(dist), RABBITMQ_MNESIA_BASE=str(folder / "mnesia"),
               RABBITMQ_LOG_BASE=str(folder / "log"), RABBITMQ_ENABLED_PLUGINS_FILE=str(folder / "plugins"))
    subprocess.run(["rabbitmq-server", "-detached"], env=env, check=True, timeout=60)
    try:
        wait_until(lambda: subprocess.run(["rabbitmqctl", "-n", node, "-q", "await_startup"],
                                          capture_output=True, timeout=60).returncode == 0,
                   timeout=180, interval=1)  # the node's VM answers only after a moment
        yield (f"amqp://guest:guest@127.0.0.1:{port}/",
               lambda: rabbitmqctl("-n", node, "stop_app"), lambda: rabbitmqctl("-n", node, "start_app"))
    finally:
        # by its name, never the system's node; one that does not answer (still booting on a busy
        # machine) is ended by the ids of its own processes, found by its node name
        if subprocess.run(["rabbitmqctl", "-n", node, "stop"], capture_output=True, timeout=60).returncode != 0:
            for pid in _processes_of_node(node):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def _processes_of_node(node: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f"RABBITMQ_NODENAME={node}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


class SlowService:
    """An RPC that is still working when the broker goes away; it replies into the outage."""

    name = "slow"

    @rpc
    def slow(self, seconds):
        eventlet.sleep(seconds)
        return "done"


def test_a_broker_outage_while_replying_kills_no_service(own_broker, service_config, container_factory):
    uri, stop_broker, start_broker = own_broker
    config = service_config("storage", AMQP_URI=uri, REQUIRE_SEALED_TRANSIT=False)
    storage = container_factory(StorageService, config)
    slow = container_factory(SlowService, config)
    storage.start()
    slow.start()
    proxy_config = {"AMQP_URI": uri, "serializer": "msgpack", "ACCEPT": ["msgpack", "json"]}
    caller = ClusterRpcProxy(proxy_config, timeout=10)
    cluster = caller.start()
    assert cluster.slow.slow(0) == "done"
    cluster.slow.slow.call_async(3)  # answered into the outage
    time.sleep(0.5)
    stop_broker()
    with contextlib.suppress(Exception):
        caller.stop()  # the caller's connection died too
    time.sleep(4)  # the reply was attempted while the broker was away
    start_broker()

    def answers():
        try:
            with ClusterRpcProxy(proxy_config, timeout=5) as cluster:
                return cluster.slow.slow(0) == "done" and cluster.storage.open_transit()["route"]
        except Exception:  # noqa: BLE001 -- still reconnecting
            return None
    assert wait_until(answers, timeout=60, interval=1)
    assert not slow._died.ready() and not storage._died.ready()  # both lived through it


def test_while_the_broker_is_down_a_reporter_gets_a_503_with_retry_after(own_broker, service_config,
                                                                         container_factory):
    """The review's reporters waited 30-60 s for an answer. With the broker away intake answers
    503 with Retry-After, before the RPC deadline; once it is back, reports are accepted again."""
    import requests
    from intake.service import IntakeService
    from tests.signed import signed_hook
    from verification.service import VerificationService

    uri, stop_broker, start_broker = own_broker
    storage = container_factory(StorageService, service_config("storage", AMQP_URI=uri))
    verification = container_factory(VerificationService, service_config("verification", AMQP_URI=uri))
    intake_config = service_config("intake", AMQP_URI=uri, INTAKE_RPC_TIMEOUT_SECONDS=30)
    intake = container_factory(IntakeService, intake_config)
    for container in (storage, verification, intake):
        container.start()
    with signed_hook(verification, "add_unit") as add_unit:
        add_unit("out-itjen", "Inspektorat", inspectorate=True)
        add_unit("out-dit", "Direktorat", parent="out-itjen")
    base = f"http://{intake_config['WEB_SERVER_ADDRESS']}"
    report = {"unit": "out-dit", "category": "procurement", "title": "Lelang diatur",
              "description": "Panitia bertemu pemenang sebelum lelang dibuka.",
              "parties": [{"name": "Budi S.", "position": "Ketua panitia"}],
              "reporter": {"relationship": "employee", "involved": False}, "language": "id", "good_faith": True}

    def submitted():
        answer = requests.post(f"{base}/api/v1/reports", json=report, timeout=60)
        return answer.status_code == 201
    assert wait_until(submitted, timeout=30, interval=1)

    stop_broker()
    try:
        started = time.monotonic()
        answer = requests.post(f"{base}/api/v1/reports", json=report, timeout=60)
        waited = time.monotonic() - started
    finally:
        start_broker()
    print(f"reporter's answer with the broker down: {answer.status_code} after {waited:.1f} s")
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0, answer.text
    assert waited < 6  # within a few seconds (the send's own bound), never the 30 s RPC deadline
    assert wait_until(submitted, timeout=60, interval=1)
    assert not any(c._died.ready() for c in (storage, verification, intake))

"""A three-node RabbitMQ cluster beside the machine's own broker, for the cluster fault suite.

Why a real cluster: quorum queues, a node's death and the clients' failover between nodes are
the broker's behaviour, not ours; only a real cluster shows what a reporter sees meanwhile. The
nodes run from the installed RabbitMQ with their own config file (listener, no loopback-only
users), node name, distribution port and data directory under a temporary directory owned by
the ``rabbitmq`` user, and are stopped and removed at the end. The system broker
(``rabbit@localhost``) is never touched: every rabbitmqctl call here names its node.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
SERVER = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
SYSTEM_NODE = "rabbit@localhost"
# The CLI's own distribution ports: by default 35672-35682, eleven ports shared with every other
# rabbitmqctl on the machine (a few hung ones exhaust them); these calls use their own range.
CTL_ENV = dict(os.environ, RABBITMQ_CTL_DIST_PORT_MIN="36150", RABBITMQ_CTL_DIST_PORT_MAX="36199")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RabbitCluster:
    def __init__(self, size: int = 3):
        self.tag = uuid.uuid4().hex[:6]
        self.root = Path(tempfile.mkdtemp(prefix="wbs-cluster-"))
        self.root.chmod(0o755)
        self.nodes = [f"wbsc{self.tag}n{i + 1}@localhost" for i in range(size)]
        self.ports = [_free_port() for _ in self.nodes]
        self.dist_ports = [_free_port() for _ in self.nodes]
        self.running: set[int] = set()

    # -- nodes -----------------------------------------------------------------------------

    def _env(self, i: int) -> dict:
        d = self.root
        return dict(os.environ, RABBITMQ_CONFIG_FILE=str(d / f"r{i}.conf"), RABBITMQ_NODENAME=self.nodes[i],
                    RABBITMQ_DIST_PORT=str(self.dist_ports[i]), RABBITMQ_MNESIA_BASE=str(d / f"m{i}"),
                    RABBITMQ_LOG_BASE=str(d / f"l{i}"), RABBITMQ_ENABLED_PLUGINS_FILE=str(d / f"p{i}"))

    def ctl(self, i: int, *args: str, timeout: float = 60, check: bool = True) -> str:
        assert self.nodes[i] != SYSTEM_NODE
        result = subprocess.run([RABBITMQCTL, "-n", self.nodes[i], *args], capture_output=True, text=True,
                                timeout=timeout, env=CTL_ENV)
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.nodes[i]} {' '.join(args)}: {result.stderr or result.stdout}")
        return result.stdout

    def start_node(self, i: int, timeout: float = 90) -> None:
        self.start_nodes([i], timeout)

    def start_nodes(self, indexes, timeout: float = 120) -> None:
        """Start the nodes together: a node restarted after the whole cluster stopped waits for
        its peers before it finishes booting, so they must not be started one after another."""
        for i in indexes:
            subprocess.run([SERVER, "-detached"], env=self._env(i), check=True, capture_output=True, timeout=60)
            self.running.add(i)  # from here on, close() stops it
        for i in indexes:
            self._await(i, timeout)

    def _await(self, i: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:  # -detached returns before the node is reachable; await_startup needs it reachable
            result = subprocess.run([RABBITMQCTL, "-n", self.nodes[i], "-q", "await_startup", "--timeout", "10"],
                                    capture_output=True, text=True, timeout=30, env=CTL_ENV)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.nodes[i]} did not start: {result.stderr[-2000:]}")
            time.sleep(0.5)

    def stop_node(self, i: int) -> None:
        try:
            self.ctl(i, "stop", check=False)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 15
        while self._pids(i) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in self._pids(i):  # the CLI could not stop it: end this node's own process
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        self.running.discard(i)

    def _pids(self, i: int) -> list:
        """The node's Erlang VM, found by the node name and data directory it was started with."""
        wanted = {f"RABBITMQ_NODENAME={self.nodes[i]}".encode(), f"RABBITMQ_MNESIA_BASE={self.root / f'm{i}'}".encode()}
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if wanted <= set((entry / "environ").read_bytes().split(b"\0")) and \
                            b"beam" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def start(self) -> "RabbitCluster":
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> "RabbitCluster":
        for i in range(len(self.nodes)):
            (self.root / f"r{i}.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{self.ports[i]}\nloopback_users = none\n"
                "cluster_partition_handling = pause_minority\nqueue_leader_locator = balanced\n")
            (self.root / f"p{i}").write_text("[].\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.root)], check=True)
        for i in range(len(self.nodes)):
            self.start_node(i)
        for i in range(1, len(self.nodes)):
            self.ctl(i, "stop_app")
            self.ctl(i, "join_cluster", self.nodes[0])
            self.ctl(i, "start_app")
        return self

    def close(self) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- clients ---------------------------------------------------------------------------

    def uri(self, i: int, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        from urllib.parse import quote
        return f"amqp://{user}:{password}@127.0.0.1:{self.ports[i]}/{quote(vhost, safe='')}"

    def failover_uri(self, **kwargs) -> str:
        """Every node, ``;``-separated: kombu tries the next when one is unreachable."""
        return ";".join(self.uri(i, **kwargs) for i in range(len(self.nodes)))

    def connections_per_node(self) -> dict:
        """{node index: client connections}, to find the node most clients use."""
        counts = {}
        for i in sorted(self.running):
            out = self.ctl(i, "eval", "length(rabbit_networking:connections_local()).", check=False).strip()
            counts[i] = int(out) if out.isdigit() else 0
        return counts

    def wait_members(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = min(self.running)
            out = self.ctl(i, "cluster_status", "--formatter", "json", check=False)
            if out.count("@localhost") and _running_nodes(out) >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"cluster has not {count} running nodes after {timeout}s")


def _running_nodes(status_json: str) -> int:
    import json
    try:
        return len(json.loads(status_json).get("running_nodes", []))
    except ValueError:
        return 0


class PausableProxy:
    """A TCP proxy on loopback in front of one server (PostgreSQL here) that the test can pause.

    Paused, it cuts every open connection and refuses new ones (accepts and closes at once): to
    the service behind it, the database is unreachable, while the machine's PostgreSQL and every
    other service's connections are untouched.
    """

    def __init__(self, target_host: str, target_port: int):
        import threading
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.paused = threading.Event()
        self.closed = False
        self._lock = threading.Lock()
        self._open: set = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except Exception:  # noqa: BLE001 -- the other direction or pause() closed it: the pipe ends
            pass
        finally:
            # Each socket is read by one thread and closed only by that thread: closing a socket
            # another (green) thread is reading leaves that thread's wait on a reused descriptor.
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)  # the other direction's reader sees the end
                except OSError:
                    pass
            with self._lock:
                self._open.discard(source)
            source.close()

    def pause(self):
        self.paused.set()
        with self._lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def resume(self):
        self.paused.clear()

    def close(self):
        self.closed = True
        self.pause()
        self.listener.close()


def replica_stack_class():
    """`tests.stack.Stack` with several processes of every service (imported late: stack imports requests)."""
    import subprocess as sp
    import sys

    import requests

    from tests.stack import ROOT, SERVICES, Stack, free_port

    class ReplicaStack(Stack):
        """Every service as ``replicas`` separate ``nameko run`` processes, keyed ``<service>.<n>``.

        Each replica has its own ops listener (its /readyz is the readiness probe); intake and
        verification replicas each their own HTTP port, as behind a load balancer.
        """

        def __init__(self, *args, replicas: int = 2, database_overrides: dict | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.replicas = replicas
            self.intake_urls = [self.intake_url] + [f"http://127.0.0.1:{free_port()}" for _ in range(replicas - 1)]
            self.console_urls = [self.console_url] + [f"http://127.0.0.1:{free_port()}" for _ in range(replicas - 1)]
            self.replica_ops: dict[str, str] = {}
            for service, url in (database_overrides or {}).items():
                self.env[f"{service.upper()}_DATABASE_URL"] = url

        def keys(self):
            return [f"{service}.{n}" for service in SERVICES for n in range(self.replicas)]

        def start_replica(self, key: str):
            service, n = key.rsplit(".", 1)
            n = int(n)
            env = dict(self.service_env(service))
            self.replica_ops[key] = f"127.0.0.1:{free_port()}"
            env[f"{service.upper()}_OPS_ADDRESS"] = self.replica_ops[key]
            env["INTAKE_HTTP_ADDRESS"] = self.intake_urls[n].split("//")[1]
            env["CONSOLE_HTTP_ADDRESS"] = self.console_urls[n].split("//")[1]
            log = open(self.log_dir / f"{key}.log", "ab")
            self._logs[key] = log
            nameko = str(Path(sys.executable).parent / "nameko")
            self.processes[key] = sp.Popen(
                [nameko, "run", "--config", str(ROOT / "services" / service / "config.yml"), f"{service}.service"],
                cwd=ROOT, env=env, stdout=log, stderr=sp.STDOUT, start_new_session=True)

        def ready(self, key: str) -> bool:
            self._fail_if_exited(key)
            try:
                return requests.get(f"http://{self.replica_ops[key]}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        def wait_replicas(self, keys, timeout: float = 120):
            deadline = time.monotonic() + timeout
            for key in keys:
                while not self.ready(key):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{key} not ready in {timeout}s:\n{self.log(key)[-3000:]}")
                    time.sleep(0.3)

        def start_all(self, timeout: float = 180):
            for service in SERVICES:  # storage first: the others call it
                for n in range(self.replicas):
                    self.start_replica(f"{service}.{n}")
                self.wait_replicas([f"{service}.{n}" for n in range(self.replicas)], timeout)
            return self

        def kill(self, key: str):
            """kill -9 of one replica's process group; restart with start_replica."""
            import signal
            process = self.processes.pop(key)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self._logs.pop(key).close()

    return ReplicaStack

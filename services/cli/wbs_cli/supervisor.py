"""`wbs run` (what `make run` calls): the four services in the foreground, embedded defaults.

A deliberately small supervisor instead of a Procfile runner: it has to migrate first, fail fast
when RabbitMQ is unreachable, seed the demo directory once verification answers, print the
sign-in, and stop every child cleanly on Ctrl-C (nameko finishes in-flight workers on SIGTERM).

A child that dies (a crash, the OOM killer, a broker outage it could not ride out) is started
again after a backoff (1 s, doubling up to 30 s; back to 1 s once it has run for a minute), and
the supervisor says so: one dead service must not take the others down, nor stay down.

Broker identities (DESIGN §10): where ``rabbitmqctl`` works here, each service runs as its own
broker user with the permissions of deploy/rabbitmq/definitions.py (fresh passwords each run,
never written to disk). Otherwise, or with ``WBS_BROKER_IDENTITIES=shared``, every service uses
``AMQP_URI``'s user, and the supervisor says plainly that this is one shared development
identity.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml

from wbs_plumbing.config import database_url, with_process_env
from wbs_plumbing.db import alembic_dir_for
from wbs_plumbing.migrations import migrate

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("storage", "verification", "notification", "intake")
OPS_ORDER = ("intake", "storage", "verification", "notification")
BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 1.0, 30.0, 60.0


class Backoff:
    """Restart delays of one child: doubling, capped, reset after a healthy run."""

    def __init__(self, first=BACKOFF_FIRST, cap=BACKOFF_MAX, healthy_after=HEALTHY_AFTER):
        self.first, self.cap, self.healthy_after = first, cap, healthy_after
        self.delay = first

    def next(self, ran_for: float) -> float:
        if ran_for >= self.healthy_after:
            self.delay = self.first
        delay, self.delay = self.delay, min(self.delay * 2, self.cap)
        return delay


class Children:
    """The running children: ``tick()`` notices a dead one, waits its backoff, starts it again.

    ``start(name)`` returns a ``subprocess.Popen``; ``say`` gets one line per event."""

    def __init__(self, names, start, say, clock=time.monotonic):
        self.start, self.say, self.clock = start, say, clock
        self.processes = {name: start(name) for name in names}
        self.started = {name: clock() for name in names}
        self.backoff = {name: Backoff() for name in names}
        self.restart_at: dict = {}
        self.restarts = {name: 0 for name in names}

    def tick(self) -> None:
        now = self.clock()
        for name, process in list(self.processes.items()):
            if name in self.restart_at:
                if now >= self.restart_at[name]:
                    del self.restart_at[name]
                    self.processes[name], self.started[name] = self.start(name), now
                    self.restarts[name] += 1
                    self.say(f"{name} restarted (restart {self.restarts[name]})")
            elif process.poll() is not None:
                delay = self.backoff[name].next(now - self.started[name])
                self.restart_at[name] = now + delay
                self.say(f"{name} exited with {process.returncode}; restarting it in {delay:.0f} s")

    def stop(self, timeout: float = 20) -> None:
        self.restart_at.clear()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def broker_identities(amqp_uri: str) -> tuple[dict, str]:
    """({service: AMQP URI}, a sentence for the operator)."""
    if os.environ.get("WBS_BROKER_IDENTITIES", "").strip().lower() == "shared":
        return {}, "WBS_BROKER_IDENTITIES=shared"
    try:
        from wbs_cli.broker import create_identities
        return create_identities(amqp_uri), ""
    except Exception as exc:  # noqa: BLE001 -- any failure means the shared fallback, said plainly
        return {}, str(exc) or type(exc).__name__


def service_config(service: str) -> dict:
    """The service's config.yml with `${VAR:default}` filled from the environment, as nameko does."""
    from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    with open(ROOT / "services" / service / "config.yml") as handle:
        return yaml.safe_load(handle)


def migrate_all(services=SERVICES):
    import importlib
    for service in services:
        config = service_config(service)
        url = database_url(config, service)
        base = importlib.import_module(f"{service}.models").Base
        migrate(alembic_dir_for(base), url)
        print(f"migrated {service}")


def broker_reachable(amqp_uri: str) -> str | None:
    """None if RabbitMQ answers the AMQP handshake, else a reason for a human. With several
    nodes in ``AMQP_URI`` (wbs_plumbing.failover), the first that answers counts."""
    from wbs_plumbing.failover import node_uris
    for node in node_uris(amqp_uri) or [amqp_uri]:
        parsed = urlparse(node)
        host, port = parsed.hostname or "localhost", parsed.port or 5672
        try:
            with socket.create_connection((host, port), timeout=3):
                break
        except OSError as exc:
            reason = exc.strerror or exc
    else:
        return f"cannot reach RabbitMQ at {host}:{port} ({reason}). Start it (e.g. `rabbitmq-server -detached`) or set AMQP_URI."
    try:
        import pika
        pika.BlockingConnection(pika.URLParameters(node)).close()
    except Exception as exc:
        return f"RabbitMQ at {host}:{port} refused the connection ({type(exc).__name__}); check AMQP_URI credentials and vhost."
    return None


def _pump(name: str, stream):
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>12} | {line.decode('utf-8', 'replace')}")
        sys.stdout.flush()


def _wait_for_verification(timeout=90):
    """Seed the demo directory once verification answers. In a child process: an RPC client
    needs eventlet's monkey-patching, which must not touch this process's real threads."""
    import json
    wbs = str(Path(sys.executable).parent / "wbs")
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run([wbs, "demo", "seed"], capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return json.loads(result.stdout)
        if time.monotonic() > deadline:
            raise RuntimeError(result.stderr.strip())
        time.sleep(1)


def banner(demo: dict) -> str:
    public = os.environ.get("WBS_PUBLIC_URL", "http://localhost:8000")
    console = os.environ.get("WBS_CONSOLE_URL", "http://localhost:8001")
    lines = ["", "=" * 72, "Whistle Blowing System is running.",
             f"  Reporter site (intake):      {public}/",
             f"  Inspector console:           {console}/",
             f"  Data (SQLite, evidence, mail outbox): {os.environ['WBS_DATA_DIR']}", ""]
    for role, who in (("inspector", "inspector (ministry)"), ("supervisor", "supervisor (ministry)"),
                      ("kpu_inspector", "inspector (election commission)")):
        account = demo.get(role) or {}
        lines += [f"  Demo {who}: username {account.get('username')}  password {account.get('password')}",
                  f"    TOTP secret {account.get('totp_secret')}  ({account.get('otpauth_uri', '')})",
                  f"    current code: .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('{account.get('totp_secret')}').now())\""]
    lines += ["", "Press Ctrl-C to stop.", "=" * 72, ""]
    return "\n".join(lines)


def run() -> int:
    os.environ["WBS_DATA_DIR"] = str(Path(os.environ.get("WBS_DATA_DIR", ROOT / "var")).resolve())
    Path(os.environ["WBS_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    amqp_uri = os.environ.setdefault("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    problem = broker_reachable(amqp_uri)
    if problem:
        print(f"wbs run: {problem}", file=sys.stderr)
        return 1
    migrate_all()

    identities, reason = broker_identities(amqp_uri)
    if identities:
        print("wbs run: each service runs as its own broker user ({}) with least privilege".format(
            ", ".join(urlparse(identities[s]).username for s in SERVICES)), flush=True)
    else:
        print(f"wbs run: per-service broker identities not created ({reason}); every service shares "
              f"the broker user {urlparse(amqp_uri).username!r}: ONE SHARED DEVELOPMENT IDENTITY, "
              "not for production", flush=True)

    nameko = str(Path(sys.executable).parent / "nameko")

    def start(service):
        env = with_process_env(dict(os.environ))  # the event loop, quiet start (wbs_plumbing.config)
        # probes and metrics (wbs_plumbing.ops) on loopback only: 127.0.0.1:9101 to 9104
        env.setdefault(f"{service.upper()}_OPS_ADDRESS", f"127.0.0.1:{9101 + OPS_ORDER.index(service)}")
        if identities:
            env.update(AMQP_URI=identities[service], WBS_BROKER_IDENTITIES="per-service")
        process = subprocess.Popen(
            [nameko, "run", "--config", str(ROOT / "services" / service / "config.yml"), f"{service}.service"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=_pump, args=(service, process.stdout), daemon=True).start()
        return process

    children = Children(SERVICES, start, lambda line: print(f"wbs run: {line}", file=sys.stderr, flush=True))

    stopping = threading.Event()

    def stop(*_):
        stopping.set()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    exit_code = 0
    try:
        demo = _wait_for_verification()
        print(banner(demo), flush=True)
    except Exception as exc:
        print(f"wbs run: verification did not come up: {exc}", file=sys.stderr)
        exit_code = 1
        stopping.set()

    while not stopping.is_set():
        children.tick()
        stopping.wait(0.5)

    print("stopping services...", flush=True)
    children.stop()
    print("stopped.", flush=True)
    return exit_code

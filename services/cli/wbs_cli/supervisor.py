"""`wbs run` (what `make run` calls): the four services in the foreground, embedded defaults.

A deliberately small supervisor instead of a Procfile runner: it has to migrate first, fail fast
when RabbitMQ is unreachable, seed the demo directory once verification answers, print the
sign-in, and stop every child cleanly on Ctrl-C (nameko finishes in-flight workers on SIGTERM).
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

from wbs_plumbing.config import database_url
from wbs_plumbing.db import alembic_dir_for
from wbs_plumbing.migrations import migrate

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("storage", "verification", "notification", "intake")


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
    """None if RabbitMQ answers the AMQP handshake, else a reason for a human."""
    parsed = urlparse(amqp_uri)
    host, port = parsed.hostname or "localhost", parsed.port or 5672
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        return f"cannot reach RabbitMQ at {host}:{port} ({exc.strerror or exc}). Start it (e.g. `rabbitmq-server -detached`) or set AMQP_URI."
    try:
        import pika
        pika.BlockingConnection(pika.URLParameters(amqp_uri)).close()
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
    for role in ("inspector", "supervisor"):
        account = demo.get(role) or {}
        lines += [f"  Demo {role}: username {account.get('username')}  password {account.get('password')}",
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

    nameko = str(Path(sys.executable).parent / "nameko")
    children = {}
    for service in SERVICES:
        process = subprocess.Popen(
            [nameko, "run", "--config", str(ROOT / "services" / service / "config.yml"), f"{service}.service"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        children[service] = process
        threading.Thread(target=_pump, args=(service, process.stdout), daemon=True).start()

    stopping = threading.Event()

    def stop(*_):
        stopping.set()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    try:
        demo = _wait_for_verification()
        print(banner(demo), flush=True)
    except Exception as exc:
        print(f"wbs run: verification did not come up: {exc}", file=sys.stderr)
        stopping.set()

    exit_code = 0
    while not stopping.is_set():
        for service, process in children.items():
            if process.poll() is not None:
                print(f"wbs run: {service} exited with {process.returncode}; stopping everything", file=sys.stderr)
                exit_code = 1
                stopping.set()
        stopping.wait(0.5)

    print("stopping services...", flush=True)
    for process in children.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in children.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    print("stopped.", flush=True)
    return exit_code

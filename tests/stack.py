"""All four services as real `nameko run` processes: the harness of the end-to-end tests and of
`make bench`.

Processes, not in-process containers, because that is how they run in production and because
the end-to-end tests must see what each process writes (its log) and kill one mid-message.
"""
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit
from pathlib import Path

import requests

from wbs_plumbing.config import with_process_env

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("storage", "verification", "notification", "intake")


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    def __init__(self, workdir: Path, amqp_uri: str, databases: dict, smtp: tuple | None = None,
                 s3: dict | None = None, s3_bucket: str | None = None, pow_bits: int = 0, extra_env=None,
                 identities: dict | None = None):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.tmp_dir = self.workdir / "tmp"
        self.log_dir = self.workdir / "logs"
        for folder in (self.data_dir, self.tmp_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.intake_port, self.console_port = free_port(), free_port()
        self.intake_url = f"http://127.0.0.1:{self.intake_port}"
        self.console_url = f"http://127.0.0.1:{self.console_port}"
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("WBS_", "SMTP_", "S3_", "EVIDENCE_", "INTAKE_", "STORAGE_",
                                      "VERIFICATION_", "NOTIFICATION_", "CONSOLE_"))}
        env.update({
            "AMQP_URI": amqp_uri,
            "WBS_ENV": "development",
            "WBS_DATA_DIR": str(self.data_dir),
            "TMPDIR": str(self.tmp_dir),
            "INTAKE_HTTP_ADDRESS": f"127.0.0.1:{self.intake_port}",
            "CONSOLE_HTTP_ADDRESS": f"127.0.0.1:{self.console_port}",
            "WBS_PUBLIC_URL": self.intake_url,
            "WBS_CONSOLE_URL": self.console_url,
            "WBS_POW_BITS": str(pow_bits),
            "PYTHONUNBUFFERED": "1",
        })
        env = with_process_env(env)  # as `wbs run` and the image start every service
        for service, url in databases.items():
            env[f"{service.upper()}_DATABASE_URL"] = url
        # each service's ops listener (healthz, readyz, metrics): self.ops[service] = "host:port"
        self.ops = {service: f"127.0.0.1:{free_port()}" for service in SERVICES}
        env.update({f"{service.upper()}_OPS_ADDRESS": address for service, address in self.ops.items()})
        if smtp:
            env["SMTP_HOST"], env["SMTP_PORT"] = smtp[0], str(smtp[1])
        if s3:
            env.update({"EVIDENCE_STORE": "s3", "S3_ENDPOINT": s3["endpoint"], "S3_ACCESS_KEY": s3["access_key"],
                        "S3_SECRET_KEY": s3["secret_key"], "S3_BUCKET": s3_bucket, "S3_SECURE": "false"})
        env.update(extra_env or {})
        self.env = env
        # {service or "admin": AMQP URI} of per-service broker users (wbs_cli.broker.create_identities)
        self.identities = identities or {}
        if "admin" in self.identities:
            self.env["AMQP_URI"] = self.identities["admin"]
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, services=SERVICES, timeout: float = 60):
        nameko = str(Path(sys.executable).parent / "nameko")
        for service in services:
            log = open(self.log_dir / f"{service}.log", "ab")
            self._logs[service] = log
            self.processes[service] = subprocess.Popen(
                ([sys.executable, "-m", "cProfile", "-o", f"{os.environ['WBS_CPROFILE_DIR']}/{service}.prof"]
                 if os.environ.get("WBS_CPROFILE_DIR") else []) +
                [nameko, "run", "--config", str(ROOT / "services" / service / "config.yml"), f"{service}.service"],
                cwd=ROOT, env=self.service_env(service), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.wait_ready(services, timeout)
        return self

    def service_env(self, service) -> dict:
        if service not in self.identities:
            return self.env
        user = urlsplit(self.identities[service]).username  # <prefix><service>
        return dict(self.env, AMQP_URI=self.identities[service], WBS_BROKER_IDENTITIES="per-service",
                    WBS_BROKER_USER_PREFIX=user[:-len(service)])

    def wait_ready(self, services, timeout):
        deadline = time.monotonic() + timeout
        checks = {"intake": lambda: requests.get(f"{self.intake_url}/api/v1/categories", timeout=2).ok,
                  "verification": lambda: self.rpc("verification", "list_units") is not None}
        for service in services:
            check = checks.get(service)
            while check is not None:
                self._fail_if_exited(service)
                try:
                    if check():
                        break
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{service} not ready in {timeout}s:\n{self.log(service)[-3000:]}")
                time.sleep(0.2)
        time.sleep(0.5)  # consumers of the services without a probe finish declaring their queues

    def _fail_if_exited(self, service):
        process = self.processes[service]
        if process.poll() is not None:
            raise RuntimeError(f"{service} exited with {process.returncode}:\n{self.log(service)[-5000:]}")

    def stop(self, services=None, kill=False, timeout: float = 20):
        for service in list(services or self.processes):
            process = self.processes.pop(service, None)
            if process is None:
                continue
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self._logs.pop(service).close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- helpers -----------------------------------------------------------------------

    def log(self, service) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> bytes:
        return b"".join(path.read_bytes() for path in self.log_dir.glob("*.log"))

    def cpu_seconds(self) -> dict:
        """CPU time (user + system) each service process has used so far, from /proc."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for service, process in self.processes.items():
            try:
                fields = open(f"/proc/{process.pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[service] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def env_database_urls(self) -> list[str]:
        return [value for key, value in self.env.items() if key.endswith("_DATABASE_URL")]

    def rpc(self, service, method, *args, timeout=10, **kwargs):
        from nameko.standalone.rpc import ClusterRpcProxy
        config = {"AMQP_URI": self.env["AMQP_URI"], "serializer": "msgpack", "ACCEPT": ["msgpack", "json"]}
        with ClusterRpcProxy(config, timeout=timeout) as cluster:
            return getattr(getattr(cluster, service), method)(*args, **kwargs)

    def wbs(self, *args) -> str:
        """Run the `wbs` command against this stack; return its stdout."""
        result = subprocess.run([str(Path(sys.executable).parent / "wbs"), *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"wbs {' '.join(args)} failed: {result.stderr}")
        return result.stdout

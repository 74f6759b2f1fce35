"""The floor: the same trip as a report with evidence, reduced to what reliability needs
(`bench/floor_services.py` says what it does and leaves out), run with the same clients at the
same concurrency. A report is done when the second service has committed its row. Returns the
same figures as `bench/pipeline.py` (no counts: they are fixed by construction, 1 RPC, 3
confirmed publishes, 3 transactions, 4 SQL statements).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy

from bench.environment import Throwaway
from bench.floor_services import SCHEMA
from bench.pipeline import evidence_of, multipart
from bench.timing import Refused, closed_loop, summary_ms
from tests.stack import ROOT, free_port
from wbs_plumbing.config import with_process_env

PROCESSES = {"floor_front": "FloorFront", "floor_vault": "FloorVault", "floor_sink": "FloorSink"}
DATABASE_OF = {"floor_front": "vault", "floor_vault": "vault", "floor_sink": "sink"}


def run(concurrency: int, reports: int, evidence_bytes: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="wbs-bench-floor-"))
    with Throwaway("floor", list(SCHEMA)) as env:
        for name, statements in SCHEMA.items():
            engine = sqlalchemy.create_engine(env.databases[name], poolclass=sqlalchemy.pool.NullPool)
            with engine.begin() as connection:
                for statement in statements:
                    connection.exec_driver_sql(statement)
            engine.dispose()
        port = free_port()
        processes = {}
        try:
            for service, cls in PROCESSES.items():
                config = workdir / f"{service}.yml"
                config.write_text(
                    f"AMQP_URI: {env.amqp_uri}\nWEB_SERVER_ADDRESS: 127.0.0.1:{port}\nserializer: msgpack\n"
                    f"ACCEPT: [msgpack, json]\nmax_workers: 10\n"
                    f"FLOOR_DATABASE_URL: {env.databases[DATABASE_OF[service]]}\n"
                    f"FLOOR_DATA_DIR: {workdir / 'objects'}\n")
                processes[service] = subprocess.Popen(
                    [str(Path(sys.executable).parent / "nameko"), "run", "--config", str(config),
                     f"bench.floor_services:{cls}"], cwd=ROOT, start_new_session=True,
                    stdout=open(workdir / f"{service}.log", "ab"), stderr=subprocess.STDOUT,
                    env=with_process_env(dict(os.environ, PYTHONPATH=str(ROOT))))  # the services' event loop too
            return _measure(env, processes, f"http://127.0.0.1:{port}/reports", concurrency, reports,
                            evidence_of(evidence_bytes), workdir)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
            shutil.rmtree(workdir, ignore_errors=True)


def _done(sink) -> dict:
    with sink.connect() as connection:
        return {r: t.timestamp() for r, t in connection.exec_driver_sql("SELECT report_id, created_at FROM cases")}


def _measure(env: Throwaway, processes: dict, url: str, concurrency, reports, evidence, workdir) -> dict:
    # a connection the CPU count leaves out (it counts the backends of the services only)
    sink = sqlalchemy.create_engine(env.databases["sink"], poolclass=sqlalchemy.pool.NullPool,
                                    connect_args={"application_name": "wbs-bench"})

    def submit(session):
        response = session.post(url, files=multipart(evidence), timeout=60)
        if response.status_code != 201:
            raise Refused(response.status_code)
        return response.json()["report_id"]

    deadline = time.monotonic() + 60  # ready: one report went all the way through
    while True:
        for service, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited: {(workdir / f'{service}.log').read_text()[-3000:]}")
        try:
            submit(requests.Session())
            break
        except (Refused, requests.RequestException):
            if time.monotonic() > deadline:
                raise RuntimeError("the floor did not start: " + (workdir / "floor_front.log").read_text()[-3000:])
            time.sleep(0.3)
    while len(_done(sink)) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)

    sampler = env.cpu_sampler(processes).start()
    wall_began = time.time()
    load = closed_loop(concurrency, reports, submit)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = _done(sink)
        if all(r in done for r in load.accepted):
            break
        time.sleep(0.05)
    cpu = sampler.stop()
    sink.dispose()

    def wall(report_id):  # when the client started submitting it, on the wall clock
        return wall_began + (load.accepted[report_id] - load.began)

    finished = {r: done[r] for r in load.accepted if r in done}
    accepted = len(load.latencies)
    return {
        "accepted": accepted, "failed": len(load.failures), "failures": sorted(set(load.failures))[:5],
        "completed": len(finished), "completed_what": "the second service's row committed",
        "submit_per_s": load.throughput(),
        "end_to_end_per_s": len(finished) / max(1e-9, max(finished.values(), default=wall_began) - wall_began),
        "submit_latency": summary_ms(load.latencies),
        "end_to_end_latency": summary_ms([finished[r] - wall(r) for r in finished]),
        "cpu_ms_per_report": {group: seconds * 1000 / max(1, accepted) for group, seconds in cpu.items()},
    }

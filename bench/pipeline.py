"""The real system: reports with evidence through all four services, as `make bench` runs it.

Starts the four services as real processes (tests/stack.py: like `make run`, on a throw-away
RabbitMQ vhost, data dir and PostgreSQL databases), an SMTP sink on loopback, and N client
threads that submit reports back to back. A report is done when the assigned inspector's email
is accepted by SMTP. Returns throughput, submit and submit-to-email latency, CPU per report of
every process (services, RabbitMQ, PostgreSQL backends) and the counted work per report.

The intake throttle (`INTAKE_THROTTLE_PER_MINUTE`) is off here: it is a capacity setting an
operator sizes from what this benchmark measures, and a benchmark refused with 429 measures the
throttle, not the system.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from bench import counts
from bench.environment import Throwaway
from bench.timing import Refused, closed_loop, summary_ms
from tests.fixtures import SmtpSink
from tests.stack import SERVICES, Stack
from verification.cases import case_id_for

REPORT = json.dumps({
    "unit": "bench-dit", "category": "procurement", "title": "Bench",
    "description": "Pengadaan diarahkan ke perusahaan keluarga.",
    "parties": [{"name": "Pejabat X", "position": "PPK"}],
    "reporter": {"relationship": "employee", "involved": False}, "good_faith": True})


def evidence_of(size: int) -> bytes:
    return b"%PDF-1.4\n" + bytes(size - 9)


def multipart(evidence: bytes) -> list:
    return [("report", (None, REPORT, "application/json")),
            ("evidence", ("bukti.pdf", io.BytesIO(evidence), "application/pdf"))]


class TimedSink(SmtpSink):
    """An SMTP sink that notes when the email about each case arrived."""

    def __init__(self):
        super().__init__()
        self.arrivals = {}

    async def handle_DATA(self, server, session, envelope):
        match = re.search(rb"/cases/([0-9a-f-]{36})", envelope.content)
        if match:
            self.arrivals[match.group(1).decode()] = time.monotonic()
        return "250 OK"


def run(concurrency: int, reports: int, evidence_bytes: int, store: str = "file", queue_type: str = "quorum") -> dict:
    sink = TimedSink()
    sink.start()
    moto = s3 = bucket = None
    if store == "s3":
        from minio import Minio
        from moto.server import ThreadedMotoServer
        from tests.fixtures import free_port
        port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        s3 = {"endpoint": f"127.0.0.1:{port}", "access_key": "bench", "secret_key": "bench-secret", "secure": False}
        bucket = "wbs-bench"
        Minio(s3["endpoint"], access_key="bench", secret_key="bench-secret", secure=False).make_bucket(bucket)
    try:
        with Throwaway("real", list(SERVICES)) as env:
            workdir = Path(tempfile.mkdtemp(prefix="wbs-bench-"))
            stack = Stack(workdir, env.amqp_uri, env.databases,
                          smtp=(sink.host, sink.port), s3=s3, s3_bucket=bucket,
                          extra_env={"INTAKE_THROTTLE_PER_MINUTE": "0", "WBS_QUEUE_TYPE": queue_type})
            try:
                stack.start()
                return _measure(stack, env, sink, concurrency, reports, evidence_bytes)
            finally:
                stack.stop()
                shutil.rmtree(workdir, ignore_errors=True)  # the run's evidence, keys and logs
    finally:
        sink.stop()
        if moto:
            moto.stop()


def _measure(stack: Stack, env: Throwaway, sink: TimedSink, concurrency, reports, evidence_bytes) -> dict:
    stack.wbs("unit", "add", "bench-itjen", "--name", "Inspektorat Bench", "--inspectorate")
    stack.wbs("unit", "add", "bench-dit", "--name", "Direktorat Bench", "--parent", "bench-itjen")
    for i in range(3):
        stack.wbs("inspector", "add", f"bench-inspektur-{i}", "--email", f"b{i}@example.go.id", "--unit", "bench-itjen")
    evidence = evidence_of(evidence_bytes)

    def submit(session):
        response = session.post(f"{stack.intake_url}/api/v1/reports", files=multipart(evidence), timeout=60)
        if response.status_code != 201:
            raise Refused(response.status_code)
        return response.json()["report_id"]

    counted_before = counts.scrape(stack.ops)
    sampler = env.cpu_sampler(stack.processes).start()
    load = closed_loop(concurrency, reports, submit)

    # the case a report opens has an id derived from the report's, so nothing needs to listen
    # on the broker for it (a listener would add its own messages to RabbitMQ's CPU)
    case_of = {report_id: case_id_for(report_id) for report_id in load.accepted}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(case in sink.arrivals for case in case_of.values()):
        time.sleep(0.05)
    cpu = sampler.stop()
    counted_after = counts.scrape(stack.ops)

    done = {r: sink.arrivals[case_of[r]] for r in load.accepted if case_of.get(r) in sink.arrivals}
    last = max(done.values(), default=load.began)
    accepted = len(load.latencies)
    return {
        "accepted": accepted, "failed": len(load.failures), "failures": sorted(set(load.failures))[:5],
        "completed": len(done), "completed_what": "email to the assigned inspector accepted by SMTP",
        "submit_per_s": load.throughput(),
        "end_to_end_per_s": len(done) / max(1e-9, last - load.began),
        "submit_latency": summary_ms(load.latencies),
        "end_to_end_latency": summary_ms([done[r] - load.accepted[r] for r in done]),
        "cpu_ms_per_report": {group: seconds * 1000 / max(1, accepted) for group, seconds in cpu.items()},
        "counts_per_report": counts.per_report(counted_before, counted_after, accepted),
    }

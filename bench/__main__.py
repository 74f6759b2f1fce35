"""`make bench`: reports with 1 MiB evidence through the whole system, at a chosen concurrency.

Starts all four services as real processes (like `make run`, but on a throw-away RabbitMQ vhost,
data dir and databases), an SMTP sink on loopback, and N client threads that each submit reports
back to back. Prints throughput, the p50/p99 of submit latency (HTTP 201) and of
submit-to-email latency (the inspector's email accepted by SMTP).

    make bench BENCH_ARGS="--concurrency 4 --reports 400 --store file"
    make bench BENCH_ARGS="vault"      # the evidence vault: MB/s and 1 GiB memory (bench/vault.py)
    make bench BENCH_ARGS="caselist"   # the case list with 100,000 cases (bench/caselist.py)
"""
import argparse
import io
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pika
import requests
import sqlalchemy

from tests.fixtures import PG_ADMIN_URL, SmtpSink, rabbitmqctl
from tests.stack import Stack
from wbs_plumbing.logfilters import configure_command_logging


class TimedSink(SmtpSink):
    def __init__(self):
        super().__init__()
        self.arrivals = {}

    async def handle_DATA(self, server, session, envelope):
        match = re.search(rb"/cases/([0-9a-f-]{36})", envelope.content)
        if match:
            self.arrivals[match.group(1).decode()] = time.monotonic()
        return "250 OK"


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    configure_command_logging("bench")
    if argv[:1] == ["vault"]:  # the evidence vault: throughput and memory (bench/vault.py)
        from bench.vault import main as vault_main
        return vault_main(argv[1:])
    if argv[:1] == ["caselist"]:  # the console's case list over 100,000 cases (bench/caselist.py)
        from bench.caselist import main as caselist_main
        return caselist_main(argv[1:])
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--evidence-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--store", choices=("file", "s3"), default="file")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    vhost = f"wbs-bench-{run}"
    rabbitmqctl("eval", f'rabbit_vhost:add(<<"{vhost}">>, <<"wbs-bench">>), '
                        f'rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"{vhost}">>, '
                        '<<".*">>, <<".*">>, <<".*">>, <<"wbs-bench">>).')
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    databases = {}
    if args.database == "postgres":
        with admin.connect() as connection:
            for service in ("intake", "storage", "verification", "notification"):
                name = f"wbs_bench_{run}_{service}"
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
                databases[service] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    sink = TimedSink()
    sink.start()
    s3 = bucket = moto = None
    if args.store == "s3":
        from minio import Minio
        from moto.server import ThreadedMotoServer
        from tests.fixtures import free_port
        port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        s3 = {"endpoint": f"127.0.0.1:{port}", "access_key": "bench", "secret_key": "bench-secret", "secure": False}
        bucket = "wbs-bench"
        Minio(s3["endpoint"], access_key="bench", secret_key="bench-secret", secure=False).make_bucket(bucket)

    workdir = Path(tempfile.mkdtemp(prefix="wbs-bench-"))
    stack = Stack(workdir, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", databases,
                  smtp=(sink.host, sink.port), s3=s3, s3_bucket=bucket)
    try:
        stack.start()
        stack.wbs("unit", "add", "bench-itjen", "--name", "Inspektorat Bench", "--inspectorate")
        stack.wbs("unit", "add", "bench-dit", "--name", "Direktorat Bench", "--parent", "bench-itjen")
        for i in range(3):
            stack.wbs("inspector", "add", f"bench-inspektur-{i}", "--email", f"b{i}@example.go.id", "--unit", "bench-itjen")

        connection = pika.BlockingConnection(pika.URLParameters(stack.env["AMQP_URI"]))
        channel = connection.channel()
        opened = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(opened, "verification.events", "case_opened")

        evidence = b"%PDF-1.4\n" + bytes(args.evidence_bytes - 9)
        report = json.dumps({
            "unit": "bench-dit", "category": "procurement", "title": "Bench",
            "description": "Pengadaan diarahkan ke perusahaan keluarga.",
            "parties": [{"name": "Pejabat X", "position": "PPK"}],
            "reporter": {"relationship": "employee", "involved": False}, "good_faith": True})
        submitted, latencies, failures = {}, [], []
        lock = threading.Lock()
        counter = iter(range(args.reports))

        def client():
            session = requests.Session()
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                started = time.monotonic()
                try:
                    response = session.post(f"{stack.intake_url}/api/v1/reports", files=[
                        ("report", (None, report, "application/json")),
                        ("evidence", ("bukti.pdf", io.BytesIO(evidence), "application/pdf"))], timeout=60)
                except requests.RequestException as exc:
                    failures.append(type(exc).__name__)
                    continue
                took = time.monotonic() - started
                with lock:
                    if response.status_code == 201:
                        latencies.append(took)
                        submitted[response.json()["report_id"]] = started
                    else:
                        failures.append(response.status_code)

        cpu_before = stack.cpu_seconds()
        began = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        submit_seconds = time.monotonic() - began

        case_of = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            method, _props, body = channel.basic_get(opened, auto_ack=True)
            if method:
                event = json.loads(body)
                case_of[event["report_id"]] = event["case_id"]
            elif len(case_of) >= len(submitted) and all(case_of[r] in sink.arrivals for r in submitted):
                break
            else:
                time.sleep(0.05)
        cpu_after = stack.cpu_seconds()
        emailed = [sink.arrivals[case_of[r]] - t for r, t in submitted.items() if case_of.get(r) in sink.arrivals]
        last_email = max((sink.arrivals[case_of[r]] for r in submitted if case_of.get(r) in sink.arrivals), default=began)
        connection.close()

        print(f"\nWBS benchmark: {args.reports} reports x {args.evidence_bytes / 2**20:.1f} MiB evidence, "
              f"concurrency {args.concurrency}, store={args.store}, database={args.database}")
        print(f"  accepted (201):          {len(latencies)}   failed: {len(failures)} {sorted(set(map(str, failures)))[:5]}")
        print(f"  submit throughput:       {len(latencies) / submit_seconds:.1f} reports/s")
        print(f"  end-to-end throughput:   {len(emailed) / max(1e-9, last_email - began):.1f} reports/s (201 -> email accepted)")
        print(f"  submit latency:          p50 {percentile(latencies, 50) * 1000:.0f} ms   p99 {percentile(latencies, 99) * 1000:.0f} ms")
        print(f"  submit-to-email latency: p50 {percentile(emailed, 50) * 1000:.0f} ms   p99 {percentile(emailed, 99) * 1000:.0f} ms"
              f"   ({len(emailed)}/{len(latencies)} emails)")
        per_report = {s: (cpu_after[s] - cpu_before[s]) * 1000 / max(1, len(latencies)) for s in cpu_after}
        print("  server CPU per report:   " + "  ".join(f"{s} {ms:.1f} ms" for s, ms in per_report.items())
              + f"  = {sum(per_report.values()):.1f} ms")
        return 0 if not failures and len(emailed) == len(latencies) else 1
    finally:
        stack.stop()
        sink.stop()
        if moto:
            moto.stop()
        with admin.connect() as connection:
            for url in databases.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench vault` (or `make bench BENCH_ARGS=vault`): the evidence vault's throughput and
memory, measured in one run.

Throughput, for 1 MiB, 64 MiB and 1 GiB files and both stores (the folder store, and S3 through
the minio SDK against moto's S3 server run as a separate process on loopback):

* raw AES-GCM: AES-256-GCM over 64 KiB segments, nothing else;
* raw put: 1 MiB chunks of (already random) bytes written through the store's writer;
* vault: the storage domain's upload path (begin, 1 MiB chunks: encrypt, SHA-256, write; finish:
  seal the last segment, commit the evidence row and its outbox event), on a throwaway
  PostgreSQL database, as storage runs in production;
* ratio = vault / min(raw AES-GCM, raw put); the target is >= 0.5.

Memory (``--memory``, on by default): all four services as real processes (tests/stack.py), one
evidence file streamed through intake's HTTP API (``POST /api/v1/reports``, multipart), and the
resident memory of every service process sampled from /proc during the upload; prints each
process's peak growth over its resident memory before the upload (target < 64 MiB).

    make bench BENCH_ARGS="vault"                     # 1 MiB, 64 MiB, 1 GiB; memory with 1 GiB
    make bench BENCH_ARGS="vault --sizes 1,64 --memory-mib 256"
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def raw_crypto(size: int, chunk: bytes) -> float:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from storage.crypto import SEGMENT_SIZE

    aead = AESGCM(os.urandom(32))
    nonce_prefix = os.urandom(7)
    view = memoryview(chunk)

    def run():
        counter = 0
        for _ in range(max(1, size // MiB)):
            for offset in range(0, len(view), SEGMENT_SIZE):
                aead.encrypt(nonce_prefix + counter.to_bytes(5, "big"),
                             view[offset:offset + SEGMENT_SIZE], b"ad")
                counter += 1
    return size / _timed(run)


def raw_put(store, size: int, chunk: bytes) -> float:
    from storage.objectstore import new_object_key

    key = new_object_key()

    def run():
        writer = store.open_writer(key)
        for _ in range(max(1, size // MiB)):
            writer.write(chunk)
        writer.close()
    seconds = _timed(run)
    store.delete(key)
    return size / seconds


def vault_put(store, tx, keyring, size: int, chunk: bytes) -> float:
    from storage import domain
    from storage.models import Evidence

    uploads = domain.Uploads()
    report_id = str(uuid.uuid4())
    result = {}

    def run():
        if size <= MiB:  # what a report with a file of one chunk takes: store_report, one call
            (stored,) = domain.store_report(tx, keyring, store, report_id, b"{}", [
                {"filename": b"bench.bin", "media_type": b"application/octet-stream", "data": chunk[:size]}])
            result.update(stored)
            return
        upload_id = domain.begin_upload(tx, keyring, store, uploads, report_id, "bench.bin",
                                        "application/octet-stream")
        for _ in range(max(1, size // MiB)):
            domain.append_upload(uploads, upload_id, chunk)
        result.update(domain.finish_upload(tx, uploads, upload_id))
    seconds = _timed(run)
    with tx() as session:
        store.delete(session.get(Evidence, result["evidence_id"]).object_key)
    return size / seconds


def start_moto():
    from tests.stack import free_port

    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    import requests
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.2)
    return process, {"endpoint": f"127.0.0.1:{port}", "access_key": "bench",
                     "secret_key": "bench-secret-key"}


def throughput(sizes_mib, repeats: int) -> list[dict]:
    from functools import partial

    from wbs_plumbing.db import make_engine, session_scope
    from storage import crypto
    from storage.models import Base
    from storage.objectstore import FileStore, S3Store

    workdir = Path(tempfile.mkdtemp(prefix="wbs-bench-vault-"))
    admin, database_url = create_database(f"wbs_bench_vault_{uuid.uuid4().hex[:8]}")
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    tx = partial(session_scope, engine)
    keyring = crypto.KeyRing.from_document(crypto.new_key_document())
    chunk = os.urandom(MiB)
    moto, s3 = start_moto()
    rows = []
    try:
        stores = {"file": FileStore(str(workdir / "evidence"))}
        s3_store = S3Store(s3["endpoint"], s3["access_key"], s3["secret_key"], "wbs-bench-vault",
                           secure=False)
        s3_store.ensure_bucket()
        stores["s3 (moto)"] = s3_store
        for size_mib in sizes_mib:
            size = size_mib * MiB
            crypto_rate = max(raw_crypto(size, chunk) for _ in range(repeats))
            for name, store in stores.items():
                put = max(raw_put(store, size, chunk) for _ in range(repeats))
                vault = max(vault_put(store, tx, keyring, size, chunk) for _ in range(repeats))
                rows.append({"size_mib": size_mib, "store": name, "crypto": crypto_rate / MiB,
                             "put": put / MiB, "vault": vault / MiB,
                             "ratio": vault / min(crypto_rate, put)})
                print(f"  {size_mib:>5} MiB  {name:<10} raw AES-GCM {crypto_rate / MiB:8.0f} MB/s   "
                      f"raw put {put / MiB:7.0f} MB/s   vault {vault / MiB:7.0f} MB/s   "
                      f"ratio {rows[-1]['ratio']:.2f}", flush=True)
    finally:
        os.killpg(moto.pid, 15)
        moto.wait()
        engine.dispose()
        drop_databases(admin, [database_url])
    return rows


def create_database(name: str):
    """A new PostgreSQL database on the test server; returns (admin engine, its URL)."""
    import sqlalchemy

    from tests.fixtures import PG_ADMIN_URL

    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                                     poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return admin, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_databases(admin, urls) -> None:
    with admin.connect() as connection:
        for url in urls:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tree_pids(root_pid: int) -> list[int]:
    """The process and its children (nameko run may be the parent of the service process)."""
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return pids


class ZeroStream:
    """A file-like body of ``size`` bytes made on the fly: the client never holds the file."""

    def __init__(self, head: bytes, size: int, tail: bytes):
        self._parts = [head]
        self._left = size
        self._tail = tail
        self._block = os.urandom(MiB)
        self.len = len(head) + size + len(tail)

    def read(self, n=-1):
        if self._parts:
            return self._parts.pop()
        if self._left > 0:
            take = min(self._left, MiB if n is None or n < 0 else min(n, MiB))
            self._left -= take
            return self._block[:take]
        tail, self._tail = self._tail, b""
        return tail


def memory(size_mib: int, store: str) -> dict:
    """Stream one ``size_mib`` file through intake's HTTP API; peak RSS growth per process."""
    import pika  # noqa: F401 -- the stack's readiness probes need the broker reachable
    import requests

    from tests.fixtures import rabbitmqctl
    from tests.stack import Stack

    run = uuid.uuid4().hex[:8]
    vhost = f"wbs-bench-{run}"
    rabbitmqctl("eval", f'rabbit_vhost:add(<<"{vhost}">>, <<"wbs-bench">>), '
                        f'rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"{vhost}">>, '
                        '<<".*">>, <<".*">>, <<".*">>, <<"wbs-bench">>).')
    databases = {}
    for service in ("intake", "storage", "verification", "notification"):
        admin, databases[service] = create_database(f"wbs_bench_{run}_{service}")
    moto = s3 = None
    if store == "s3":
        from minio import Minio
        moto, s3 = start_moto()
        Minio(s3["endpoint"], access_key=s3["access_key"], secret_key=s3["secret_key"],
              secure=False).make_bucket("wbs-bench-memory")
    stack = Stack(Path(tempfile.mkdtemp(prefix="wbs-bench-memory-")),
                  f"amqp://guest:guest@127.0.0.1:5672/{vhost}", databases, s3=s3,
                  s3_bucket="wbs-bench-memory" if s3 else None,
                  extra_env={"INTAKE_MAX_FILE_BYTES": str(size_mib * MiB + MiB),
                             "INTAKE_MAX_REQUEST_BYTES": str(size_mib * MiB + 4 * MiB)})
    try:
        stack.start()
        stack.wbs("unit", "add", "bench-itjen", "--name", "Inspektorat Bench", "--inspectorate")
        stack.wbs("unit", "add", "bench-dit", "--name", "Direktorat Bench", "--parent", "bench-itjen")
        stack.wbs("inspector", "add", "bench-inspektur", "--email", "b@example.go.id", "--unit",
                  "bench-itjen")
        time.sleep(2)  # let every process settle before the baseline
        pids = {service: _tree_pids(process.pid) for service, process in stack.processes.items()}
        baseline = {s: {p: _rss_kib(p) for p in ps} for s, ps in pids.items()}
        peak = {s: dict(b) for s, b in baseline.items()}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for service, ps in pids.items():
                    for pid in ps:
                        try:
                            peak[service][pid] = max(peak[service][pid], _rss_kib(pid))
                        except OSError:
                            pass
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        boundary = uuid.uuid4().hex
        report = json.dumps({
            "unit": "bench-dit", "category": "procurement", "title": "Bench",
            "description": "Rekaman rapat pengadaan.", "parties": [{"name": "Pejabat X"}],
            "reporter": {"relationship": "employee", "involved": False}, "good_faith": True})
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"report\"\r\n"
                f"Content-Type: application/json\r\n\r\n{report}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; "
                f"filename=\"rekaman.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
        body = ZeroStream(head, size_mib * MiB, f"\r\n--{boundary}--\r\n".encode())
        started = time.monotonic()
        response = requests.post(f"{stack.intake_url}/api/v1/reports", data=body, timeout=3600,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                          "Content-Length": str(body.len)})
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        growth = {s: max((peak[s][p] - baseline[s][p]) for p in peak[s]) / 1024 for s in peak}
        return {"status": response.status_code, "seconds": seconds, "growth_mib": growth,
                "baseline_mib": {s: sum(b.values()) / 1024 for s, b in baseline.items()},
                "answer": response.text[:200]}
    finally:
        stack.stop()
        if moto is not None:
            os.killpg(moto.pid, 15)
            moto.wait()
        drop_databases(admin, databases.values())
        rabbitmqctl("delete_vhost", vhost)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench vault")
    parser.add_argument("--sizes", default="1,64,1024", help="file sizes in MiB, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each figure")
    parser.add_argument("--memory-mib", type=int, default=1024,
                        help="size of the upload streamed through the stack (0 = skip)")
    parser.add_argument("--memory-store", choices=("file", "s3"), default="file")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    if not args.skip_throughput:
        print("\nVault throughput (MB/s = MiB/s; ratio = vault / min(raw AES-GCM, raw put), target >= 0.5)")
        rows = throughput([int(s) for s in args.sizes.split(",")], args.repeats)
        ok = all(row["ratio"] >= 0.5 for row in rows)
    if args.memory_mib:
        print(f"\nMemory: one {args.memory_mib} MiB evidence file through intake's HTTP API "
              f"(store={args.memory_store}); peak RSS growth per process (target < 64 MiB)")
        result = memory(args.memory_mib, args.memory_store)
        print(f"  HTTP {result['status']} in {result['seconds']:.1f} s "
              f"({args.memory_mib / max(result['seconds'], 1e-9):.0f} MB/s)")
        for service, growth in result["growth_mib"].items():
            print(f"  {service:<13} baseline {result['baseline_mib'][service]:6.1f} MiB   "
                  f"peak growth {growth:6.1f} MiB")
        ok = ok and result["status"] == 201 and all(g < 64 for g in result["growth_mib"].values())
        if result["status"] != 201:
            print(f"  answer: {result['answer']}")
    return 0 if ok else 1

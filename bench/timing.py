"""What every benchmark measures the same way: percentiles, a closed-loop load of HTTP clients,
and the CPU time of processes read from /proc (the services, RabbitMQ and PostgreSQL backends).
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values, q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary_ms(seconds: list[float]) -> dict:
    """p50, p95, p99 and median in milliseconds of a list of durations in seconds."""
    return {"p50_ms": percentile(seconds, 50) * 1000, "p95_ms": percentile(seconds, 95) * 1000,
            "p99_ms": percentile(seconds, 99) * 1000,
            "median_ms": (statistics.median(seconds) * 1000) if seconds else float("nan")}


@dataclass
class LoadRun:
    """What a closed-loop load produced: per accepted request its start time and latency."""
    began: float = 0.0
    seconds: float = 0.0
    accepted: dict = field(default_factory=dict)  # key -> monotonic start
    latencies: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def closed_loop(concurrency: int, total: int, submit: Callable) -> LoadRun:
    """`concurrency` client threads send `total` requests back to back, each with its own
    requests.Session. `submit(session)` returns the accepted request's key, or raises
    `Refused(reason)`; transport errors count as failures too."""
    import requests

    run = LoadRun()
    lock = threading.Lock()
    remaining = iter(range(total))

    def client():
        session = requests.Session()
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            started = time.monotonic()
            try:
                key = submit(session)
            except (Refused, requests.RequestException) as exc:
                with lock:
                    run.failures.append(str(exc) if isinstance(exc, Refused) else type(exc).__name__)
                continue
            took = time.monotonic() - started
            with lock:
                run.latencies.append(took)
                run.accepted[key] = started

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    run.began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.monotonic() - run.began
    return run


class Refused(Exception):
    """A request the server answered with something other than success (the status code)."""


# -- CPU from /proc ---------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """utime + stime of process `pid` so far, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def pids_named(command: str, argument: str = "") -> list[int]:
    """Pids whose /proc/<pid>/comm is `command` and whose command line contains `argument`
    (RabbitMQ: beam.smp with ``rabbit`` booted, not the short-lived rabbitmqctl VMs)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() != command:
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if argument.encode() in cmdline.read().replace(b"\0", b" "):
                        found.append(int(entry))
            except OSError:
                continue
    return found


class CpuSampler:
    """CPU used during a window by groups of processes, sampled from /proc twice a second so
    that a process that exits in the window (a PostgreSQL backend) still counts up to its last
    sample. `groups()` returns {group: [pid, ...]}, called at each sample (backends come and go);
    a pid first seen inside the window counts from zero."""

    def __init__(self, groups: Callable[[], dict[str, Iterable[int]]], interval: float = 0.5):
        self.groups = groups
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._group_of: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = None

    def _sample(self, initial: bool = False):
        for group, pids in self.groups().items():
            for pid in pids:
                used = cpu_seconds(pid)
                if used is None:
                    continue
                self._group_of[pid] = group
                self._first.setdefault(pid, used if initial else 0.0)
                self._last[pid] = used

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "CpuSampler":
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """End the window; return CPU seconds used in it by group."""
        self._stop.set()
        self._thread.join()
        self._sample()
        used: dict[str, float] = {}
        for pid, last in self._last.items():
            group = self._group_of[pid]
            used[group] = used.get(group, 0.0) + max(0.0, last - self._first[pid])
        return used


def postgres_backends(admin_engine, databases: list[str]) -> Callable[[], list[int]]:
    """A function listing the pids of the PostgreSQL backends connected to `databases`, except
    the benchmark's own (application_name ``wbs-bench``)."""
    from sqlalchemy import text

    query = text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names) "
                 "AND application_name IS DISTINCT FROM 'wbs-bench'")

    def pids() -> list[int]:
        with admin_engine.connect() as connection:
            return [row[0] for row in connection.execute(query, {"names": databases})]
    return pids

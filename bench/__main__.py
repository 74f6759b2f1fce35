"""`make bench`: reports with 1 MiB evidence through the whole system, then the floor, at the
same concurrency, and the ratio between them.

The real system (bench/pipeline.py): the four services as processes on a throw-away vhost and
databases; a report is done when the inspector's email is accepted. The floor (bench/floor.py):
the least a reliable pipeline does with the same parts. For both: reports/s, p50/p99 of submit
latency, CPU per report of every process including RabbitMQ and the PostgreSQL backends (from
/proc); for the real one the RPCs, confirmed publishes, transactions and SQL statements per
report, counted by the services. Results are written to bench-output/<UTC time>.json.

    make bench BENCH_ARGS="--concurrency 4 --reports 200"
    make bench BENCH_ARGS="--no-floor"  # the real system only
    make bench BENCH_ARGS="vault"      # the evidence vault: MB/s and 1 GiB memory (bench/vault.py)
    make bench BENCH_ARGS="caselist"   # the case list with 100,000 cases (bench/caselist.py)
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from wbs_plumbing.logfilters import configure_command_logging

OUTPUT = Path(__file__).resolve().parents[1] / "bench-output"


def show(title: str, result: dict) -> None:
    submit, e2e = result["submit_latency"], result["end_to_end_latency"]
    print(f"{title}")
    print(f"  accepted {result['accepted']}, failed {result['failed']} {result['failures']}, "
          f"completed {result['completed']} ({result['completed_what']})")
    print(f"  throughput:       submit {result['submit_per_s']:.1f} reports/s, end to end "
          f"{result['end_to_end_per_s']:.1f} reports/s")
    print(f"  submit latency:   p50 {submit['p50_ms']:.0f} ms   p99 {submit['p99_ms']:.0f} ms")
    print(f"  end-to-end:       p50 {e2e['p50_ms']:.0f} ms   p99 {e2e['p99_ms']:.0f} ms")
    cpu = result["cpu_ms_per_report"]
    print("  CPU per report:   " + "  ".join(f"{g} {ms:.1f}" for g, ms in sorted(cpu.items(), key=lambda i: -i[1]))
          + f"  = {sum(cpu.values()):.1f} ms")
    counted = result.get("counts_per_report")
    if counted:
        print(f"  per report:       {counted['rpcs']:.2f} RPCs, {counted['confirmed_publishes']:.2f} confirmed publishes "
              f"({counted['events_published']:.2f} events), {counted['transactions']:.2f} transactions "
              f"({counted['rollbacks']:.2f} rolled back), {counted['sql_statements']:.2f} SQL statements")
        for service, c in counted["by_service"].items():
            print(f"    {service:<13} {c['rpcs_served']:5.2f} RPCs served  {c['confirmed_publishes']:5.2f} confirmed  "
                  f"{c['transactions']:5.2f} tx  {c['sql_statements']:5.2f} SQL")
        print("    RPCs: " + ", ".join(f"{m} {n:.2f}" for m, n in counted["rpc_methods"].items()))


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
    parser.add_argument("--queue-type", choices=("quorum", "classic"), default="quorum",
                        help="the services' queues (WBS_QUEUE_TYPE); the floor uses nameko's classic queues")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor")
    parser.add_argument("--label", default="", help="a word kept in the JSON (e.g. before, after)")
    args = parser.parse_args(argv)

    from bench import floor, pipeline

    conditions = {"reports": args.reports, "concurrency": args.concurrency, "evidence_bytes": args.evidence_bytes,
                  "store": args.store, "database": "postgres", "queue_type": args.queue_type, "cpus": os.cpu_count(),
                  "load_average_before": os.getloadavg(), "label": args.label,
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"WBS benchmark: {args.reports} reports x {args.evidence_bytes / 2**20:.1f} MiB evidence, "
          f"concurrency {args.concurrency}, store={args.store}, {args.queue_type} queues, PostgreSQL, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} (RabbitMQ's CPU is the whole broker's: other load on it counts)")
    results = {"conditions": conditions, "real": pipeline.run(args.concurrency, args.reports, args.evidence_bytes, args.store,
                                                               args.queue_type)}
    show("\nreal system (201 -> case assigned -> email accepted)", results["real"])
    ok = results["real"]["failed"] == 0 and results["real"]["completed"] == results["real"]["accepted"]
    if not args.no_floor:
        results["floor"] = floor.run(args.concurrency, args.reports, args.evidence_bytes)
        show("\nfloor (HTTP 1 MiB -> RPC -> AES-GCM -> file+fsync -> row+outbox -> confirmed event -> row)",
             results["floor"])
        real, bare = results["real"], results["floor"]
        results["ratio"] = {
            "end_to_end_per_s": real["end_to_end_per_s"] / max(1e-9, bare["end_to_end_per_s"]),
            "submit_per_s": real["submit_per_s"] / max(1e-9, bare["submit_per_s"]),
            "cpu_ms_per_report": sum(real["cpu_ms_per_report"].values()) / max(1e-9, sum(bare["cpu_ms_per_report"].values())),
        }
        print(f"\nreal / floor: end-to-end throughput {results['ratio']['end_to_end_per_s']:.2f} (target >= 0.4), "
              f"submit throughput {results['ratio']['submit_per_s']:.2f}, CPU per report {results['ratio']['cpu_ms_per_report']:.1f}x")
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + (f"-{args.label}" if args.label else "") + ".json")
    path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"results: {path}")
    return 0 if ok else 1


def run_as_the_services_run() -> None:
    """Start again with the services' process environment (`wbs_plumbing.config.PROCESS_ENV`) if
    it is not set: what this process measures itself (the vault's storage path) must run as the
    services do, and the allocator reads its settings only when a process starts."""
    from wbs_plumbing.config import PROCESS_ENV, with_process_env

    if any(key not in os.environ for key in PROCESS_ENV):
        os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]], with_process_env(dict(os.environ)))


if __name__ == "__main__":
    run_as_the_services_run()
    sys.exit(main())

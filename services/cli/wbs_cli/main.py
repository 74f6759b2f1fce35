"""`wbs`: the administration command (docs/interface.md §5).

Commands that change the directory talk to the running services over RPC, never to their
databases: the CLI works the same against a laptop or a ministry-wide cluster, as long as it can
reach RabbitMQ (`AMQP_URI`). Only `wbs migrate` touches databases directly, before the services
start.
"""
import argparse
import os
import sys

from wbs_cli.calls import SIGNED, admin_command, amqp_uri, rpc_call  # noqa: F401 (re-exported)
from wbs_plumbing.logfilters import configure_command_logging

SERVICES = ("intake", "storage", "verification", "notification")


def cmd_unit_add(args):
    unit = rpc_call("verification", "add_unit", args.code, args.name, parent=args.parent,
                    inspectorate=args.inspectorate)
    print(f"unit {unit['code']} added")


def cmd_inspector_add(args):
    staff = rpc_call("verification", "add_staff", args.username, args.email, args.unit, args.role,
                     nip=args.nip, escalation_pool=args.escalation_pool, oversees=args.oversees)
    print(f"{args.role} {staff['username']} added (id {staff['staff_id']})")
    print(f"password: {staff['password']}")
    print(f"totp: {staff['otpauth_uri']}")


def cmd_inspector_disable(args):
    staff = rpc_call("verification", "set_staff_active", args.username, args.action == "enable")
    print(f"{args.username} {args.action}d; sessions revoked: {staff.get('sessions_revoked', 0)}")


def cmd_inspector_revoke(args):
    answer = rpc_call("verification", "revoke_sessions", args.username)
    print(f"{args.username}: sessions revoked: {answer['sessions_revoked']}")


def cmd_inspector_unlock(args):
    answer = rpc_call("verification", "unlock_staff", args.username)
    print(f"{args.username}: {'unlocked' if answer['unlocked'] else 'was not locked'}")


def cmd_inspector_move(args):
    rpc_call("verification", "move_staff", args.username, args.unit)
    print(f"{args.username} now works in {args.unit}")


def cmd_inspector_oversee(args):
    answer = rpc_call("verification", "set_supervision", args.username, args.units)
    print(f"{args.username} oversees: {', '.join(answer['oversees']) or '(nothing)'}")


def cmd_events_tail(args):
    from wbs_cli.broker import tail_events
    tail_events(amqp_uri(), limit=args.count, timeout=args.timeout)


def cmd_dlq_list(args):
    from wbs_cli.broker import list_dead_letters
    letters = list_dead_letters(amqp_uri())
    if not letters:
        print("no dead letters")
    for letter in letters:
        print(f"{letter['id']}  {letter['dead_lettered_at']}  {letter['queue']}  attempts={letter['attempts']}  {letter['reason']}")


def cmd_dlq_replay(args):
    from wbs_cli.broker import replay_dead_letter
    queue = replay_dead_letter(amqp_uri(), args.id)
    print(f"replayed {args.id} to {queue}")


def cmd_keys_rotate(args):
    """Runs beside storage (it needs the key file and storage's database), not over RPC:
    key material never crosses the broker."""
    from storage.admin import rotate_keys
    from wbs_cli.supervisor import service_config
    result = rotate_keys(service_config("storage"), rewrap_only=args.rewrap_only)
    print(f"active key: {result['active']}; data keys re-wrapped: {result['rewrapped']}")
    for kek in result.get("destroyed", []):
        print(f"  destroyed retired key {kek}")
    for kek, count in sorted(result["remaining_by_kek"].items()):
        print(f"  {kek}: {count} data key(s)")


def cmd_retention_run(args):
    """Asks storage (over RPC, signed with the admin key) to shred what is past retention,
    confirmed by verification and not on legal hold; storage's clock decides."""
    result = rpc_call("storage", "run_retention", timeout=args.timeout)
    print(f"shredded {len(result['shredded'])} report(s)")
    for report_id in result["shredded"]:
        print(f"  {report_id}")


def cmd_demo_seed(args):
    import json
    print(json.dumps(rpc_call("verification", "seed_demo", timeout=10)))


def cmd_migrate(args):
    from wbs_cli.supervisor import migrate_all
    migrate_all(args.services or SERVICES)


def cmd_run(args):
    from wbs_cli.supervisor import run
    sys.exit(run())


def cmd_audit_verify(args):
    """Ask verification to walk its audit chain. Exit 0 when intact (prints the entry count and
    the head hash, worth keeping elsewhere); 1 naming the first bad entry otherwise."""
    verdict = rpc_call("verification", "verify_audit_chain", timeout=args.timeout)
    if verdict["ok"]:
        print(f"audit chain intact: {verdict['entries']} entries, head {verdict['head_hash']}")
        return
    print(f"audit chain BROKEN at entry {verdict['first_bad_seq']}: {verdict['problem']}", file=sys.stderr)
    sys.exit(1)


def cmd_not_yet(args):
    print(f"wbs {args.command_name}: not available in this version", file=sys.stderr)
    sys.exit(2)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="wbs", description="Administer a Whistle Blowing System deployment.")
    commands = top.add_subparsers(dest="command", required=True)

    unit = commands.add_parser("unit", help="units (unit kerja / satker)").add_subparsers(dest="action", required=True)
    add = unit.add_parser("add", help="add a unit")
    add.add_argument("code")
    add.add_argument("--name", required=True)
    add.add_argument("--parent")
    add.add_argument("--inspectorate", action="store_true", help="this unit is an inspectorate (its staff verify reports)")
    add.set_defaults(func=cmd_unit_add)

    inspector = commands.add_parser("inspector", help="staff accounts").add_subparsers(dest="action", required=True)
    add = inspector.add_parser("add", help="add a staff account; prints its initial password and TOTP enrolment")
    add.add_argument("username")
    add.add_argument("--email", required=True)
    add.add_argument("--unit", required=True, help="home unit")
    add.add_argument("--role", default="inspector", choices=("inspector", "supervisor", "admin"))
    add.add_argument("--nip", help="civil-service number (NIP), checked against reported parties")
    add.add_argument("--escalation-pool", action="store_true",
                     help="supervisor who takes reports about another inspectorate")
    add.add_argument("--oversees", action="append", metavar="CODE",
                     help="unit a supervisor oversees (repeat; default: their home unit)")
    add.set_defaults(func=cmd_inspector_add)
    for action, doc in (("disable", "disable an account; its sessions end at once"),
                        ("enable", "enable a disabled account")):
        toggle = inspector.add_parser(action, help=doc)
        toggle.add_argument("username")
        toggle.set_defaults(func=cmd_inspector_disable)
    revoke = inspector.add_parser("revoke-sessions", help="end every session of an account (a lost laptop)")
    revoke.add_argument("username")
    revoke.set_defaults(func=cmd_inspector_revoke)
    unlock = inspector.add_parser("unlock", help="lift the sign-in lock that failed attempts put on an account")
    unlock.add_argument("username")
    unlock.set_defaults(func=cmd_inspector_unlock)
    move = inspector.add_parser("move", help="change an account's home unit (routing re-checks it)")
    move.add_argument("username")
    move.add_argument("--unit", required=True)
    move.set_defaults(func=cmd_inspector_move)
    oversee = inspector.add_parser("oversee", help="set the units a supervisor oversees (replaces the list)")
    oversee.add_argument("username")
    oversee.add_argument("units", nargs="*", metavar="CODE")
    oversee.set_defaults(func=cmd_inspector_oversee)

    from wbs_cli.directory import add_parsers as directory_parsers
    directory_parsers(commands, unit, inspector)

    events = commands.add_parser("events", help="published events").add_subparsers(dest="action", required=True)
    tail = events.add_parser("tail", help="print published events as they happen")
    tail.add_argument("--count", type=int, default=0, help="stop after N events (0 = never)")
    tail.add_argument("--timeout", type=float, default=0, help="stop after N seconds (0 = never)")
    tail.set_defaults(func=cmd_events_tail)
    from wbs_cli.integrators import add_parsers as integrator_parsers
    integrator_parsers(commands, events)  # `wbs events catalogue`, `wbs integrator add|list|remove`

    dlq = commands.add_parser("dlq", help="dead-lettered messages").add_subparsers(dest="action", required=True)
    dlq.add_parser("list", help="list dead letters").set_defaults(func=cmd_dlq_list)
    replay = dlq.add_parser("replay", help="send a dead letter back to the queue it came from")
    replay.add_argument("id")
    replay.set_defaults(func=cmd_dlq_replay)

    migrate = commands.add_parser("migrate", help="migrate the services' databases to the latest schema")
    migrate.add_argument("services", nargs="*", help="default: all four")
    migrate.set_defaults(func=cmd_migrate)

    demo = commands.add_parser("demo", help="demo directory").add_subparsers(dest="action", required=True)
    demo.add_parser("seed", help="seed demo units, inspector and supervisor (idempotent); prints JSON").set_defaults(func=cmd_demo_seed)

    commands.add_parser("run", help="run all four services with the embedded defaults (make run)").set_defaults(func=cmd_run)

    keys = commands.add_parser("keys", help="key-encryption keys").add_subparsers(dest="action", required=True)
    rotate = keys.add_parser("rotate", help="new key-encryption key; re-wraps every data key; old key retired")
    rotate.add_argument("--rewrap-only", action="store_true", help="only move data keys still under a retired key")
    rotate.set_defaults(func=cmd_keys_rotate)

    retention = commands.add_parser("retention", help="retention and crypto-shredding").add_subparsers(dest="action", required=True)
    run_retention = retention.add_parser("run", help="shred what is past its retention and not on legal hold")
    run_retention.add_argument("--timeout", type=float, default=600, help="seconds to wait for storage")
    run_retention.set_defaults(func=cmd_retention_run)

    audit = commands.add_parser("audit", help="the hash-chained audit trail").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="walk the chain; non-zero exit naming the first bad entry")
    verify.add_argument("--timeout", type=float, default=300, help="seconds to wait for verification")
    verify.set_defaults(func=cmd_audit_verify)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    configure_command_logging("wbs")
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # an operator wants the reason, not a traceback
        reason = getattr(exc, "value", None) or str(exc) or type(exc).__name__
        print(f"wbs: {reason}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""`wbs unit list|import`, `wbs staff list|import` and `wbs inspector reset-password|reset-totp`:
the directory in bulk and the account resets, through verification's signed admin RPCs (the same
use cases as the admin console).

Imports are all or nothing: a bad file prints every bad line with its line number and exits 1,
having changed nothing. New accounts' one-time passwords and TOTP enrolments are printed once,
or written to a file created with mode 0600 (``--secrets FILE``) that the command names.
"""
import json
import os
import sys

from wbs_cli.calls import rpc_call



def _read(path: str) -> str:
    with open(path, encoding="utf-8-sig") as handle:
        return handle.read()


def _refused(outcome: dict, path: str) -> None:
    for error in outcome["errors"]:
        print(f"{path}:{error['line']}: {error['message']}", file=sys.stderr)
    print(f"wbs: nothing imported ({len(outcome['errors'])} problem(s))", file=sys.stderr)
    sys.exit(1)


def cmd_unit_list(args):
    for unit in rpc_call("verification", "unit_tree"):
        flags = " [inspektorat]" if unit["inspectorate"] else ""
        flags += "" if unit["active"] else " [nonaktif]"
        print(f"{'  ' * unit['depth']}{unit['code']}  {unit['name']}  {unit['zone_label']}{flags}")


def cmd_unit_import(args):
    outcome = rpc_call("verification", "import_units", _read(args.file), dry_run=args.check, timeout=300)
    if not outcome["ok"]:
        _refused(outcome, args.file)
    if args.check:
        print(f"{args.file}: every line is good")
        return
    print(f"{args.file}: {len(outcome['added'])} added, {len(outcome['changed'])} changed, "
          f"{outcome['unchanged']} unchanged")
    for change in outcome["changed"]:
        print(f"  {change['code']}: {', '.join(change['changes'])}")


def cmd_staff_list(args):
    members = rpc_call("verification", "list_staff", q=args.q, unit=args.unit, role=args.role,
                       active=args.active)
    for m in members:
        state = "aktif" if m["active"] else "nonaktif"
        print(f"{m['username']}\t{m['display_name']}\t{m['role']}\t{m['unit']}\t{state}")


def _write_secrets(path: str, created: list) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(created, handle, indent=2)
        handle.write("\n")


def cmd_staff_import(args):
    outcome = rpc_call("verification", "import_staff", _read(args.file), timeout=600)
    if not outcome["ok"]:
        _refused(outcome, args.file)
    for username in outcome["existing"]:
        print(f"{username}: exists, unchanged")
    if args.secrets:
        _write_secrets(args.secrets, outcome["created"])
        print(f"{len(outcome['created'])} account(s) added; one-time passwords and TOTP enrolments "
              f"written to {args.secrets} (mode 0600)")
        return
    for account in outcome["created"]:
        print(f"{account['username']} added; password: {account['password']}; totp: {account['otpauth_uri']}")


def cmd_reset_password(args):
    answer = rpc_call("verification", "reset_password", args.username)
    print(f"{answer['username']}: one-time password: {answer['password']}")
    print(f"(must be changed at the next sign-in; sessions ended: {answer['sessions_revoked']})")


def cmd_reset_totp(args):
    answer = rpc_call("verification", "reset_totp", args.username)
    print(f"{answer['username']}: new authenticator: {answer['otpauth_uri']}")
    print(f"(the old authenticator no longer works; sessions ended: {answer['sessions_revoked']})")


def add_parsers(commands, unit, inspector) -> None:
    unit.add_parser("list", help="the unit tree").set_defaults(func=cmd_unit_list)
    imp = unit.add_parser("import", help="import units from CSV (code,name,parent,inspectorate[,timezone]), all or nothing")
    imp.add_argument("file")
    imp.add_argument("--check", action="store_true", help="check the file only, change nothing")
    imp.set_defaults(func=cmd_unit_import)

    staff = commands.add_parser("staff", help="staff accounts in bulk").add_subparsers(dest="action", required=True)
    listing = staff.add_parser("list", help="list accounts")
    for name in ("q", "unit", "role"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--active", choices=("active", "disabled"))
    listing.set_defaults(func=cmd_staff_list)
    imp = staff.add_parser("import", help="import accounts from CSV (username,name,email,unit,role), all or nothing")
    imp.add_argument("file")
    imp.add_argument("--secrets", help="write the one-time passwords and TOTP enrolments to this new file (0600)")
    imp.set_defaults(func=cmd_staff_import)

    reset = inspector.add_parser("reset-password", help="one-time password, changed at the next sign-in")
    reset.add_argument("username")
    reset.set_defaults(func=cmd_reset_password)
    reset = inspector.add_parser("reset-totp", help="new authenticator enrolment; the old one stops working")
    reset.add_argument("username")
    reset.set_defaults(func=cmd_reset_totp)

"""`wbs integrator add|list|remove`: broker credentials scoped to what another system may read.

Why the management HTTP API: it is how RabbitMQ is administered where `rabbitmqctl` cannot run
next to the broker (a Kubernetes pod, a managed broker), it changes a running broker without a
restart (a definitions import at boot would need one), and it is the one interface that sets
users, permissions and topic permissions alike. `RABBITMQ_MANAGEMENT_URL` (with credentials of a
broker administrator) points at it; without it the URL is derived from `AMQP_URI`
(`http://<same host>:15672/`, same user and password).

What an integrator user NAME may do, enforced by RabbitMQ itself (the tests try every refusal
against a real broker):

* declare, bind, consume and delete only queues named `integrator.NAME.<anything>`
  (configure/write/read permissions on that prefix);
* bind them only to the `<service>.events` exchanges (read permission), and only with routing
  keys its `--events` patterns allow (topic permissions on each of those exchanges);
* read the history stream `wbs.events.history` — only when it may read every event, because the
  stream holds them all;
* never publish to any exchange of ours (no write permission on them, topic write `^$`), never
  read another queue, never touch `nameko-rpc`. Its `configure` permission lets it declare an
  exchange under its own prefix, but such an exchange can only ever route to its own queues.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
from urllib.parse import quote, unquote, urlsplit

import requests

from wbs_contracts.events import event_types, exchange_name

USER_PREFIX = "integrator-"
QUEUE_PREFIX = "integrator."
HISTORY_STREAM = "wbs.events.history"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PATTERN_RE = re.compile(r"^[a-z0-9_*]{1,64}$")


class IntegratorError(Exception):
    """A refusal the operator can act on (bad name, unknown pattern, broker said no)."""


def event_exchanges() -> list[str]:
    return sorted({exchange_name(t) for t in event_types()})


def pattern_regex(patterns: list[str]) -> str:
    """`--events` patterns (event types, `*` as a wildcard) as one anchored regex.

    The regex is the topic permission's `read` side: RabbitMQ checks it against the routing key
    of every binding the integrator makes to a `<service>.events` exchange. No patterns: all
    events.
    """
    if not patterns:
        return "^([a-z0-9_]+|#)$"
    known = event_types()
    alternatives = []
    for pattern in patterns:
        if not PATTERN_RE.match(pattern):
            raise IntegratorError(f"pattern {pattern!r}: use event types and '*' only")
        regex = re.escape(pattern).replace(r"\*", "[a-z0-9_]*")
        if not any(re.fullmatch(regex, t) for t in known):
            raise IntegratorError(f"pattern {pattern!r} matches no event type ({', '.join(known)})")
        alternatives.append(regex)
    return "^(" + "|".join(alternatives) + ")$"


class Management:
    """The few management-API calls the command needs, on one vhost."""

    def __init__(self, url: str, vhost: str, auth: tuple[str, str], timeout: float = 15):
        self.url, self.vhost, self.auth, self.timeout = url.rstrip("/"), vhost, auth, timeout

    @classmethod
    def from_environment(cls, amqp_uri: str) -> "Management":
        amqp = urlsplit(amqp_uri)
        vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
        url = os.environ.get("RABBITMQ_MANAGEMENT_URL")
        if not url:
            url = f"http://{amqp.hostname or 'localhost'}:15672/"
        parts = urlsplit(url)
        auth = (unquote(parts.username or amqp.username or "guest"),
                unquote(parts.password or amqp.password or "guest"))
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return cls(f"{parts.scheme}://{netloc}{parts.path}", vhost, auth)

    def call(self, method: str, path: str, json=None, ok=(200, 201, 204)):
        try:
            answer = requests.request(method, f"{self.url}/api/{path}", json=json, auth=self.auth,
                                      timeout=self.timeout)
        except requests.RequestException as exc:
            raise IntegratorError(f"cannot reach the RabbitMQ management API at {self.url}: "
                                  f"{type(exc).__name__} (is the rabbitmq_management plugin enabled?)") from None
        if answer.status_code not in ok:
            raise IntegratorError(f"management API {method} {path}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json() if answer.content and answer.status_code == 200 else None

    @property
    def v(self) -> str:
        return quote(self.vhost, safe="")


def add(api: Management, name: str, patterns: list[str]) -> dict:
    """Create (or replace) integrator NAME; return its username and a new password."""
    if not NAME_RE.match(name):
        raise IntegratorError("NAME: lower-case letters, digits, '-' and '_', at most 40")
    read_keys = pattern_regex(patterns)
    user = USER_PREFIX + name
    own = "^" + re.escape(QUEUE_PREFIX + name + ".") + ".*$"
    all_events = not patterns
    readable = [own[1:-1]] + [re.escape(e) for e in event_exchanges()]
    if all_events:
        readable.append(re.escape(HISTORY_STREAM))
    password = secrets.token_urlsafe(24)
    api.call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    api.call("PUT", f"permissions/{api.v}/{quote(user, safe='')}", {
        "configure": own, "write": own, "read": "^(" + "|".join(readable) + ")$"})
    for exchange in event_exchanges():
        api.call("PUT", f"topic-permissions/{api.v}/{quote(user, safe='')}",
                 {"exchange": exchange, "write": "^$", "read": read_keys})
    return {"username": user, "password": password, "queue_prefix": f"{QUEUE_PREFIX}{name}.",
            "events": patterns or ["*"], "history": all_events}


def list_integrators(api: Management) -> list[dict]:
    found = []
    for user in api.call("GET", "users") or []:
        if not user["name"].startswith(USER_PREFIX):
            continue
        topics = api.call("GET", f"users/{quote(user['name'], safe='')}/topic-permissions") or []
        reads = sorted({t["read"] for t in topics if t["vhost"] == api.vhost})
        if reads:
            found.append({"name": user["name"][len(USER_PREFIX):], "username": user["name"],
                          "events": reads[0] if len(reads) == 1 else reads})
    return found


def remove(api: Management, name: str) -> dict:
    """Delete the user and its queues. Deleting a user makes RabbitMQ close every connection
    it has open (CONNECTION_FORCED), so a removed integrator stops reading at once."""
    user = USER_PREFIX + name
    api.call("DELETE", f"users/{quote(user, safe='')}", ok=(204, 404))
    deleted = []
    for queue in api.call("GET", f"queues/{api.v}") or []:
        if queue["name"].startswith(f"{QUEUE_PREFIX}{name}."):
            api.call("DELETE", f"queues/{api.v}/{quote(queue['name'], safe='')}", ok=(204, 404))
            deleted.append(queue["name"])
    return {"username": user, "queues_deleted": deleted}


# -- the commands ---------------------------------------------------------------------------

def _api():
    from wbs_cli.calls import amqp_uri
    return Management.from_environment(amqp_uri())


def _run(action):
    try:
        action()
    except IntegratorError as exc:
        print(f"wbs integrator: {exc}", file=sys.stderr)
        sys.exit(2)


def cmd_add(args):
    def action():
        made = add(_api(), args.name, args.events or [])
        print(f"username: {made['username']}")
        print(f"password: {made['password']}")
        print(f"queues: {made['queue_prefix']}*  events: {' '.join(made['events'])}  "
              f"history: {'yes' if made['history'] else 'no (it holds every event; granted only to integrators of all events)'}")
        print("The password is shown once and not stored; `wbs integrator add` again replaces it.",
              file=sys.stderr)
    _run(action)


def cmd_list(args):
    def action():
        rows = list_integrators(_api())
        if not rows:
            print("no integrators")
        for row in rows:
            print(f"{row['name']}  user {row['username']}  events {row['events']}")
    _run(action)


def cmd_remove(args):
    def action():
        gone = remove(_api(), args.name)
        print(f"removed {gone['username']} (its connections are closed); "
              f"queues deleted: {len(gone['queues_deleted'])}")
    _run(action)


def cmd_catalogue(args):
    from wbs_contracts.asyncapi import committed
    sys.stdout.write(committed())


def cmd_announce_directory(args):
    from wbs_cli.calls import rpc_call
    counts = rpc_call("verification", "announce_directory")
    print(f"announced {counts['units']} unit(s) and {counts['staff']} staff account(s)")


def add_parsers(commands, events) -> None:
    """Wire `wbs integrator ...` and `wbs events catalogue` into the main parser."""
    events.add_parser("catalogue", help="print the AsyncAPI 3 document of every event").set_defaults(func=cmd_catalogue)
    events.add_parser("announce-directory", help="publish unit_changed/staff_changed for the whole directory "
                      "(integrators' lookups)").set_defaults(func=cmd_announce_directory)
    integrator = commands.add_parser("integrator", help="broker credentials for systems that read our events")
    actions = integrator.add_subparsers(dest="action", required=True)
    add_cmd = actions.add_parser("add", help="create a read-only broker user; prints its password once")
    add_cmd.add_argument("name")
    add_cmd.add_argument("--events", nargs="+", metavar="PATTERN",
                         help="event types it may bind ('*' wildcard); default: all")
    add_cmd.set_defaults(func=cmd_add)
    actions.add_parser("list", help="list integrators and their event patterns").set_defaults(func=cmd_list)
    remove_cmd = actions.add_parser("remove", help="delete the user (closing its connections) and its queues")
    remove_cmd.add_argument("name")
    remove_cmd.set_defaults(func=cmd_remove)

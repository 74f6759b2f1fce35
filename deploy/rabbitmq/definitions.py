"""RabbitMQ definitions for the production stack: generate the topology from the code, and render
the file the broker loads at boot with its user.

Why generated: a queue's name and arguments must match, byte for byte, what the services declare
(nameko's ``evt-<source>-<event>--<service>.<method>``, the reliable handler's retry queues, the
queue type and limits), or the broker refuses the service's declaration with
PRECONDITION_FAILED. Reading the service classes is the only way to stay in step. Declaring the
queues before any service starts is docs/architecture.md §4.4 ("topology before traffic"): an event published
while its consumer has never run still waits in the consumer's queue.

    python deploy/rabbitmq/definitions.py generate            # rewrite definitions.json and permissions.json
    python deploy/rabbitmq/definitions.py render OUT.json     # topology + one user per service and the admin
    python deploy/rabbitmq/definitions.py matrix              # the permission matrix, readable

Why one broker identity per service (docs/architecture.md §10): many programs and people hold broker
credentials. With one shared user, whoever holds it can call every RPC and publish every event.
Each identity here may configure, write and read only its own queues (vhost permissions) and
publish only its own routing keys (topic permissions on ``nameko-rpc`` and on each
``<service>.events`` exchange): intake may call storage's upload RPCs but not ``run_retention``,
only verification publishes ``verification.*`` events, only ``wbs-admin`` calls admin RPCs.
Topic permissions allow everything on an exchange they do not name, so every identity gets an
entry for every exchange of ours. The broker's checks are one wall; the signed commands of
``wbs_plumbing.grants`` are the other, and hold even with one shared identity.

Why rendered at deploy time: a broker that imports definitions at boot creates no default user,
and the user's password must come from a secret, never from the repository. The broker stores
only a salted SHA-256 hash (its ``rabbit_password_hashing_sha256`` format), which is what the
rendered file carries.
"""
from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).resolve().with_name("definitions.json")
MATRIX = Path(__file__).resolve().with_name("permissions.json")  # the identities' permissions, for review
SERVICES = ("intake", "storage", "verification", "notification")
VHOST = "/"
RPC_EXCHANGE = "nameko-rpc"
EVENT_EXCHANGES = tuple("{}.events".format(s) for s in SERVICES)


def _config_retry_delays(service: str):
    import yaml

    text = (ROOT / "services" / service / "config.yml").read_text()
    for line in text.splitlines():
        if line.startswith("RETRY_DELAYS_MS:"):
            return [int(v) for v in yaml.safe_load(line.split(":", 1)[1])]
    from wbs_plumbing.reliable import DEFAULT_RETRY_DELAYS_MS
    return list(DEFAULT_RETRY_DELAYS_MS)


def _entrypoints(service_cls):
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    for name in dir(service_cls):
        method = getattr(service_cls, name, None)
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            yield name, entrypoint


def _queue(name, arguments=None):
    return {"name": name, "vhost": VHOST, "durable": True, "auto_delete": False,
            "arguments": arguments or {}}


def _binding(exchange, queue, routing_key):
    return {"source": exchange, "vhost": VHOST, "destination": queue, "destination_type": "queue",
            "routing_key": routing_key, "arguments": {}}


def topology() -> dict:
    """Exchanges, queues and bindings every service declares, read from the service classes."""
    from nameko.events import BROADCAST, SINGLETON, EventHandler
    from nameko.rpc import Rpc
    from wbs_plumbing.queues import DEAD_LETTER_QUEUE, consumed_arguments, plain_arguments
    from wbs_plumbing.reliable import ReliableEventHandler, retry_queue

    from wbs_plumbing.history import HISTORY_STREAM, history_days, stream_arguments

    queues = {DEAD_LETTER_QUEUE: _queue(DEAD_LETTER_QUEUE, plain_arguments()),
              HISTORY_STREAM: _queue(HISTORY_STREAM, stream_arguments(history_days()))}
    bindings = [_binding(exchange, HISTORY_STREAM, "#") for exchange in EVENT_EXCHANGES]
    for service in SERVICES:
        try:
            module = importlib.import_module("{}.service".format(service))
        except ModuleNotFoundError as exc:
            if exc.name != "{}.service".format(service):
                raise
            print("definitions: {} has no service module yet; skipped".format(service), file=sys.stderr)
            continue
        service_cls = next(v for v in vars(module).values()
                           if isinstance(v, type) and getattr(v, "name", None) == service)
        delays = _config_retry_delays(service)
        has_rpc = False
        for method_name, entrypoint in _entrypoints(service_cls):
            if isinstance(entrypoint, Rpc):
                has_rpc = True
            elif isinstance(entrypoint, EventHandler):
                if entrypoint.handler_type in (BROADCAST, SINGLETON):
                    raise SystemExit("{}.{}: only service-pool handlers are declared here".format(service, method_name))
                name = "evt-{}-{}--{}.{}".format(entrypoint.source_service, entrypoint.event_type,
                                                 service, method_name)
                queues[name] = _queue(name, consumed_arguments() if isinstance(entrypoint, ReliableEventHandler) else {})
                bindings.append(_binding("{}.events".format(entrypoint.source_service), name,
                                         entrypoint.event_type))
                if isinstance(entrypoint, ReliableEventHandler):
                    for delay in delays:
                        parking = retry_queue(name, delay)
                        queues[parking.name] = _queue(parking.name, dict(parking.queue_arguments))
        if has_rpc:
            name = "rpc-{}".format(service)
            queues[name] = _queue(name, consumed_arguments())
            bindings.append(_binding(RPC_EXCHANGE, name, "{}.*".format(service)))

    exchanges = [{"name": name, "vhost": VHOST, "type": "topic", "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}} for name in (RPC_EXCHANGE,) + EVENT_EXCHANGES]
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": exchanges,
        "queues": [queues[name] for name in sorted(queues)],
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
        "policies": policies(),
    }


# The dead-letter queue's bounds (deploy/rabbitmq/README.md): a policy, so operators can change them
# on a running cluster. Dead letters wait for a person (`wbs dlq list/replay`); 30 days is more
# than a holiday, 100 000 letters or 1 GiB far more than any backlog an operator will replay, and
# past either the oldest letter goes first (drop-head) so a dead-lettering storm never refuses the
# handlers' own dead-lettering.
DEAD_LETTER_MAX_LENGTH = 100000
DEAD_LETTER_MAX_BYTES = 1 << 30
DEAD_LETTER_MAX_AGE_MS = 30 * 24 * 3600 * 1000


def policies() -> list:
    from wbs_plumbing.queues import DEAD_LETTER_QUEUE
    return [{"vhost": VHOST, "name": "wbs-dead-letters", "pattern": "^{}$".format(DEAD_LETTER_QUEUE.replace(".", "\\.")),
             "apply-to": "queues", "priority": 10,
             "definition": {"max-length": DEAD_LETTER_MAX_LENGTH, "max-length-bytes": DEAD_LETTER_MAX_BYTES,
                            "message-ttl": DEAD_LETTER_MAX_AGE_MS, "overflow": "drop-head"}}]


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode()


def _secret(name: str) -> str:
    path = os.environ.get(name + "_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, "")


# -- identities -----------------------------------------------------------------------------

ADMIN = "admin"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # nameko's reply routing keys
ROUTE = "(?:-[0-9a-f]{12})?"  # a storage instance's private route (wbs_plumbing.rpc)
# Who calls whom over RPC. A call not listed here is refused by the broker (ACCESS_REFUSED on
# publish, which closes the caller's channel). The wbs command (admin) may call every RPC;
# the privileged ones also need its signed command (wbs_plumbing.grants).
RPC_CALLS = {
    "intake": {"storage": ("open_transit", "begin_evidence", "append_evidence", "finish_evidence",
                           "abort_evidence", "store_report", "store_report_content", "store_message",
                           "read_messages", "discard_report"),
               "verification": ("list_units", "get_report_status")},
    "verification": {"storage": ("open_transit", "store_message", "read_report_content", "read_report_parties",
                                 "list_evidence", "read_evidence_chunk", "read_messages"),
                     # the console's email pages (signed with verification's command key)
                     "notification": ("staff_settings", "set_preference", "register_key", "remove_key",
                                      "list_templates", "preview_template", "set_template")},
    "storage": {"verification": ("case_retention_state",)},
    "notification": {"verification": ("get_recipient", "case_contacts", "deadlines_ahead",
                                      "supervisor_digests", "administrator_ids"),
                     "storage": ("read_reporter_contact",)},
}


def user_name(identity: str, prefix: str | None = None) -> str:
    """The broker user of a service (``wbs-intake``) or of the wbs command (``wbs-admin``);
    ``WBS_BROKER_USER_PREFIX`` changes the ``wbs-`` (the services read the same variable)."""
    return "{}{}".format(prefix or os.environ.get("WBS_BROKER_USER_PREFIX") or "wbs-", identity)


def _any(items) -> str:
    items = sorted(set(items))
    return "^(?:{})$".format("|".join(items)) if items else "^$"


def _events_by_exchange() -> dict:
    from wbs_contracts.events import event_types, exchange_name
    found = {exchange: [] for exchange in EVENT_EXCHANGES}
    for event_type in event_types():
        found.setdefault(exchange_name(event_type), []).append(event_type)
    return found


def _consumed(doc: dict, service: str) -> dict:
    """``{source exchange: [event types]}`` this service's handlers bind, read from the topology."""
    consumed = {}
    for binding in doc["bindings"]:
        if "--{}.".format(service) in binding["destination"] and binding["source"] in EVENT_EXCHANGES:
            consumed.setdefault(binding["source"], []).append(binding["routing_key"])
    return consumed


def _service_queues(service: str) -> str:
    return ("rpc-{s}|rpc-{s}-[0-9a-f]{{12}}|rpc\\.reply-{s}-{uuid}"
            "|evt-[a-z_]+-[a-z_]+--{s}\\.[a-z_]+(?:\\.retry\\.[0-9]+ms)?").format(s=service, uuid=UUID)


def _rpc_keys(calls: dict) -> list:
    keys = []
    for target, methods in calls.items():
        route = ROUTE if target == "storage" else ""
        keys.append("{}{}\\.(?:{})".format(target, route, "|".join(sorted(methods))))
    return keys


def identities(doc: dict | None = None, prefix: str | None = None) -> dict:
    """Every identity's vhost and topic permissions (regexes), from the topology and RPC_CALLS.

    Returns ``{identity: {"user", "configure", "write", "read", "topic": {exchange: {"write",
    "read"}}}}``. On an exchange, ``write`` is checked against the routing key of each publish and
    ``read`` against the routing key of each binding.
    """
    doc = doc or topology()
    events = _events_by_exchange()
    dead, history = "wbs\\.dead-letters", "wbs\\.events\\.history"
    exchanges_re = "|".join(e.replace(".", "\\.") for e in EVENT_EXCHANGES)
    result = {}
    for service in SERVICES:
        own = "{}.events".format(service)
        consumed = _consumed(doc, service)
        queues = _service_queues(service)
        sources = [e.replace(".", "\\.") for e in consumed]
        topic = {RPC_EXCHANGE: {
            "write": _any(_rpc_keys(RPC_CALLS.get(service, {})) + [UUID]),
            "read": _any(["{}\\.\\*".format(service), "{}-[0-9a-f]{{12}}\\.\\*".format(service), UUID]),
        }}
        for exchange in EVENT_EXCHANGES:
            topic[exchange] = {
                "write": _any(events.get(exchange, [])) if exchange == own else "^$",
                # its own exchange: the history stream's "#" binding (and its own handlers')
                "read": _any(["#"] * (exchange == own) + consumed.get(exchange, [])),
            }
        result[service] = {
            "user": user_name(service, prefix),
            "configure": _any([queues, RPC_EXCHANGE, own.replace(".", "\\."), dead, history] + sources),
            "write": _any([queues, RPC_EXCHANGE, own.replace(".", "\\."), "amq\\.default", history]),
            "read": _any([queues, RPC_EXCHANGE, own.replace(".", "\\.")] + sources),
            "topic": topic,
        }
    reply = "rpc\\.reply-standalone_rpc_proxy-{}|amq\\.gen-[A-Za-z0-9_-]+".format(UUID)
    result[ADMIN] = {
        "user": user_name(ADMIN, prefix),
        "configure": _any([reply, RPC_EXCHANGE, dead, exchanges_re]),
        "write": _any([reply, RPC_EXCHANGE, "amq\\.default"]),
        "read": _any([reply, RPC_EXCHANGE, dead, history, exchanges_re]),
        "topic": dict({RPC_EXCHANGE: {"write": _any(["(?:{})\\.[a-z_]+".format("|".join(SERVICES)), UUID]),
                                      "read": _any([UUID])}},
                      **{exchange: {"write": "^$", "read": "^#$"} for exchange in EVENT_EXCHANGES}),
    }
    return result


def render(out: Path) -> None:
    """Topology and users. ``RABBITMQ_USER``/``RABBITMQ_PASSWORD[_FILE]`` name the operators'
    administrator (all permissions; alone may manage users, e.g. integrators, through the
    management API). With ``RABBITMQ_<IDENTITY>_PASSWORD[_FILE]`` set for every identity (INTAKE,
    STORAGE, VERIFICATION, NOTIFICATION, ADMIN), each gets its user, vhost and topic permissions
    from :func:`identities`; with none set, the services share the administrator's identity, and
    this says so."""
    doc = json.loads(TOPOLOGY.read_text())
    matrix = identities(doc)
    admin = os.environ.get("RABBITMQ_USER", "wbs")
    users = [(admin, _real_secret("RABBITMQ_PASSWORD"), ["administrator"])]
    doc["permissions"] = [{"user": admin, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}]
    names = ["RABBITMQ_{}_PASSWORD".format(identity.upper()) for identity in matrix]
    given = [name for name in names if _secret(name)]
    if given:
        users += [(entry["user"], _real_secret(name), []) for name, entry in zip(names, matrix.values())]
        doc["permissions"] += [{"user": e["user"], "vhost": VHOST, "configure": e["configure"],
                                "write": e["write"], "read": e["read"]} for e in matrix.values()]
        doc["topic_permissions"] = [{"user": e["user"], "vhost": VHOST, "exchange": exchange,
                                     "write": p["write"], "read": p["read"]}
                                    for e in matrix.values() for exchange, p in sorted(e["topic"].items())]
    else:
        print("definitions: no RABBITMQ_<IDENTITY>_PASSWORD set: every service shares the identity "
              "{} (development only; docs/architecture.md §10 wants one per service)".format(admin), file=sys.stderr)
    doc["users"] = [{"name": name, "password_hash": rabbit_password_hash(password),
                     "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags}
                    for name, password, tags in users]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(tmp, 0o644)  # the broker runs as another user in its own container
    tmp.replace(out)
    print("definitions: wrote {} ({} queues, user {})".format(out, len(doc["queues"]), admin))


def _real_secret(name: str) -> str:
    password = _secret(name)
    if len(password) < 12 or password in ("guest", "wbs", "password"):
        raise SystemExit("{0} (or {0}_FILE) must be set to a real secret".format(name))
    return password


def main(argv):
    if argv[:1] == ["generate"]:
        doc = topology()
        TOPOLOGY.write_text(json.dumps(doc, indent=2) + "\n")
        MATRIX.write_text(json.dumps(identities(doc), indent=2) + "\n")
        print("definitions: wrote {} and {}".format(TOPOLOGY, MATRIX))
    elif argv[:1] == ["matrix"]:
        print(json.dumps(identities(), indent=2))
    elif argv[:1] == ["render"] and len(argv) == 2:
        render(Path(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

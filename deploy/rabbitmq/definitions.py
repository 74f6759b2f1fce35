"""RabbitMQ definitions for the production stack: generate the topology from the code, and render
the file the broker loads at boot with its user.

Why generated: a queue's name and arguments must match, byte for byte, what the services declare
(nameko's ``evt-<source>-<event>--<service>.<method>``, the reliable handler's retry queues with
their TTL and dead-letter arguments), or the broker refuses the service's declaration with
PRECONDITION_FAILED. Reading the service classes is the only way to stay in step. Declaring the
queues before any service starts is DESIGN §4.4 ("topology before traffic"): an event published
while its consumer has never run still waits in the consumer's queue.

    python deploy/rabbitmq/definitions.py generate            # rewrite deploy/rabbitmq/definitions.json
    python deploy/rabbitmq/definitions.py render OUT.json     # topology + user from RABBITMQ_USER/RABBITMQ_PASSWORD[_FILE]

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
    from wbs_plumbing.reliable import DEAD_LETTER_QUEUE, ReliableEventHandler, retry_queue

    from wbs_plumbing.history import HISTORY_STREAM, history_days, stream_arguments

    queues = {DEAD_LETTER_QUEUE: _queue(DEAD_LETTER_QUEUE),
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
                queues[name] = _queue(name)
                bindings.append(_binding("{}.events".format(entrypoint.source_service), name,
                                         entrypoint.event_type))
                if isinstance(entrypoint, ReliableEventHandler):
                    for delay in delays:
                        parking = retry_queue(name, delay)
                        queues[parking.name] = _queue(parking.name, dict(parking.queue_arguments))
        if has_rpc:
            name = "rpc-{}".format(service)
            queues[name] = _queue(name)
            bindings.append(_binding(RPC_EXCHANGE, name, "{}.*".format(service)))

    exchanges = [{"name": name, "vhost": VHOST, "type": "topic", "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}} for name in (RPC_EXCHANGE,) + EVENT_EXCHANGES]
    return {
        "vhosts": [{"name": VHOST}],
        "exchanges": exchanges,
        "queues": [queues[name] for name in sorted(queues)],
        "bindings": sorted(bindings, key=lambda b: (b["source"], b["destination"], b["routing_key"])),
    }


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode()


def _secret(name: str) -> str:
    path = os.environ.get(name + "_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, "")


def render(out: Path) -> None:
    user = os.environ.get("RABBITMQ_USER", "wbs")
    password = _secret("RABBITMQ_PASSWORD")
    if len(password) < 12 or password in ("guest", "wbs", "password"):
        raise SystemExit("RABBITMQ_PASSWORD (or RABBITMQ_PASSWORD_FILE) must be set to a real secret")
    doc = json.loads(TOPOLOGY.read_text())
    doc["users"] = [{"name": user, "password_hash": rabbit_password_hash(password),
                     "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}]
    doc["permissions"] = [{"user": user, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(tmp, 0o644)  # the broker runs as another user in its own container
    tmp.replace(out)
    print("definitions: wrote {} ({} queues, user {})".format(out, len(doc["queues"]), user))


def main(argv):
    if argv[:1] == ["generate"]:
        TOPOLOGY.write_text(json.dumps(topology(), indent=2) + "\n")
        print("definitions: wrote {}".format(TOPOLOGY))
    elif argv[:1] == ["render"] and len(argv) == 2:
        render(Path(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

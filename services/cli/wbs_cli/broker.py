"""Operator views of RabbitMQ: the live event stream and the dead-letter queue; and the
creation of the per-service broker identities where ``rabbitmqctl`` runs next to the broker.

Listing dead letters must not consume them: messages are fetched without acknowledgement and go
back to the queue, in their order, when the channel closes. Replay publishes one message back to
the queue it was dead-lettered from (with its attempt count reset) and only then acknowledges it.
"""
import hashlib
import importlib.util
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pika

from wbs_plumbing.failover import first_node, node_uris, pika_parameters
from wbs_plumbing.queues import plain_arguments
from wbs_plumbing.reliable import ATTEMPTS_HEADER, DEAD_LETTER_QUEUE

EVENT_EXCHANGES = ("intake.events", "storage.events", "verification.events", "notification.events")


def _connect(amqp_uri):
    return pika.BlockingConnection(pika_parameters(amqp_uri))  # the first reachable node of AMQP_URI


def tail_events(amqp_uri, limit=0, timeout=0, out=sys.stdout):
    connection = _connect(amqp_uri)
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
    for exchange in EVENT_EXCHANGES:
        channel.exchange_declare(exchange, "topic", durable=True)
        channel.queue_bind(queue, exchange, "#")
    print(f"listening on {', '.join(EVENT_EXCHANGES)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    seen, deadline = 0, (time.monotonic() + timeout) if timeout else None
    try:
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if method is not None:
                print(f"{method.exchange} {method.routing_key} {body.decode('utf-8', 'replace')}", file=out, flush=True)
                seen += 1
                if limit and seen >= limit:
                    break
            if deadline and time.monotonic() > deadline:
                break
    finally:
        connection.close()


def _letter_id(properties, body) -> str:
    return properties.message_id or hashlib.sha256(body).hexdigest()[:16]


def _fetch_all(channel):
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True, arguments=plain_arguments())
    letters = []
    while True:
        method, properties, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
        if method is None:
            return letters
        letters.append((method, properties, body))


def _origin(headers: dict) -> tuple[str, str]:
    """(original queue, reason) of a dead letter: our handlers name them in ``x-wbs-`` headers; a
    letter the broker dead-lettered itself (a quorum queue's delivery limit) names them in its
    ``x-death`` record instead."""
    if "x-wbs-original-queue" in headers:
        return headers["x-wbs-original-queue"], headers.get("x-wbs-reason", "?")
    death = (headers.get("x-death") or [{}])[0]
    queue, reason = death.get("queue", "?"), death.get("reason", "?")
    return (queue.decode() if isinstance(queue, bytes) else queue,
            "broker: " + (reason.decode() if isinstance(reason, bytes) else reason))


def list_dead_letters(amqp_uri) -> list[dict]:
    connection = _connect(amqp_uri)
    try:
        letters = _fetch_all(connection.channel())
        return [{
            "id": _letter_id(properties, body),
            **dict(zip(("queue", "reason"), _origin(properties.headers or {}))),
            "attempts": (properties.headers or {}).get(ATTEMPTS_HEADER, 0),
            "dead_lettered_at": (properties.headers or {}).get("x-wbs-dead-lettered-at", "?"),
        } for _method, properties, body in letters]
    finally:
        connection.close()  # unacknowledged: every letter goes back to the queue


def replay_dead_letter(amqp_uri, letter_id: str) -> str:
    connection = _connect(amqp_uri)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for method, properties, body in _fetch_all(channel):
            if _letter_id(properties, body) != letter_id:
                continue
            queue, _reason = _origin(properties.headers or {})
            if queue == "?":
                raise LookupError(f"dead letter {letter_id} does not say which queue it came from")
            headers = {k: v for k, v in (properties.headers or {}).items()
                       if not k.startswith("x-wbs-") and k != "x-death"}
            channel.basic_publish("", queue, body, pika.BasicProperties(
                content_type=properties.content_type, content_encoding=properties.content_encoding,
                message_id=properties.message_id, headers=headers, delivery_mode=2), mandatory=True)
            channel.basic_ack(method.delivery_tag)
            return queue
        raise LookupError(f"no dead letter with id {letter_id}")
    finally:
        connection.close()


def dump(letter) -> str:
    return json.dumps(letter, ensure_ascii=False)


# -- per-service identities -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[3]


def definitions_module():
    """deploy/rabbitmq/definitions.py, which derives the permission matrix from the services."""
    spec = importlib.util.spec_from_file_location(
        "wbs_rabbit_definitions", ROOT / "deploy" / "rabbitmq" / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _erl(text: str) -> str:
    return '<<"{}">>'.format(text.replace("\\", "\\\\").replace('"', '\\"'))


def identities_erlang(vhost: str, matrix: dict, passwords: dict) -> str:
    """One ``rabbitmqctl eval`` expression that creates (or re-passwords) every identity's user
    and sets its vhost and topic permissions: one Erlang VM start instead of forty."""
    acting = _erl("wbs")
    steps = []
    for identity, entry in matrix.items():
        user = _erl(entry["user"])
        steps.append("case rabbit_auth_backend_internal:lookup_user({u}) of {{ok, _}} -> "
                     "rabbit_auth_backend_internal:change_password({u}, {p}, {a}); "
                     "_ -> rabbit_auth_backend_internal:add_user({u}, {p}, {a}) end".format(
                         u=user, p=_erl(passwords[identity]), a=acting))
        steps.append("rabbit_auth_backend_internal:set_permissions({}, {}, {}, {}, {}, {})".format(
            user, _erl(vhost), _erl(entry["configure"]), _erl(entry["write"]), _erl(entry["read"]), acting))
        for exchange, topic in sorted(entry["topic"].items()):
            steps.append("rabbit_auth_backend_internal:set_topic_permissions({}, {}, {}, {}, {}, {})".format(
                user, _erl(vhost), _erl(exchange), _erl(topic["write"]), _erl(topic["read"]), acting))
    return ", ".join(steps) + ", ok."


def identity_uri(amqp_uri: str, user: str, password: str) -> str:
    """``amqp_uri`` with another user and password (same hosts, ports and vhost)."""
    if len(node_uris(amqp_uri)) > 1:
        return ";".join(identity_uri(node, user, password) for node in node_uris(amqp_uri))
    parts = urlsplit(amqp_uri)
    host = parts.hostname or "localhost"
    netloc = "{}:{}@{}{}".format(quote(user, safe=""), quote(password, safe=""), host,
                                 ":{}".format(parts.port) if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def create_identities(amqp_uri: str, passwords: dict | None = None, rabbitmqctl=None,
                      prefix: str | None = None) -> dict:
    """Create every identity of the permission matrix on ``amqp_uri``'s vhost with
    ``rabbitmqctl`` (which must run beside the broker); returns ``{identity: amqp uri}``.

    Raises ``RuntimeError`` with the reason when it cannot (no rabbitmqctl, not allowed):
    ``wbs run`` then says so and falls back to one shared development identity.
    """
    exe = rabbitmqctl or shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(exe).exists():
        raise RuntimeError("rabbitmqctl is not installed here")
    matrix = definitions_module().identities(prefix=prefix)
    passwords = dict(passwords or {})
    for identity in matrix:
        passwords.setdefault(identity, secrets.token_urlsafe(24))
    vhost = urlsplit(first_node(amqp_uri)).path[1:] or "/"
    from urllib.parse import unquote
    vhost = unquote(vhost)
    result = subprocess.run([exe, "eval", identities_erlang(vhost, matrix, passwords)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or "error" in result.stdout.lower():
        raise RuntimeError("rabbitmqctl could not create the identities: {}".format(
            (result.stderr or result.stdout).strip()[:300]))
    return {identity: identity_uri(amqp_uri, entry["user"], passwords[identity])
            for identity, entry in matrix.items()}

"""Operator views of RabbitMQ: the live event stream and the dead-letter queue.

Listing dead letters must not consume them: messages are fetched without acknowledgement and go
back to the queue, in their order, when the channel closes. Replay publishes one message back to
the queue it was dead-lettered from (with its attempt count reset) and only then acknowledges it.
"""
import hashlib
import json
import sys
import time

import pika

from wbs_plumbing.reliable import ATTEMPTS_HEADER, DEAD_LETTER_QUEUE

EVENT_EXCHANGES = ("intake.events", "storage.events", "verification.events", "notification.events")


def _connect(amqp_uri):
    return pika.BlockingConnection(pika.URLParameters(amqp_uri))


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
    channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    letters = []
    while True:
        method, properties, body = channel.basic_get(DEAD_LETTER_QUEUE, auto_ack=False)
        if method is None:
            return letters
        letters.append((method, properties, body))


def list_dead_letters(amqp_uri) -> list[dict]:
    connection = _connect(amqp_uri)
    try:
        letters = _fetch_all(connection.channel())
        return [{
            "id": _letter_id(properties, body),
            "queue": (properties.headers or {}).get("x-wbs-original-queue", "?"),
            "reason": (properties.headers or {}).get("x-wbs-reason", "?"),
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
            headers = {k: v for k, v in (properties.headers or {}).items() if not k.startswith("x-wbs-")}
            queue = properties.headers["x-wbs-original-queue"]
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

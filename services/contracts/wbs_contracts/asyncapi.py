"""The event catalogue: an AsyncAPI 3 document generated from the contract schemas.

Why generated: `schemas/*.json` is the one source of truth for what an event may carry. A
hand-written catalogue would drift from it the first time someone adds a field; instead this
module builds the document from the schemas, the committed `asyncapi.json` is its output, and a
test fails when the two differ (`python -m wbs_contracts.asyncapi --write` refreshes it).

What an integrator gets from it: every exchange, routing key and payload, one example per event
(built from the schema and checked against it), the AMQP message properties the publisher sets,
the history stream, and the delivery guarantees. The payload schemas in the document are the
*consumer* schemas (`consumer_schema`): the producers' strict schemas with unknown properties
allowed, because a consumer must keep working when a later release adds an optional field
(docs/events.md, "Compatibility").
"""
from __future__ import annotations

import copy
import json
import sys
import uuid
from importlib import resources

from wbs_contracts.events import event_types, exchange_name, schema, source_service, validate_event

DOCUMENT_NAME = "asyncapi.json"
HISTORY_STREAM = "wbs.events.history"
AMQP_BINDING_VERSION = "0.3.0"
# The catalogue's own version: bump the minor for an added event or optional field, the major
# when an event's schema_version is bumped (docs/events.md).
CATALOGUE_VERSION = "1.2.0"

DELIVERY = (
    "Delivery is at least once: an event may arrive more than once (the outbox relay republishes "
    "after a lost publisher confirm; a consumer that did not acknowledge gets it again), so every "
    "consumer deduplicates on `event_id`. Order is not guaranteed across events; use `occurred_at` "
    "and the stream offset of `wbs.events.history` to order them. Messages are persistent "
    "(delivery mode 2) and published with publisher confirms."
)

PROPERTIES = (
    "AMQP properties of every event: `message_id` = `event_id`; `type` = the event type (also the "
    "routing key); `content_type` = `application/json`; `content_encoding` = `utf-8`; "
    "`timestamp` = when the event was staged (seconds); `app_id` = the publishing service; `user_id` = the "
    "broker identity that published it (validated by RabbitMQ, so it cannot be forged); "
    "`delivery_mode` = 2."
)

# Example values by property name; everything else follows from the property's schema.
_EXAMPLE_VALUES = {
    "unit": "itjen-keuangan",
    "category": "bribery",
    "kind": "case_assigned",
    "occurred_at": "2026-03-02T09:41:00Z",
    "due_at": "2026-03-09T09:41:00Z",
    "name": "Inspektorat Jenderal Kementerian Keuangan",
    "display_name": "Siti Rahmawati",
    "parent": "kemenkeu",
    "reference": "WBS/ITJEN-KEUANGAN/2026/00042",
}
_UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def consumer_schema(event_type: str) -> dict:
    """The schema a consumer validates with: the producer's, with unknown properties allowed.

    Producers keep `additionalProperties: false` (an event never carries a field the contract
    does not name); consumers must not break when a compatible release adds an optional field.
    Draft-specific identifiers are dropped so the schema embeds in AsyncAPI's schema format.
    """
    relaxed = copy.deepcopy(schema(event_type))
    relaxed.pop("$schema", None)
    relaxed["x-schema-id"] = relaxed.pop("$id", None)
    relaxed["additionalProperties"] = True
    return relaxed


def _example_value(event_type: str, name: str, prop: dict):
    if "const" in prop:
        return prop["const"]
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type")
    if kind == "integer":
        return max(int(prop.get("minimum", 0)), 1)
    if kind == "boolean":
        return True
    if name in _EXAMPLE_VALUES:
        return _EXAMPLE_VALUES[name]
    if prop.get("format") == "uuid" or prop.get("pattern") == _UUID_PATTERN:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"wbs:example/{event_type}/{name}"))
    if prop.get("pattern") == "^[0-9a-f]{64}$":
        return "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    if prop.get("format") == "date-time":
        return _EXAMPLE_VALUES["occurred_at"]
    return "example"


def example(event_type: str) -> dict:
    """One complete event body, valid against the producer's strict schema (checked here)."""
    properties = schema(event_type)["properties"]
    body = {name: _example_value(event_type, name, prop) for name, prop in properties.items()}
    validate_event(event_type, body)
    return body


def _message(event_type: str) -> dict:
    strict = schema(event_type)
    return {
        "name": event_type,
        "title": event_type.replace("_", " "),
        "summary": strict.get("description", ""),
        "description": PROPERTIES,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{event_type}"},
        "correlationId": {"description": "Deduplicate on this id.", "location": "$message.payload#/event_id"},
        "examples": [{"name": f"{event_type}_example", "payload": example(event_type)}],
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": event_type,
                              "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _exchange(name: str) -> dict:
    return {"name": name, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}


def document() -> dict:
    """The whole AsyncAPI 3.0 document, deterministic for a given set of schemas."""
    types = event_types()
    channels, operations = {}, {}
    for event_type in types:
        channels[event_type] = {
            "address": event_type,
            "title": f"{event_type} on {exchange_name(event_type)}",
            "description": (f"Routing key `{event_type}` on the topic exchange "
                            f"`{exchange_name(event_type)}`. Bind a queue named "
                            "`integrator.<your name>.<anything>` to it with this routing key."),
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": _exchange(exchange_name(event_type)),
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
        operations[f"publish_{event_type}"] = {
            "action": "send",
            "title": f"{source_service(event_type)} publishes {event_type}",
            "description": DELIVERY,
            "channel": {"$ref": f"#/channels/{event_type}"},
            "messages": [{"$ref": f"#/channels/{event_type}/messages/{event_type}"}],
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "timestamp": True,
                                  "bindingVersion": AMQP_BINDING_VERSION}},
        }
    channels["history"] = {
        "address": HISTORY_STREAM,
        "title": "the replayable history of every event",
        "description": (
            f"A RabbitMQ stream (`x-queue-type: stream`) bound with `#` to every `<service>.events` "
            "exchange, so it holds every event in publication order for `WBS_EVENT_HISTORY_DAYS` "
            "days (default 400). Read it with basic.consume, a prefetch (basic.qos) and the "
            "consumer argument `x-stream-offset`: `first`, `last`, `next`, a numeric offset or a "
            "timestamp. Messages keep their exchange's routing key and properties."),
        "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in types},
        "bindings": {"amqp": {"is": "queue", "queue": {
            "name": HISTORY_STREAM, "durable": True, "exclusive": False, "autoDelete": False,
            "vhost": "/"}, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    operations["record_history"] = {
        "action": "send",
        "title": "every event is also kept in the history stream",
        "description": DELIVERY,
        "channel": {"$ref": "#/channels/history"},
        "messages": [{"$ref": f"#/channels/history/messages/{t}"} for t in types],
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:wbs:events",
        "info": {
            "title": "WBS events",
            "version": CATALOGUE_VERSION,
            "description": (
                "Every event the Whistle Blowing System publishes. Events carry metadata only: "
                "never report content, never anything about a reporter.\n\n" + DELIVERY + "\n\n"
                + PROPERTIES + "\n\nCompatibility: within one `schema_version` a release only "
                "adds optional fields; ignore fields you do not know. Credentials, replay and a "
                "worked example: docs/integrators.md."),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The ministry's RabbitMQ; the host name and vhost come with your credentials.",
                "security": [{"$ref": "#/components/securitySchemes/integrator"}],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {t: _message(t) for t in types},
            "schemas": {t: consumer_schema(t) for t in types},
            "securitySchemes": {"integrator": {
                "type": "userPassword",
                "description": ("A broker user made by `wbs integrator add NAME --events PATTERN`: it may "
                                "declare and read only queues `integrator.NAME.*`, bind them only to "
                                "`<service>.events` with its patterns, read the history stream, and "
                                "never publish."),
            }},
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def committed() -> str:
    """The document as shipped in the package (what `wbs events catalogue` prints)."""
    return resources.files(__package__).joinpath(DOCUMENT_NAME).read_text()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"]:
        path = resources.files(__package__).joinpath(DOCUMENT_NAME)
        with resources.as_file(path) as target:
            target.write_text(render())
        print(f"wrote {DOCUMENT_NAME}")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

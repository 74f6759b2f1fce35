"""Event schemas, one JSON Schema per event type (schemas/<event_type>.json, version 1).

Each schema names the service whose `<service>.events` exchange carries the event
(`x-source-service`) and sets `additionalProperties: false`: an event is the one place where
data leaves a service for systems we do not control, so anything not explicitly allowed is refused.
"""
import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_VERSION = 1


class InvalidEvent(ValueError):
    """An event body does not match its contract schema."""


@lru_cache(maxsize=None)
def schema(event_type: str) -> dict:
    try:
        text = resources.files(__package__).joinpath("schemas", f"{event_type}.json").read_text()
    except FileNotFoundError:
        raise InvalidEvent(f"unknown event type {event_type!r}") from None
    return json.loads(text)


@lru_cache(maxsize=None)
def _validator(event_type: str, consumed: bool = False) -> Draft202012Validator:
    doc = schema(event_type)
    if consumed:
        doc = {**doc, "additionalProperties": True}
    return Draft202012Validator(doc, format_checker=FormatChecker())


def event_types() -> list[str]:
    folder = resources.files(__package__).joinpath("schemas")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def source_service(event_type: str) -> str:
    return schema(event_type)["x-source-service"]


def exchange_name(event_type: str) -> str:
    """nameko's convention: events of service S travel on the topic exchange `S.events`."""
    return f"{source_service(event_type)}.events"


def validate_event(event_type: str, body: dict, *, consumed: bool = False) -> None:
    """Raise InvalidEvent naming the first problem (path and rule, never the offending value).

    A producer validates strictly: nothing leaves a service that its schema does not name. A
    consumer (``consumed=True``) ignores properties it does not know, as docs/events.md asks of
    every consumer: during a rolling upgrade a newer producer adds an optional field before the
    older consumers are replaced, and they must not dead-letter its events for it.
    """
    error = next(iter(_validator(event_type, consumed).iter_errors(body)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(body)"
        raise InvalidEvent(f"{event_type}: {where} fails {error.validator!r}")

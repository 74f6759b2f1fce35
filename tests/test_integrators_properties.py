"""Every event the outbox relay publishes carries the documented AMQP properties (docs/events.md),
and reaches the history stream with them: one event of every type in the catalogue, published by
the real relay of a real nameko container, read back from `wbs.events.history`."""
import datetime as dt
import json
from contextlib import contextmanager

import pika
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase

from intake import domain
from tests.test_integrators import read_properties_from_stream
from wbs_contracts.asyncapi import example
from wbs_contracts.events import event_types, exchange_name
from wbs_plumbing.db import Database
from wbs_plumbing.history import ensure_history
from wbs_plumbing.outbox import OutboxMixin, add_event

ENVELOPE = ("schema_version", "event_id", "occurred_at")


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class Publisher:
    name = "intake"
    db = Database(Base, OutboxMessage)

    @rpc
    def stage(self, event_type, payload):
        with self.db.transaction() as session:
            return add_event(session, OutboxMessage, event_type, payload)


def test_every_published_event_has_the_documented_properties(container_factory, service_config):
    config = service_config("intake", DB_AUTO_MIGRATE=False)
    engine = create_engine(config["DATABASE_URL"])
    Base.metadata.create_all(engine)
    engine.dispose()
    types = event_types()
    assert ensure_history(config["AMQP_URI"], sorted({exchange_name(t) for t in types}))
    container = container_factory(Publisher, config)
    container.start()
    staged = []
    for event_type in types:
        payload = {k: v for k, v in example(event_type).items() if k not in ENVELOPE}
        with entrypoint_hook(container, "stage") as stage:
            staged.append(stage(event_type, payload))

    published = read_properties_from_stream(config["AMQP_URI"], len(types))
    assert [body["event_id"] for _p, _m, body in published] == [b["event_id"] for b in staged]
    for (properties, method, body), event_type in zip(published, types):
        assert method.routing_key == event_type and method.exchange == exchange_name(event_type)
        assert properties.message_id == body["event_id"]
        assert properties.type == event_type
        assert properties.content_type == "application/json"
        assert properties.content_encoding == "utf-8"
        assert isinstance(properties.timestamp, int) and properties.timestamp > 1_700_000_000
        assert properties.app_id == "intake"
        assert properties.user_id == "guest"  # the test broker's identity; RabbitMQ validated it
        assert properties.delivery_mode == pika.DeliveryMode.Persistent.value


class _Session:
    """Just enough of a SQLAlchemy session for staging: what was added, and its info dict."""

    def __init__(self):
        self.added, self.info = [], {}

    def add(self, row):
        self.added.append(row)


def test_reporter_caused_events_are_no_more_precise_than_intakes_record():
    received_at = dt.datetime(2026, 3, 2, 9, 41, tzinfo=dt.timezone.utc)  # as intake keeps it
    body = domain.record_report(_Session(), "9b2f0c1e-8d4a-4b7e-9c1d-2a3b4c5d6e7f", "itjen-keuangan",
                                "bribery", "id", "h" * 64, received_at, 0)
    assert body["occurred_at"] == "2026-03-02T09:41:00Z"

    session = _Session()

    @contextmanager
    def transaction():
        yield session

    class Vault:
        def store_message(self, report_id, message_id, text):
            pass
    domain.post_reporter_message("9b2f0c1e-8d4a-4b7e-9c1d-2a3b4c5d6e7f", "ada dokumen baru", vault=Vault(),
                                 transaction=transaction)
    posted = json.loads(next(row.body for row in session.added if row.event_type == "reporter_message_posted"))
    occurred = dt.datetime.fromisoformat(posted["occurred_at"].replace("Z", "+00:00"))
    assert (occurred.second, occurred.microsecond) == (0, 0)

"""The plumbing against real RabbitMQ and PostgreSQL: outbox relay, idempotent and reliable handlers."""
import json
import time
import uuid

import pika
import pytest
from nameko.rpc import rpc
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.fixtures import wait_until
from wbs_contracts.errors import PermanentError
from wbs_plumbing.db import Database, EventPublisher
from wbs_plumbing.deadline import Unavailable
from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin, add_event
from wbs_plumbing.reliable import DEAD_LETTER_QUEUE, event_handler


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class Note(Base):
    __tablename__ = "notes"
    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class Behaviour:
    fail_times = 0
    calls = 0
    failure = RuntimeError("transient")


class DemoService:
    name = "verification"
    db = Database(Base, OutboxMessage)

    @event_handler("intake", "report_submitted")
    def handle_report_submitted(self, event):
        Behaviour.calls += 1
        if event["category"] == "other":
            raise PermanentError("this category is refused")
        if Behaviour.fail_times > 0:
            Behaviour.fail_times -= 1
            raise Behaviour.failure
        with self.db.handle_once(event["event_id"], ProcessedEvent) as session:
            if session is None:
                return
            session.add(Note(report_id=event["report_id"]))
            add_event(session, OutboxMessage, "case_status_changed",
                      {"case_id": event["report_id"], "from_state": "received", "to_state": "verification"})

    @rpc
    def count_notes(self):
        with self.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(Note))


def report_event(**overrides):
    body = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
            "report_id": str(uuid.uuid4()), "unit": "dit-smp", "category": "fraud", "evidence_count": 0}
    body.update(overrides)
    return body


class Broker:
    """An outside pika client, as another system integrating with the WBS would be."""

    def __init__(self, uri):
        self.connection = pika.BlockingConnection(pika.URLParameters(uri))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, exchange, routing_key, body: bytes, content_type="application/json"):
        self.channel.exchange_declare(exchange, "topic", durable=True)
        self.channel.basic_publish(exchange, routing_key, body,
                                   pika.BasicProperties(content_type=content_type, delivery_mode=2))

    def listen(self, exchange, routing_key):
        self.channel.exchange_declare(exchange, "topic", durable=True)
        queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(queue, exchange, routing_key)
        return queue

    def get_all(self, queue, expected, timeout=10):
        got = []

        def fetch():
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method:
                got.append((properties, body))
            return len(got) >= expected
        wait_until(fetch, timeout)
        return got

    def close(self):
        self.connection.close()


@pytest.fixture
def demo(container_factory, service_config):
    yield from _demo(container_factory, service_config)


def _demo(container_factory, service_config, **overrides):
    Behaviour.fail_times, Behaviour.calls, Behaviour.failure = 0, 0, RuntimeError("transient")
    config = service_config("verification", DB_AUTO_MIGRATE=False, **overrides)
    from sqlalchemy import create_engine
    engine = create_engine(config["DATABASE_URL"])
    Base.metadata.create_all(engine)
    engine.dispose()
    container = container_factory(DemoService, config)
    container.start()
    broker = Broker(config["AMQP_URI"])
    yield container, broker
    broker.close()


def notes(container):
    from nameko.testing.services import entrypoint_hook
    with entrypoint_hook(container, "count_notes") as count:
        return count()


def test_outbox_event_is_published_once_per_event_even_when_delivered_twice(demo):
    container, broker = demo
    out = broker.listen("verification.events", "case_status_changed")
    event = report_event()
    broker.publish("intake.events", "report_submitted", json.dumps(event).encode())
    broker.publish("intake.events", "report_submitted", json.dumps(event).encode())
    published = broker.get_all(out, 1)
    body = json.loads(published[0][1])
    assert body["case_id"] == event["report_id"] and body["schema_version"] == 1
    wait_until(lambda: Behaviour.calls >= 2)
    assert notes(container) == 1


def test_transient_failure_is_retried_then_succeeds(demo):
    container, broker = demo
    Behaviour.fail_times = 2
    broker.publish("intake.events", "report_submitted", json.dumps(report_event()).encode())
    wait_until(lambda: notes(container) == 1)
    assert Behaviour.calls == 3


def test_a_message_parked_for_retry_when_its_replica_died_is_moved_back_by_the_next_one(
        container_factory, service_config):
    """The service itself moves parked messages back (no broker TTL): one parked by a replica
    that is gone, and due only later, still reaches the handler once another replica runs."""
    demo = _demo(container_factory, service_config)
    container, broker = next(demo)
    handler_queue = next(e.queue.name for e in container.entrypoints if hasattr(e, "movers"))
    container.kill()
    broker.channel.basic_publish("", f"{handler_queue}.retry.50ms", json.dumps(report_event()).encode(),
                                 pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                      headers={"x-wbs-attempts": 1, "x-wbs-due-ms": int(time.time() * 1000) + 1000}))
    replacement = container_factory(DemoService, container.config)
    replacement.start()
    wait_until(lambda: notes(replacement) == 1, timeout=15)
    assert Behaviour.calls == 1
    assert broker.channel.queue_declare(f"{handler_queue}.retry.50ms", passive=True).method.message_count == 0
    demo.close()


def test_an_event_with_a_field_added_by_a_newer_producer_is_handled_not_dead_lettered(demo):
    """A rolling upgrade: the producer already adds an optional field this consumer's schema does
    not name yet. Consumers ignore unknown fields (docs/events.md), so the event is handled."""
    container, broker = demo
    broker.publish("intake.events", "report_submitted", json.dumps(report_event(added_later=True)).encode())
    wait_until(lambda: notes(container) == 1)
    assert broker.get_all(DEAD_LETTER_QUEUE, 0, timeout=1) == []


@pytest.mark.parametrize("body", [
    b"{not json",
    json.dumps(report_event(unit=None)).encode(),
    json.dumps(report_event(category="other")).encode(),
])
def test_poison_message_is_dead_lettered_and_the_queue_keeps_flowing(demo, body):
    container, broker = demo
    broker.publish("intake.events", "report_submitted", body)
    broker.publish("intake.events", "report_submitted", json.dumps(report_event()).encode())
    wait_until(lambda: notes(container) == 1)
    (properties, dead), = broker.get_all(DEAD_LETTER_QUEUE, 1)
    assert dead == body
    assert properties.headers["x-wbs-original-queue"].startswith("evt-intake-report_submitted--verification")
    assert properties.headers["x-wbs-reason"]


def test_failing_handler_is_dead_lettered_after_bounded_retries(demo):
    container, broker = demo
    Behaviour.fail_times = 100
    broker.publish("intake.events", "report_submitted", json.dumps(report_event()).encode())
    (properties, _), = broker.get_all(DEAD_LETTER_QUEUE, 1)
    assert properties.headers["x-wbs-attempts"] == 3
    assert "RuntimeError" in properties.headers["x-wbs-reason"]
    assert Behaviour.calls == 3


def test_a_peer_away_longer_than_the_quick_retries_delays_the_event_but_never_dead_letters_it(demo):
    """storage (say) does not answer through more attempts than the quick retries allow: the
    report was stored, so its event waits for the peer instead of ending in the dead letters."""
    container, broker = demo
    Behaviour.fail_times, Behaviour.failure = 5, Unavailable("timeout", "read_report_content")
    broker.publish("intake.events", "report_submitted", json.dumps(report_event()).encode())
    wait_until(lambda: notes(container) == 1, timeout=30)
    assert Behaviour.calls == 6  # two quick retries allowed, five failures waited out
    assert broker.get_all(DEAD_LETTER_QUEUE, 0, timeout=1) == []


def test_a_peer_away_for_longer_than_the_transient_budget_is_dead_lettered_with_the_reason(
        container_factory, service_config):
    demo = _demo(container_factory, service_config, TRANSIENT_RETRY_SECONDS=1)
    container, broker = next(demo)
    Behaviour.fail_times, Behaviour.failure = 1000, Unavailable("timeout", "read_report_content")
    broker.publish("intake.events", "report_submitted", json.dumps(report_event()).encode())
    (properties, _), = broker.get_all(DEAD_LETTER_QUEUE, 1, timeout=30)
    assert "Unavailable" in properties.headers["x-wbs-reason"]
    assert properties.headers["x-wbs-attempts"] > 2  # more than the quick retries: it waited
    assert notes(container) == 0
    demo.close()


def relay_database(amqp_uri, pg_url, **config) -> Database:
    """A `Database` provider set up outside a container: its relay is driven by the test."""
    from types import SimpleNamespace

    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    database = Database(Base, OutboxMessage)
    database.container = SimpleNamespace(service_name="verification",
                                         config={"AMQP_URI": amqp_uri, "DATABASE_URL": pg_url, **config})
    database.setup()
    return database


def test_outbox_keeps_events_through_a_broker_outage(rabbit_uri, pg_url):
    """Committed while the broker is unreachable: the event waits in the outbox, then goes out."""
    from sqlalchemy.orm import Session

    database = relay_database("amqp://guest:guest@127.0.0.1:1/", pg_url)
    database.publisher.retry = False
    with database.get_dependency(None).transaction() as session:
        add_event(session, OutboxMessage, "case_status_changed",
                  {"case_id": str(uuid.uuid4()), "from_state": "received", "to_state": "verification"})
    with pytest.raises(Exception):
        database.relay_once()
    with Session(database.engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.published_at.is_(None))) == 1

    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    database.publisher = EventPublisher(rabbit_uri)
    assert database.relay_once() == 1
    assert len(broker.get_all(out, 1)) == 1
    assert database.relay_once() == 0
    broker.close()
    database.engine.dispose()


def unsent(database) -> int:
    from sqlalchemy.orm import Session

    with Session(database.engine) as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None)))


def stage_status_changes(database, count: int) -> list:
    with database.get_dependency(None).transaction() as session:
        return [add_event(session, OutboxMessage, "case_status_changed",
                          {"case_id": str(uuid.uuid4()), "from_state": "received", "to_state": "verification"})
                for _ in range(count)]


@pytest.mark.parametrize("path", ["handed over", "swept"])
def test_a_relay_that_dies_after_the_confirms_before_its_mark_leaves_the_rows_for_the_sweep(path, rabbit_uri, pg_url):
    """Both ways out of the outbox: the rows a commit handed over (marked by one autocommit
    UPDATE after the confirms), and the sweep's (marked by an UPDATE ... RETURNING that commits
    after the confirms). A relay that dies in between leaves the rows unsent, and the sweep
    publishes them again. A duplicate, which consumers drop by event_id; never a loss."""
    from eventlet.event import Event

    database = relay_database(rabbit_uri, pg_url, OUTBOX_SWEEP_AFTER_SECONDS=60)
    if path == "handed over":
        database._wake = Event()  # as while the relay runs: commits hand their rows over
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    staged = stage_status_changes(database, 2)
    publish = database._publish

    def publish_then_die(rows):
        publish(rows)
        assert [row.event_id for row in rows] == [e["event_id"] for e in staged]  # one batch
        raise SystemExit("killed after the broker confirmed, before the mark")
    database._publish = publish_then_die
    with pytest.raises(SystemExit):
        database.publish_handed() if path == "handed over" else database.relay_once()
    assert unsent(database) == 2
    database._publish = publish
    assert database.relay_once() == 2 and database.relay_once() == 0
    got = broker.get_all(out, 4)
    assert [json.loads(body)["event_id"] for _, body in got] == [e["event_id"] for e in staged] * 2
    assert {(p.content_type, p.content_encoding, p.message_id) for p, _ in got} == {
        ("application/json", "utf-8", e["event_id"]) for e in staged}
    broker.close()
    database.publisher.close()
    database.engine.dispose()


def test_the_sweep_leaves_young_rows_to_the_relay_they_were_handed_to_and_takes_stale_ones(rabbit_uri, pg_url):
    """A row younger than OUTBOX_SWEEP_AFTER_SECONDS belongs to the process that committed it;
    a handed-over row that waited longer than half of that (a relay far behind) is left to the
    sweep instead of published from memory, so the two rarely publish the same row."""
    from eventlet.event import Event

    database = relay_database(rabbit_uri, pg_url, OUTBOX_SWEEP_AFTER_SECONDS=60)
    database._wake = Event()
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    late = stage_status_changes(database, 1)
    assert database.relay_once(older_than=60) == 0  # too young to sweep
    database._handed[0] = database._handed[0]._replace(handed_at=time.monotonic() - 31)
    assert database.publish_handed() == 0 and unsent(database) == 1  # left to the sweep
    assert database.relay_once() == 1
    (_, body), = broker.get_all(out, 1)
    assert json.loads(body)["event_id"] == late[0]["event_id"]
    broker.close()
    database.publisher.close()
    database.engine.dispose()


def test_the_relay_marks_the_confirmed_events_of_many_commits_in_one_statement_once_the_oldest_has_waited(
        rabbit_uri, pg_url):
    """Three commits, three hand-overs: all three are published at once, and their marks wait
    until the oldest confirmed id is MARK_EVERY_SECONDS old, then go in one UPDATE."""
    from eventlet.event import Event
    from wbs_plumbing.metrics import SQL_STATEMENTS

    database = relay_database(rabbit_uri, pg_url, OUTBOX_SWEEP_AFTER_SECONDS=60)
    database._wake = Event()
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    staged = [event for _ in range(3) for event in stage_status_changes(database, 1)]
    assert database.publish_handed() == 3
    assert [json.loads(body)["event_id"] for _, body in broker.get_all(out, 3)] == [e["event_id"] for e in staged]
    assert unsent(database) == 3 and database.mark_confirmed(every=60) == 0  # too soon: gathered
    statements = SQL_STATEMENTS._value.get()
    assert database.mark_confirmed(every=0) == 3
    assert SQL_STATEMENTS._value.get() - statements == 1
    assert unsent(database) == 0 and database.mark_confirmed() == 0
    broker.close()
    database.publisher.close()
    database.engine.dispose()


def test_a_commit_hands_its_events_to_the_running_relay_which_publishes_and_marks_them_at_once(rabbit_uri, pg_url):
    """No sweep in this test's minute: what arrives was handed over by the commit, in order, and
    is marked sent (one attempt). A rolled-back transaction hands nothing over."""
    import eventlet

    database = relay_database(rabbit_uri, pg_url, OUTBOX_POLL_SECONDS=60, OUTBOX_SWEEP_AFTER_SECONDS=60)
    database.container.spawn_managed_thread = lambda run, identifier=None: eventlet.spawn(run)
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    database.start()
    try:
        eventlet.sleep(0.2)  # the relay's first sweep, of an empty table, is over
        with pytest.raises(RuntimeError):
            with database.get_dependency(None).transaction() as session:
                add_event(session, OutboxMessage, "case_status_changed",
                          {"case_id": str(uuid.uuid4()), "from_state": "received", "to_state": "verification"})
                raise RuntimeError("the handler failed after staging")
        staged = stage_status_changes(database, 3)
        got = broker.get_all(out, 3, timeout=10)
        assert [json.loads(body)["event_id"] for _, body in got] == [e["event_id"] for e in staged]
        wait_until(lambda: unsent(database) == 0, timeout=10)
        from sqlalchemy.orm import Session
        with Session(database.engine) as session:
            assert set(session.scalars(select(OutboxMessage.attempts))) == {1}
        eventlet.sleep(0.5)
        assert broker.channel.basic_get(out, auto_ack=True)[0] is None  # nothing else, nothing twice
    finally:
        database.stop()
        eventlet.sleep(0.1)
        broker.close()
        database.engine.dispose()


def test_a_batch_is_published_in_full_before_its_confirms_are_awaited_and_survives_a_lost_connection(rabbit_uri, pg_url):
    """Twenty events of one sweep: every publish goes out before the first wait for a confirm.
    Then the relay's connection dies under it: the next batch opens a new one and goes out."""
    import socket

    from amqp import spec

    database = relay_database(rabbit_uri, pg_url)
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    first = stage_status_changes(database, 20)
    channel = database.publisher._ensure_channel()
    calls = []
    for name in ("basic_publish", "wait"):
        def spy(*args, _name=name, _real=getattr(channel, name), **kwargs):
            if _name == "basic_publish" or spec.Basic.Ack in args[0]:  # not the exchange's declare
                calls.append(_name)
            return _real(*args, **kwargs)
        setattr(channel, name, spy)
    assert database.relay_once() == 20
    assert calls[:20] == ["basic_publish"] * 20 and set(calls[20:]) == {"wait"}
    assert len(broker.get_all(out, 20)) == 20

    dead = database.publisher._connection.connection
    dead.transport.sock.shutdown(socket.SHUT_RDWR)
    second = stage_status_changes(database, 2)
    assert database.relay_once() == 2 and unsent(database) == 0
    assert database.publisher._connection.connection is not dead
    got = [json.loads(body)["event_id"] for _, body in broker.get_all(out, 2)]
    assert got == [e["event_id"] for e in second] and not set(got) & {e["event_id"] for e in first}
    broker.close()
    database.publisher.close()
    database.engine.dispose()


def test_an_event_nobody_subscribes_to_is_confirmed_and_marked_sent_without_a_reconnect(rabbit_uri, pg_url, caplog):
    """RabbitMQ returns an unroutable event (mandatory) before confirming it: the relay hears the
    return, marks the event sent, says so once per event type, and keeps its one connection."""
    import logging

    from sqlalchemy.orm import Session

    database = relay_database(rabbit_uri, pg_url)

    def stage(count):
        with database.get_dependency(None).transaction() as session:
            for _ in range(count):
                add_event(session, OutboxMessage, "case_status_changed",
                          {"case_id": str(uuid.uuid4()), "from_state": "received", "to_state": "verification"})

    caplog.set_level(logging.INFO, logger="wbs_plumbing.db")
    stage(1)
    assert database.relay_once() == 1  # nobody bound: returned, then confirmed
    transport = database.publisher._connection.connection
    stage(2)
    assert database.relay_once() == 2
    broker = Broker(rabbit_uri)
    out = broker.listen("verification.events", "case_status_changed")
    stage(1)
    assert database.relay_once() == 1
    assert len(broker.get_all(out, 1)) == 1  # routed once a queue is bound
    assert database.publisher._connection.connection is transport  # never reconnected
    assert transport.connected
    with Session(database.engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.published_at.is_(None))) == 0
    assert sum("has no subscriber queue" in r.getMessage() for r in caplog.records) == 1
    broker.close()
    database.publisher.close()
    database.engine.dispose()


def test_a_service_stopped_while_its_consumers_start_stops_without_an_error(service_config):
    """A replica told to stop during its start (its queue consumer not yet consuming): each
    handler and each retry mover leaves the shared consumer. nameko fired its one-shot "last
    provider gone" event once per provider then, so the second raised in the stopping process."""
    from nameko.containers import ServiceContainer

    from wbs_plumbing.reliable import ReliableEventHandler

    container = ServiceContainer(DemoService, service_config("verification", DB_AUTO_MIGRATE=False))
    handlers = [e for e in container.entrypoints if isinstance(e, ReliableEventHandler)]
    for handler in handlers:
        handler.setup()  # registers the handler and its retry movers with the queue consumer
    consumer = handlers[0].queue_consumer
    assert not consumer._consumers_ready.ready() and len(handlers[0].movers) > 1
    for handler in handlers:
        handler.stop()
    assert consumer._last_provider_unregistered.ready()


def test_a_finished_worker_lets_go_of_its_arguments(container_factory, service_config):
    """A worker context lives in a reference cycle until the garbage collector finds it; the
    ``Ops`` provider empties its arguments at teardown, so a 1 MiB evidence chunk is freed when
    the call ends, not collections later (storage grew 72 MiB on a 1 GiB upload before)."""
    from nameko.extensions import DependencyProvider
    from nameko.testing.services import entrypoint_hook

    from wbs_plumbing.ops import Ops

    seen = []

    class Keep(DependencyProvider):
        def worker_setup(self, worker_ctx):
            seen.append(worker_ctx)

    class Chunks:
        name = "chunks"
        ops = Ops()
        keep = Keep()

        @rpc
        def size(self, chunk):
            return len(chunk)

    container = container_factory(Chunks, service_config("verification", DB_AUTO_MIGRATE=False))
    container.start()
    with entrypoint_hook(container, "size") as size:
        assert size(b"x" * 1024 * 1024) == 1024 * 1024
    (worker_ctx,) = seen
    wait_until(lambda: worker_ctx.args == () and worker_ctx.kwargs == {})

"""The `Database` DependencyProvider: one service's own database, and its outbox relay.

Why the relay lives here: the outbox is a table of this database, and draining it is the only
thing that reads it. A transaction that staged events hands its rows to the relay once it has
committed: the relay publishes them at once, from memory, and after the broker's confirms
marks them sent with one autocommit UPDATE, gathering the marks of up to ``MARK_EVERY_SECONDS``
into one statement. It also sweeps the table every
``OUTBOX_POLL_SECONDS`` for rows nobody handed over that are older than
``OUTBOX_SWEEP_AFTER_SECONDS`` (a crash between commit and publish, a broker outage, a replica
that died), so those go out later. Either way at least once: a relay that dies after a confirm,
before its mark, leaves a row the sweep publishes again, and consumers drop the duplicate.

Driver notes (docs/architecture.md §4.5): psycopg2 is made eventlet-friendly with psycogreen, so a slow
query yields to the hub instead of starving AMQP heartbeats. SQLite (the embedded default) gets a
one-connection pool: greenthreads queue for the connection instead of fighting over SQLite's file
lock inside C code, where a blocked greenthread would block the whole process.
"""
import logging
import os
import sys
import time
from collections import deque
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from wbs_plumbing.config import database_url, flag
from wbs_plumbing.metrics import AUTOCOMMIT_OPTION, count_publish, count_sql
from wbs_plumbing.migrations import migrate, wait_for_head
from wbs_plumbing.sockets import spoken_unasked
from wbs_plumbing.outbox import OUTBOX_STAGED, committed, mark_published, message_properties, take_pending_batch

log = logging.getLogger(__name__)


def green_postgres() -> None:
    """Let psycopg2 wait on the eventlet hub (no-op unless eventlet patched the socket module)."""
    if eventlet.patcher.is_monkey_patched("socket"):
        import psycogreen.eventlet
        psycogreen.eventlet.patch_psycopg()


def make_engine(url: str):
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                               connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
        count_sql(engine)
        return engine
    green_postgres()
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=POOL_RECYCLE_SECONDS,
                           connect_args=TCP_KEEPALIVES)
    event.listen(engine, "checkout", _drop_if_server_hung_up)
    count_sql(engine)
    return engine


#: A pooled connection older than this is replaced at its next checkout (a bound on how long a
#: connection some middlebox forgot about can linger).
POOL_RECYCLE_SECONDS = 1800
#: libpq TCP keepalives: a peer that vanished without a word (no FIN) is noticed in about a minute
#: instead of the kernel's retransmission timeout, and then counts as hung up below.
TCP_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def _drop_if_server_hung_up(dbapi_connection, _record, _proxy):
    """Hand out a pooled connection only if the server has not hung up on it; no round trip.

    Why not ``pool_pre_ping``: it sends a ``SELECT 1`` before every transaction, a round trip
    the database and this process pay on each of the ~20 transactions a report costs. An idle
    pooled connection has nothing to read, so if its socket is readable the server has spoken
    unasked: a backend terminated (``pg_terminate_backend``, a restart, an idle timeout) sends a
    FATAL message and closes. Raising ``DisconnectionError`` makes the pool discard it and check
    out another (a fresh one if needed), so the transaction starts on a live connection. A
    server that dies mid-transaction still fails that transaction; the callers retry (reliable
    handlers, the relay, the RPC caller's deadline), as they did with the ping.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("connection closed")
    if spoken_unasked(dbapi_connection.fileno()):
        raise DisconnectionError("the server hung up on this pooled connection")


def alembic_dir_for(base) -> Path:
    """services/<svc>/alembic, found from the module that defines the service's models."""
    return Path(sys.modules[base.__module__].__file__).resolve().parents[1] / "alembic"


@contextmanager
def session_scope(engine):
    """Yield a Session; commit if the block succeeds, roll back if it raises.

    Domain functions never commit: this is the one place that does (tests that drive domain
    functions without a container use it too, so they commit exactly as production does).
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommit(engine):
    """A connection on which each statement commits on its own: no BEGIN and COMMIT round trips.

    Why not SQLAlchemy's ``AUTOCOMMIT`` isolation level: handing such a connection back to the
    pool costs a ``SET default_transaction_isolation`` round trip, and every later transaction
    on it a longer BEGIN. psycopg2's own switch is client-side; it is put back before the
    connection returns to the pool. (SQLite, in development, just commits.)
    """
    with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            yield connection
            connection.commit()
            return
        connection.execution_options(**{AUTOCOMMIT_OPTION: True})  # not counted as a transaction
        raw = connection.connection.dbapi_connection
        raw.autocommit = True
        try:
            yield connection
        finally:
            raw.autocommit = False


class DatabaseSession:
    """What a worker gets: transactions, and the idempotency guard for event handlers."""

    def __init__(self, provider: "Database"):
        self._provider = provider
        self.engine = provider.engine

    @contextmanager
    def transaction(self):
        """Yield a Session (see `session_scope`); after a commit that staged events, hand them to
        the relay."""
        with session_scope(self.engine) as session:
            yield session
            staged = session.info.pop(OUTBOX_STAGED, None)
        if staged:
            self._provider.hand_over(committed(staged, time.monotonic()))

    @contextmanager
    def handle_once(self, event_id: str, processed_model, consumer: str = ""):
        """Yield a Session for handling event `event_id`, or None if it was handled before.

        The processed-event row commits with the handler's effect, so a redelivered event (after
        a crash, a lost ack, or a duplicate publish by the outbox) does nothing twice. One
        statement, ``INSERT ... ON CONFLICT DO NOTHING``, both claims the event and tells whether
        it was handled before. Two deliveries racing each other: the second insert waits for the
        first transaction; if that commits, the second does nothing, if it rolls back, the
        second handles the event.
        """
        with self.transaction() as session:
            if not insert_unless_present(session, processed_model, event_id=event_id, consumer=consumer):
                yield None
                return
            yield session


def dialect_insert(session):
    """The ``insert`` construct with ``ON CONFLICT`` of the session's database (PostgreSQL, or
    SQLite in development): one statement where a read, a savepoint and a write would cost four
    round trips."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def insert_unless_present(session, model, **values) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``: adds a row unless one with the same key exists.
    Returns whether it added it."""
    return session.execute(dialect_insert(session)(model).values(**values).on_conflict_do_nothing()).rowcount == 1


#: Most events the relay takes in one transaction.
RELAY_BATCH = 100

#: How long the relay gathers the ids of confirmed events before marking them sent in one
#: statement. Under load that is one UPDATE for many events instead of one a commit; a relay that
#: dies before its mark only makes the sweep publish those events again, and a mark older than
#: this is far younger than any sweep takes (OUTBOX_SWEEP_AFTER_SECONDS).
MARK_EVERY_SECONDS = 0.25


class Database(DependencyProvider):
    """A service's own database (DATABASE_URL, or SQLite under WBS_DATA_DIR) and outbox relay.

    Config: DATABASE_URL, DB_AUTO_MIGRATE (true: run Alembic to head at start, under the
    migration lock; false: wait up to DB_MIGRATE_WAIT_SECONDS [600] until a migration job has
    brought the schema to head), OUTBOX_POLL_SECONDS [1] (how often the relay sweeps the table),
    OUTBOX_SWEEP_AFTER_SECONDS [10] (how old an unsent row must be before a sweep takes it from
    the process that committed it).
    """

    def __init__(self, base, outbox_model=None):
        self.base = base
        self.outbox_model = outbox_model
        self.engine = None
        self._wake = None
        self._stopping = False

    def setup(self):
        config = self.container.config
        self.url = database_url(config, self.container.service_name)
        if flag(config.get("DB_AUTO_MIGRATE")):
            migrate(alembic_dir_for(self.base), self.url)
        else:
            wait_for_head(alembic_dir_for(self.base), self.url,
                          timeout=float(config.get("DB_MIGRATE_WAIT_SECONDS") or
                                        os.environ.get("DB_MIGRATE_WAIT_SECONDS") or 600))
        self.engine = make_engine(self.url)
        self.poll_seconds = float(config.get("OUTBOX_POLL_SECONDS") or os.environ.get("OUTBOX_POLL_SECONDS") or 1.0)
        self.sweep_after_seconds = float(config.get("OUTBOX_SWEEP_AFTER_SECONDS")
                                         or os.environ.get("OUTBOX_SWEEP_AFTER_SECONDS") or 10.0)
        self._handed: deque = deque()
        self._unmarked: list[int] = []  # confirmed, not yet marked sent
        self._unmarked_since = 0.0
        self.publisher = EventPublisher(config["AMQP_URI"])
        self._unrouted_types: set[str] = set()

    def start(self):
        if self.outbox_model is not None:
            self._wake = Event()
            self._stopping = False
            self.container.spawn_managed_thread(self._relay_forever, identifier="outbox-relay")

    def stop(self):
        self._stopping = True
        self.wake_relay()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return DatabaseSession(self)

    # -- the relay ---------------------------------------------------------------------

    def wake_relay(self):
        if self._wake is not None and not self._wake.ready():
            self._wake.send(True)

    def hand_over(self, rows: list):
        """Committed rows (`wbs_plumbing.outbox.Staged`) for the relay to publish now."""
        if self._wake is not None:  # a relay runs; otherwise the sweep takes them
            self._handed.extend(rows)
            self.wake_relay()

    def _relay_forever(self, limit: int = RELAY_BATCH):
        next_sweep = 0.0
        try:
            while True:
                # a fresh wake-up before draining: a commit during the drain wakes the next round
                self._wake = Event()
                try:
                    self.publish_handed(limit)  # on a stop too: what the last workers committed
                    self.mark_confirmed(every=0 if self._stopping else MARK_EVERY_SECONDS)
                    if self._stopping:
                        break
                    if time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + self.poll_seconds
                        while self.relay_once(limit, older_than=self.sweep_after_seconds) == limit:
                            pass  # fewer than a full batch: drained
                except Exception:  # broker or database away: keep the rows, the sweep retries them
                    self._handed.clear()
                    log.warning("outbox relay: publish failed, will retry", exc_info=True)
                    if self._stopping:
                        break
                    eventlet.sleep(self.poll_seconds)
                wake_by = self._unmarked_since + MARK_EVERY_SECONDS if self._unmarked else next_sweep
                with eventlet.Timeout(max(0.0, min(next_sweep, wake_by) - time.monotonic()), False):
                    self._wake.wait()
        finally:  # stopped or killed: never in the middle of a publish on this greenthread
            self._wake = None
            self._handed.clear()  # unsent in the table: the next start's sweep takes them
            self.publisher.close()

    def publish_handed(self, limit: int = RELAY_BATCH) -> int:
        """Publish the rows handed over since the last round, in commit order, in batches each
        confirmed by the broker; return how many were published. Their ids wait for `mark_confirmed`.

        A row handed over longer ago than half of ``OUTBOX_SWEEP_AFTER_SECONDS`` (a relay far
        behind) is left to the sweep, so the two rarely publish the same row. A failed publish
        raises: the rows stay unsent in the table, for the sweep.
        """
        published, waiting = 0, len(self._handed)  # only these: later ones wait for the next round,
        while waiting:                               # so a busy process still sweeps on time
            batch = [self._handed.popleft() for _ in range(min(limit, waiting))]
            waiting -= len(batch)
            stale = time.monotonic() - self.sweep_after_seconds / 2
            fresh = [row for row in batch if row.handed_at >= stale]
            if fresh:
                self._publish(fresh)
                if not self._unmarked:
                    self._unmarked_since = time.monotonic()
                self._unmarked.extend(row.id for row in fresh)
                published += len(fresh)
        return published

    def mark_confirmed(self, every: float = 0) -> int:
        """Mark the confirmed rows sent, in one autocommit statement per `RELAY_BATCH`, once the
        oldest has waited `every` seconds; return how many were marked. A row a sweep already
        published keeps its mark. If the database is away the ids are kept for the next round."""
        if not self._unmarked or time.monotonic() - self._unmarked_since < every:
            return 0
        ids, now = self._unmarked, datetime.now(timezone.utc)
        with autocommit(self.engine) as connection:
            for start in range(0, len(ids), RELAY_BATCH):
                mark_published(connection, self.outbox_model, ids[start:start + RELAY_BATCH], now)
        self._unmarked = []
        return len(ids)

    def relay_once(self, limit: int = RELAY_BATCH, older_than: float = 0) -> int:
        """Sweep: publish up to `limit` committed events staged more than `older_than` seconds
        ago; return how many were handled."""
        with Session(self.engine) as session, session.begin():
            rows = take_pending_batch(session, self.outbox_model, limit, datetime.now(timezone.utc), older_than)
            if rows:
                self._publish(rows)
        return len(rows)

    def _publish(self, rows) -> None:
        """Publish `rows` as one batch (one wait for the broker's confirms); raises unless all
        were confirmed."""
        uri, service = self.container.config["AMQP_URI"], self.container.service_name
        routed = self.publisher.publish_all([(row.body, _topic_exchange(row.exchange), row.event_type,
                                              message_properties(row, uri, service)) for row in rows])
        for row, was_routed in zip(rows, routed):
            if not was_routed and row.event_type not in self._unrouted_types:
                # No queue is bound for this event type (not even the history stream): nobody
                # subscribes to it, so there is no place for it to wait. Consumers' queues are
                # declared by deploy definitions and by each consumer at start, before traffic
                # (docs/architecture.md §4.4). Said once per type and process, not once per event.
                self._unrouted_types.add(row.event_type)
                log.info("event %s has no subscriber queue (said once; %s)", row.event_type, row.event_id)


class EventPublisher:
    """Publishes the relay's events with ``mandatory`` and publisher confirms, on one AMQP
    connection of its own, kept open: a batch is published in full, then its confirms are
    awaited together, so a batch of events costs the broker's round trip once, not once an
    event.

    Why not nameko's `Publisher` (or kombu's producer with ``confirm_publish``): both wait for
    each message's confirm before the next, and on an event no queue is bound for, RabbitMQ
    returns it (basic.return) before confirming it; py-amqp raises on a return nobody listens
    for, kombu then throws the pooled channel away, and the next event opened a new connection:
    a reconnect per unrouted event, and a storm of them under load. Here returns and confirms are
    heard by listeners on the channel, and `publish_all` says which events were routed. An error
    or a nack closes the connection and raises: the relay keeps the rows unmarked, and the next
    attempt opens a new connection (after kombu's retries).
    """

    #: Longest wait for a batch's confirms (a quorum queue confirms once a majority has it).
    CONFIRM_TIMEOUT = 30.0

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.retry = True
        self._connection = self._channel = None
        self._returned: set = set()
        self._published = 0  # delivery tags given on this channel (confirm mode numbers from 1)
        self._confirmed_through = 0  # every tag up to this one is confirmed
        self._confirmed_above: set[int] = set()  # single confirms beyond it
        self._nacked = False

    def _on_return(self, _exc, _exchange, _routing_key, message):
        self._returned.add(message.properties.get("message_id"))

    def _on_ack(self, delivery_tag: int, multiple: bool):
        if multiple:
            self._confirmed_through = max(self._confirmed_through, delivery_tag)
        else:
            self._confirmed_above.add(delivery_tag)
        while self._confirmed_through + 1 in self._confirmed_above:
            self._confirmed_through += 1
            self._confirmed_above.discard(self._confirmed_through)

    def _on_nack(self, _delivery_tag: int, _multiple: bool):
        self._nacked = True

    def _ensure_channel(self):
        if self._channel is None:
            from kombu import Connection
            from nameko.constants import DEFAULT_RETRY_POLICY, DEFAULT_TRANSPORT_OPTIONS

            connection = Connection(self.amqp_uri, transport_options=DEFAULT_TRANSPORT_OPTIONS)
            if self.retry:
                connection.ensure_connection(**DEFAULT_RETRY_POLICY)
            channel = connection.default_channel
            channel.confirm_select()
            channel.events["basic_return"].add(self._on_return)
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._connection, self._channel = connection, channel
            self._published = self._confirmed_through = 0
            self._confirmed_above.clear()
            self._nacked = False
        return self._channel

    def publish_all(self, events) -> list[bool]:
        """Publish ``events``, each ``(body_json, exchange, routing_key, properties)``, in order
        (the JSON text as the outbox stored it, not parsed and serialised again; ``properties``
        from ``message_properties``), then wait for the broker's confirms of all of them; return
        for each whether a queue was bound for it. Raises if any is not confirmed.

        A connection lost on the way is opened again and the whole batch published once more
        (an event confirmed before the loss then goes twice; consumers drop it by event_id).
        """
        attempts = 2 if self.retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._publish_confirmed(events)
            except TimeoutError:
                raise  # the broker is slow, not gone: the rows wait for the next round
            except Exception:
                if attempt == attempts:
                    raise
                log.info("outbox relay: connection lost while publishing, publishing the batch again")

    def _publish_confirmed(self, events) -> list[bool]:
        from amqp import spec
        from kombu.common import maybe_declare
        from nameko.constants import PERSISTENT

        try:
            channel = self._ensure_channel()
            for exchange in {exchange.name: exchange for _, exchange, _, _ in events}.values():
                maybe_declare(exchange, channel)  # once a connection: kombu remembers it
            message_ids = []
            for body_json, exchange, routing_key, properties in events:
                properties = dict(properties)
                message = channel.prepare_message(
                    body_json.encode(properties.get("content_encoding") or "utf-8"),
                    content_type=properties.pop("content_type", None),
                    content_encoding=properties.pop("content_encoding", None),
                    properties=dict(properties, delivery_mode=PERSISTENT))
                channel.basic_publish(message, exchange=exchange.name, routing_key=routing_key, mandatory=True)
                self._published += 1
                message_ids.append(properties.get("message_id"))
            deadline = time.monotonic() + self.CONFIRM_TIMEOUT
            while self._confirmed_through < self._published and not self._nacked:
                channel.wait([spec.Basic.Ack, spec.Basic.Nack], timeout=max(0.001, deadline - time.monotonic()))
            if self._nacked:
                raise RuntimeError("the broker refused (nacked) an event of the batch")
            if self._confirmed_through < self._published:
                raise TimeoutError(f"no confirm from the broker in {self.CONFIRM_TIMEOUT} s")
        except Exception:
            self.close()
            raise
        for _ in message_ids:
            count_publish("event", confirmed=True)
        routed = [message_id not in self._returned for message_id in message_ids]
        self._returned.difference_update(message_ids)
        return routed

    def close(self):
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 -- already gone
                pass


def _topic_exchange(name: str):
    from kombu import Exchange
    return Exchange(name, type="topic", durable=True)

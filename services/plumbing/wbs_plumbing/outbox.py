"""Transactional outbox: an event is stored in the same transaction as the change it announces.

nameko's `EventDispatcher` publishes the moment it is called: a crash between the database commit
and the publish (or a broker outage) loses the event, and a rollback after the publish announces
something that never happened. Instead, domain code adds an `OutboxMessage` row with `add_event`;
the `Database` dependency's relay publishes committed rows with publisher confirms and marks them
sent. Delivery is therefore at least once, which is why every consumer is idempotent
(`ProcessedEventMixin`).
"""
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from wbs_contracts.events import SCHEMA_VERSION, exchange_name, validate_event

from wbs_plumbing.clock import utcnow  # noqa: F401 -- also imported from here by storage

log = logging.getLogger(__name__)

#: ``session.info`` key: the outbox rows this transaction staged, handed to the relay once it
#: commits (``wbs_plumbing.db``).
OUTBOX_STAGED = "wbs_outbox_staged"


class Staged(NamedTuple):
    """A committed outbox row as the relay publishes it, handed over without reading it back."""

    id: int
    event_id: str
    exchange: str
    event_type: str
    body: str
    created_at: datetime
    handed_at: float  # time.monotonic() at the commit


def committed(rows, handed_at: float) -> list:
    """The rows a transaction staged, as `Staged`, once it has committed (their ids came back from
    the INSERT; nothing is read again)."""
    return [Staged(row.id, row.event_id, row.exchange, row.event_type, row.body, row.created_at, handed_at)
            for row in rows]


class OutboxMixin:
    """Columns of a service's `outbox` table."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class ProcessedEventMixin:
    """Columns of a service's `processed_events` table: one row per (event, consumer) handled."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def add_event(session, outbox_model, event_type: str, payload: dict) -> dict:
    """Stage `event_type` for publication when `session` commits; return the full body.

    Adds `schema_version`, `event_id` and `occurred_at`, then validates against the contract
    schema *before* anything is stored: an event that would leak a field not in the contract
    fails the whole transaction instead of reaching other systems.
    """
    body = {
        "schema_version": SCHEMA_VERSION,
        "event_id": str(uuid.uuid4()),
        "occurred_at": utcnow().isoformat().replace("+00:00", "Z"),
        **payload,
    }
    validate_event(event_type, body)
    row = outbox_model(event_id=body["event_id"], exchange=exchange_name(event_type), event_type=event_type,
                       body=json.dumps(body, separators=(",", ":")), attempts=0)
    session.add(row)
    session.info.setdefault(OUTBOX_STAGED, []).append(row)
    return body


def message_properties(row, amqp_uri: str, service: str) -> dict:
    """AMQP properties of a published event, so a consumer needs no body parsing to route or
    deduplicate it: ``message_id`` = event_id, ``type`` = event type, ``content_type``, a
    ``timestamp`` (Unix seconds, when it was staged), ``app_id`` = the producing service, and the
    ``user_id`` of the publishing connection, which RabbitMQ validates: with one broker identity
    per service it proves the producer (``wbs_plumbing.reliable``)."""
    from wbs_plumbing.reliable import broker_user

    created = row.created_at or utcnow()
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return {"message_id": row.event_id, "type": row.event_type,
            "content_type": "application/json", "content_encoding": "utf-8",
            "timestamp": int(created.timestamp()), "app_id": service, "user_id": broker_user(amqp_uri)}


def take_pending_batch(session, outbox_model, limit: int, now: datetime, older_than: float = 0) -> list:
    """Mark up to `limit` unsent rows staged more than `older_than` seconds ago published and
    return them, oldest first: one statement.

    This is the relay's sweep for rows no process handed over (a crash between commit and
    publish, a broker outage, another replica's leftovers); younger rows are left to the process
    that committed them. The mark is only a promise until the caller commits, which the relay
    does after every row is published and confirmed; a failed publish rolls it back and the rows
    are taken again (at least once, never lost). On PostgreSQL rows another relay holds are
    skipped, never waited on.
    """
    table = outbox_model.__table__
    unsent = (select(table.c.id).where(table.c.published_at.is_(None),
                                       table.c.created_at <= now - timedelta(seconds=older_than))
              .order_by(table.c.id).limit(limit).with_for_update(skip_locked=True))
    taken = session.execute(
        update(table).where(table.c.id.in_(unsent))
        .values(published_at=now, attempts=table.c.attempts + 1)
        .returning(table.c.id, table.c.event_id, table.c.exchange, table.c.event_type,
                   table.c.body, table.c.created_at)).all()
    return sorted(taken, key=lambda row: row.id)


def mark_published(connection, outbox_model, ids: list, now: datetime) -> None:
    """Mark handed-over rows published after their confirms: one statement, on a connection in
    autocommit (no BEGIN and COMMIT round trips). A row a sweep already published keeps its
    mark."""
    table = outbox_model.__table__
    connection.execute(update(table).where(table.c.id.in_(ids), table.c.published_at.is_(None))
                       .values(published_at=now, attempts=table.c.attempts + 1))

"""wbs_plumbing.db on PostgreSQL: a pooled connection the server hung up on is never handed to a
transaction, and no ping round trip is paid for that (the checkout check replaces
pool_pre_ping); `handle_once` claims an event in one statement and acts on it once."""
from types import SimpleNamespace

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.orm import DeclarativeBase

from tests.fixtures import PG_ADMIN_URL, wait_until
from wbs_plumbing import metrics
from wbs_plumbing.db import DatabaseSession, make_engine, session_scope
from wbs_plumbing.outbox import OutboxMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class Processed(ProcessedEventMixin, Base):
    pass


class Outbox(OutboxMixin, Base):
    pass


def _backend_pid(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(text("SELECT pg_backend_pid()"))


def test_a_pooled_connection_killed_with_pg_terminate_backend_is_survived(pg_url):
    engine = make_engine(pg_url)
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # pooled: the same backend serves the next transaction
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()

        def gone():
            with admin.connect() as connection:
                return not connection.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"),
                                              {"pid": first}).first()
        wait_until(gone)
        statements = metrics.SQL_STATEMENTS._value.get()
        with session_scope(engine) as session:  # no error: the dead connection was dropped at checkout
            session.execute(text("CREATE TABLE survived (x int)"))
            session.execute(text("INSERT INTO survived VALUES (1)"))
            second = session.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
        assert metrics.SQL_STATEMENTS._value.get() - statements == 3
        with session_scope(engine) as session:
            assert session.scalar(text("SELECT count(*) FROM survived")) == 1
    finally:
        engine.dispose()
        admin.dispose()


def test_no_ping_before_a_transaction(pg_url):
    """The server sees only the transaction's own statements: no SELECT 1 per checkout."""
    engine = make_engine(pg_url)
    seen = []
    sqlalchemy.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    try:
        for _ in range(3):
            with session_scope(engine) as session:
                session.execute(text("SELECT 42"))
        assert engine.pool._pre_ping is False
        assert seen == ["SELECT 42"] * 3
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_handle_once_acts_once_per_event_and_consumer_in_one_statement(backend, pg_url, tmp_path):
    engine = make_engine(pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'once.db'}")
    Base.metadata.create_all(engine)
    db = DatabaseSession(SimpleNamespace(engine=engine, hand_over=lambda rows: None))
    handled = []
    try:
        for consumer in ("a", "a", "b"):
            statements = metrics.SQL_STATEMENTS._value.get()
            with db.handle_once("e-1", Processed, consumer) as session:
                if session is not None:
                    handled.append(consumer)
            assert metrics.SQL_STATEMENTS._value.get() - statements == 1
        assert handled == ["a", "b"]
        with pytest.raises(RuntimeError):  # a failed handler leaves the event unclaimed
            with db.handle_once("e-2", Processed) as session:
                raise RuntimeError("handler failed")
        with db.handle_once("e-2", Processed) as session:
            assert session is not None
        with session_scope(engine) as session:
            assert session.scalar(text("SELECT count(*) FROM processed_events")) == 3
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_sweep_takes_only_rows_past_its_age_and_the_autocommit_mark_is_one_statement(backend, pg_url, tmp_path):
    """The relay's two database steps on both databases: the sweep takes unsent rows older than
    its age, oldest first; the mark after a hand-over is one statement, no BEGIN or COMMIT
    counted, and leaves a row already marked as it was."""
    import datetime as dt
    import uuid

    from wbs_plumbing.db import autocommit
    from wbs_plumbing.outbox import add_event, mark_published, take_pending_batch

    engine = make_engine(pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'relay.db'}")
    Base.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with session_scope(engine) as session:
            staged = [add_event(session, Outbox, "case_status_changed", {
                "case_id": str(uuid.uuid4()), "from_state": "received", "to_state": "verification"})
                for _ in range(3)]
            session.flush()
            ids = {row.event_id: row.id for row in session.scalars(sqlalchemy.select(Outbox))}
            session.get(Outbox, ids[staged[0]["event_id"]]).created_at = now - dt.timedelta(seconds=30)
        with session_scope(engine) as session:
            taken = take_pending_batch(session, Outbox, 100, now, older_than=10)
            assert [row.event_id for row in taken] == [staged[0]["event_id"]]
        statements = metrics.SQL_STATEMENTS._value.get()
        transactions = sum(metrics.DB_TRANSACTIONS.labels(outcome)._value.get() for outcome in ("commit", "rollback"))
        later = now + dt.timedelta(seconds=1)
        with autocommit(engine) as connection:
            mark_published(connection, Outbox, list(ids.values()), later)
        assert metrics.SQL_STATEMENTS._value.get() - statements == 1
        if backend == "postgresql":
            assert sum(metrics.DB_TRANSACTIONS.labels(outcome)._value.get()
                       for outcome in ("commit", "rollback")) == transactions
        with session_scope(engine) as session:
            marks = {row.event_id: (row.published_at, row.attempts) for row in session.scalars(sqlalchemy.select(Outbox))}
        assert marks[staged[0]["event_id"]][1] == 1  # the sweep's mark stays: one attempt
        assert {attempts for _, attempts in marks.values()} == {1}
        assert all(published is not None for published, _ in marks.values())
    finally:
        engine.dispose()

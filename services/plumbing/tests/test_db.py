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
from wbs_plumbing.outbox import ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class Processed(ProcessedEventMixin, Base):
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

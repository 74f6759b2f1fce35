"""Fixtures for the verification service's own tests (shared servers come from tests/fixtures.py)."""
import datetime as dt

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from verification import auth
from verification.demo import seed_demo
from verification.models import Base


@pytest.fixture
def insecure_fast_password_hashing():
    """INSECURE: Argon2id at the smallest cost, so tests that create accounts run fast.

    Gives both the cost object (unit tests) and the config overrides (integration tests).
    Production settings refuse these values.
    """
    cost = auth.HashingCost(time_cost=1, memory_kib=8, parallelism=1)
    return {
        "cost": cost,
        "passwords": auth.Passwords(cost),
        "config": {
            "ARGON2_TIME_COST": cost.time_cost,
            "ARGON2_MEMORY_KIB": cost.memory_kib,
            "ARGON2_PARALLELISM": cost.parallelism,
        },
    }


@pytest.fixture
def passwords(insecure_fast_password_hashing):
    return insecure_fast_password_hashing["passwords"]


@pytest.fixture
def session():
    """An in-memory SQLite session with the service's tables (unit tests; no server)."""
    engine = create_engine("sqlite://")

    @event.listens_for(engine, "connect")
    def _fk_on(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def demo(session, passwords):
    """The demo directory: itjen > dit-smp (inspektur and supervisor at itjen) and, apart,
    itama-kpu > kpu-ri, kpu-dki (inspektur-kpu at itama-kpu)."""
    result = seed_demo(session, passwords, development=True)
    session.flush()
    return result


NOW = dt.datetime(2026, 11, 23, 10, 0, 0, tzinfo=dt.timezone.utc)

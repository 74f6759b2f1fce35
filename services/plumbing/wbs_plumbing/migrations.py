"""Alembic, driven from code, one migration history per service.

Each service keeps `services/<svc>/alembic/` with an `env.py` that calls `run_env(metadata)`;
`migrate(alembic_dir, url)` upgrades a database to head without an alembic.ini, so `make run`,
`wbs migrate`, the services at start-up (`DB_AUTO_MIGRATE`) and the tests all migrate the same way.

Why a lock: replicas started together (``docker compose up --scale``, a Deployment with three
replicas, a migration Job beside them) used to run Alembic at the same moment; the second one
crashed on ``alembic_version``'s unique key, or worse, ran a DDL step twice. On PostgreSQL every
migration now runs under a session-level advisory lock taken on the connection that migrates:
the others wait, then find the schema at head and do nothing. SQLite (one process, development)
needs no lock. A service started with ``DB_AUTO_MIGRATE=false`` does not migrate at all: it waits
(`wait_for_head`) until a migration job has brought the schema to the head it was built for.
"""
import hashlib
import logging
import time
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

log = logging.getLogger(__name__)


def alembic_config(alembic_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def lock_key(alembic_dir: Path) -> int:
    """A stable signed 64-bit advisory-lock key per migration history (i.e. per service)."""
    digest = hashlib.sha256(f"wbs-migrate:{Path(alembic_dir).resolve().parent.name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def migrate(alembic_dir: Path, url: str) -> None:
    """Upgrade the database at `url` to head; on PostgreSQL under an advisory lock (see above)."""
    config = alembic_config(Path(alembic_dir), url)
    if not url.startswith("postgresql"):
        command.upgrade(config, "head")
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            key = lock_key(alembic_dir)
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


def head_revisions(alembic_dir: Path) -> set:
    return set(ScriptDirectory.from_config(alembic_config(Path(alembic_dir), "sqlite://")).get_heads())


def current_revisions(url: str) -> set:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def wait_for_head(alembic_dir: Path, url: str, timeout: float = 600.0, interval: float = 1.0,
                  sleep=time.sleep) -> None:
    """Block until the database's schema is at this code's head revision (never migrates).

    Used with ``DB_AUTO_MIGRATE=false``: the migration job (``wbs migrate``) owns the schema, and
    a replica that started first must not serve against an older one. Raises TimeoutError after
    `timeout` seconds, so the orchestrator restarts the replica and the wait shows in its logs.
    A database that cannot be reached yet counts as "not at head" (it may still be starting).
    """
    if not Path(alembic_dir).is_dir():
        return  # no migration history for these models: nothing to wait for
    heads = head_revisions(alembic_dir)
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            current = current_revisions(url)
        except Exception as exc:  # noqa: BLE001 -- a database still starting is not an error yet
            current = {f"unreachable ({type(exc).__name__})"}
        if current == heads:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"database schema is at {sorted(current) or 'nothing'}, this code "
                               f"needs {sorted(heads)}: run `wbs migrate` (the migration job)")
        if not announced:
            log.warning("waiting for the migration job: schema at %s, need %s",
                        sorted(current) or "nothing", sorted(heads))
            announced = True
        sleep(interval)


def run_env(metadata) -> None:
    """Body of every service's alembic/env.py (online mode only: we always have the database)."""
    url = context.config.get_main_option("sqlalchemy.url")
    connectable = context.config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection, metadata)
        engine.dispose()
    else:
        _run(connectable, metadata)


def _run(connection, metadata) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def schema_differences(alembic_dir: Path, url: str, metadata) -> list:
    """Migrate a database, then list how its schema differs from the models (empty = equal)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    migrate(alembic_dir, url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            ctx = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()

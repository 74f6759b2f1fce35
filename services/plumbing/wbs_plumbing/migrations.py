"""Alembic, driven from code, one migration history per service.

Each service keeps `services/<svc>/alembic/` with an `env.py` that calls `run_env(metadata)`;
`migrate(alembic_dir, url)` upgrades a database to head without an alembic.ini, so `make run`,
the services at start-up (`DB_AUTO_MIGRATE`) and the tests all migrate the same way.
"""
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, pool


def alembic_config(alembic_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(alembic_dir))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(alembic_dir: Path, url: str) -> None:
    command.upgrade(alembic_config(Path(alembic_dir), url), "head")


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

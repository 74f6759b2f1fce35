"""Migrations never race: `wbs migrate` and replicas started together on a fresh PostgreSQL database.

Before the advisory lock, the second of two replicas started together crashed with
``UniqueViolation`` on ``alembic_version``. Here two migration jobs and three replicas of one
service start at the same moment on an empty database; all must come up, with one schema.
"""
import os
import subprocess
import sys
from pathlib import Path

import requests
import sqlalchemy

from tests.fixtures import free_port, wait_until
from wbs_plumbing.db import alembic_dir_for
from wbs_plumbing.migrations import head_revisions

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def environment(tmp_path, rabbit_uri, url, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFICATION_", "WBS_", "SMTP_"))}
    env.update({"AMQP_URI": rabbit_uri, "NOTIFICATION_DATABASE_URL": url, "WBS_ENV": "development",
                "WBS_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1", **extra})
    return env


def replica(tmp_path, rabbit_uri, url, n, **extra):
    address = f"127.0.0.1:{free_port()}"
    env = environment(tmp_path, rabbit_uri, url, NOTIFICATION_OPS_ADDRESS=address, **extra)
    log = open(tmp_path / f"replica-{n}.log", "wb")
    process = subprocess.Popen(
        [str(BIN / "nameko"), "run", "--config", str(ROOT / "services/notification/config.yml"),
         "notification.service"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, address


def migration(tmp_path, rabbit_uri, url):
    return subprocess.Popen([str(BIN / "wbs"), "migrate", "notification"], cwd=ROOT,
                            env=environment(tmp_path, rabbit_uri, url),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def is_ready(address) -> bool:
    try:
        return requests.get(f"http://{address}/readyz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def stop(processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def schema_heads(url):
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()


def notification_heads():
    from notification.models import Base
    return head_revisions(alembic_dir_for(Base))


def test_two_migrations_and_three_replicas_at_once_on_a_fresh_database(tmp_path, rabbit_uri, pg_url):
    replicas = [replica(tmp_path, rabbit_uri, pg_url, n, DB_AUTO_MIGRATE="true") for n in range(3)]
    migrations = [migration(tmp_path, rabbit_uri, pg_url) for _ in range(2)]
    try:
        for job in migrations:
            output = job.communicate(timeout=120)[0].decode()
            assert job.returncode == 0, output
        wait_until(lambda: all(is_ready(address) for _, address in replicas), timeout=120, interval=0.5)
        for n, (process, _) in enumerate(replicas):
            assert process.poll() is None, (tmp_path / f"replica-{n}.log").read_text()
    finally:
        stop([process for process, _ in replicas] + migrations)
    for n in range(3):
        log = (tmp_path / f"replica-{n}.log").read_text()
        assert "UniqueViolation" not in log and "Traceback" not in log, log
    assert sorted(schema_heads(pg_url)) == sorted(notification_heads())


def test_a_replica_without_auto_migrate_waits_for_the_migration_job(tmp_path, rabbit_uri, pg_url):
    process, address = replica(tmp_path, rabbit_uri, pg_url, 0, DB_AUTO_MIGRATE="false")
    try:
        wait_until(lambda: "waiting for the migration job" in (tmp_path / "replica-0.log").read_text(),
                   timeout=60, interval=0.2)
        assert not is_ready(address) and process.poll() is None
        job = migration(tmp_path, rabbit_uri, pg_url)
        assert job.wait(timeout=120) == 0, job.stdout.read().decode()
        wait_until(lambda: is_ready(address), timeout=60, interval=0.5)
    finally:
        stop([process])
    assert sorted(schema_heads(pg_url)) == sorted(notification_heads())

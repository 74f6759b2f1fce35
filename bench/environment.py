"""A throw-away RabbitMQ vhost and PostgreSQL databases for one benchmark, removed afterwards,
and the CPU groups every benchmark reports (its processes, RabbitMQ, its PostgreSQL backends).
"""
from __future__ import annotations

import uuid

import sqlalchemy

from bench.timing import CpuSampler, pids_named, postgres_backends
from tests.fixtures import PG_ADMIN_URL, rabbitmqctl


class Throwaway:
    """``with Throwaway("real", ["intake", ...]) as env``: env.amqp_uri, env.databases[name]."""

    def __init__(self, label: str, database_names: list[str]):
        run = uuid.uuid4().hex[:8]
        self.vhost = f"wbs-bench-{label}-{run}"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.db_names = {name: f"wbs_bench_{run}_{name}" for name in database_names}
        self.databases = {name: PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db for name, db in self.db_names.items()}
        self.admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                                              poolclass=sqlalchemy.pool.NullPool)

    def __enter__(self) -> "Throwaway":
        rabbitmqctl("eval", f'rabbit_vhost:add(<<"{self.vhost}">>, <<"wbs-bench">>), '
                            f'rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"{self.vhost}">>, '
                            '<<".*">>, <<".*">>, <<".*">>, <<"wbs-bench">>).')
        with self.admin.connect() as connection:
            for db in self.db_names.values():
                connection.exec_driver_sql(f'CREATE DATABASE "{db}"')
        return self

    def __exit__(self, *exc):
        with self.admin.connect() as connection:
            for db in self.db_names.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.admin.dispose()
        rabbitmqctl("delete_vhost", self.vhost)

    def cpu_sampler(self, processes: dict) -> CpuSampler:
        """CPU by group: each of `processes` ({name: Popen}), ``rabbitmq`` (the broker's Erlang VM:
        it is shared, so other load on it counts too) and ``postgres`` (the
        backends connected to this benchmark's databases)."""
        backends = postgres_backends(self.admin, list(self.db_names.values()))
        beam = pids_named("beam.smp", "-s rabbit boot")

        def groups():
            found = {name: [process.pid] for name, process in processes.items()}
            found["rabbitmq"] = beam
            found["postgres"] = backends()
            return found
        return CpuSampler(groups)

"""Faults, not assumptions: a verification worker killed after it took `report_submitted` but
before its transaction committed. What must not be lost: the report's case. What must not
happen twice: the case itself.

storage runs beside verification because verification opens a case only for a report the vault
holds, and routing reads the report's parties from it (conflict-of-interest check); the report's
content is stored first, as intake would.
"""
import json
import time
import uuid

import pika
import sqlalchemy
from nameko.testing.services import entrypoint_hook
from tests.signed import signed_hook

from tests.fixtures import wait_until
from storage.service import StorageService
from verification.service import VerificationService


def count_cases(url, report_id):
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM cases WHERE report_id = %s", (report_id,)).scalar()
    engine.dispose()
    return count


def test_killed_before_commit_yields_exactly_one_case_after_restart(container_factory, service_config):
    config = service_config("verification")
    storage = container_factory(StorageService, service_config("storage", REQUIRE_SEALED_TRANSIT=False))
    storage.start()
    first = container_factory(VerificationService, config)
    first.start()
    with signed_hook(first, "add_unit") as add_unit:
        add_unit("rel-itjen", "Inspektorat", inspectorate=True)
        add_unit("rel-dit", "Direktorat", parent="rel-itjen")

    # Hold a lock on the cases table so the handler blocks inside its transaction.
    blocker = sqlalchemy.create_engine(config["DATABASE_URL"], poolclass=sqlalchemy.pool.NullPool)
    held = blocker.connect()
    held.exec_driver_sql("BEGIN")
    held.exec_driver_sql("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")

    report_id = str(uuid.uuid4())
    content = {"unit": "rel-dit", "category": "fraud", "description": "Kronologi.",
               "parties": [{"name": "Budi S.", "position": "Bendahara", "unit": "rel-dit"}]}
    with entrypoint_hook(storage, "store_report_content") as store_report_content:
        store_report_content(report_id, json.dumps(content).encode())
    event = {"schema_version": 1, "event_id": str(uuid.uuid4()), "occurred_at": "2026-11-23T10:00:00Z",
             "report_id": report_id, "unit": "rel-dit", "category": "fraud", "evidence_count": 0}
    connection = pika.BlockingConnection(pika.URLParameters(config["AMQP_URI"]))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish("intake.events", "report_submitted", json.dumps(event).encode(),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def handler_is_waiting_on_the_lock():
        rows = held.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
        return rows.scalar() > 0
    wait_until(handler_is_waiting_on_the_lock, timeout=15)

    first.kill()  # the worker dies mid-transaction; its message was never acknowledged
    held.exec_driver_sql("ROLLBACK")
    held.close()
    blocker.dispose()
    assert count_cases(config["DATABASE_URL"], report_id) == 0

    second = container_factory(VerificationService, config)
    second.start()
    wait_until(lambda: count_cases(config["DATABASE_URL"], report_id) == 1, timeout=20)
    time.sleep(1)  # a duplicate would show up here
    assert count_cases(config["DATABASE_URL"], report_id) == 1
    connection.close()

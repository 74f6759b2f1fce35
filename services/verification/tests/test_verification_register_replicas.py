"""Register numbers with two verification replicas (two containers on one broker and one
PostgreSQL database) opening cases from the same queue at once: every case gets a number, no
number twice, no gap."""
import sqlalchemy

from test_verification_integration import (  # noqa: F401  (fixtures)
    broker, config, count, db, publish, report_event, seed, storage,
)
from tests.fixtures import wait_until
from verification.worker_tier import VerificationWorkers


def test_two_replicas_never_give_a_number_twice(container_factory, config, storage, broker, db):
    first = container_factory(VerificationWorkers, config)
    second = container_factory(VerificationWorkers, dict(config))
    first.start()
    second.start()
    seed(first)
    for _ in range(40):
        publish(broker, report_event())
    wait_until(lambda: count(db, "SELECT count(*) FROM cases") == 40, 120)
    with db.connect() as connection:
        refs = sorted(r[0] for r in connection.execute(sqlalchemy.text("SELECT reference FROM cases")))
    year = refs[0].split("/")[2]
    assert refs == [f"WBS/ITJEN/{year}/{n:05d}" for n in range(1, 41)]

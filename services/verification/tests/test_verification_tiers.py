"""verification run as its two tiers, the way a deployment scales them: the web tier (inspector
API and console) and the worker tier (events, deadline timer, RPC), two containers named
``verification`` on one broker and one database, doing together what the one-process service does.
"""
import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from tests.fixtures import wait_until

from test_verification_integration import (  # noqa: F401  (fixtures)
    base_url, broker, config, db, login, open_one, seed, storage, watch,
)
from verification.web_tier import VerificationWeb
from verification.worker_tier import VerificationWorkers

CASE_EVENTS = {"case_opened", "case_assigned", "case_status_changed"}


@pytest.fixture
def tiers(container_factory, config):
    workers = container_factory(VerificationWorkers, config)
    workers.start()
    web = container_factory(VerificationWeb, config)
    web.start()
    return web, workers


def test_the_worker_tier_routes_the_web_tier_serves_and_each_does_only_its_part(tiers, storage, broker, db, config):
    web, workers = tiers
    demo = seed(workers)
    events = watch(broker)
    _, case_id = open_one(workers, broker, db)  # opened and routed by the workers

    base = base_url(config)
    auth = login(base, demo["inspector"])  # signed in through the web tier
    moved = requests.post(f"{base}/api/v1/cases/{case_id}/transitions", json={"to": "verification"},
                          headers=auth, timeout=10)
    assert moved.status_code == 200, moved.text
    # the web tier's own outbox relay announces its transition, next to the workers' events
    assert wait_until(lambda: CASE_EVENTS <= {kind for kind, _ in events(0)}, 15)

    web.stop()  # the workers serve no HTTP ...
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/login", timeout=5)
    with ServiceRpcProxy("verification", dict(config)) as verification:  # ... but answer every RPC
        assert "dit-smp" in {unit["code"] for unit in verification.list_units()}

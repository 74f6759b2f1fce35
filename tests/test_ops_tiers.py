"""Web and worker tiers: each service's entrypoints split into a tier with HTTP only and one
without HTTP, nothing lost and nothing in both, so the two scale apart (deploy/README.md)."""
import inspect

import requests
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from intake.service import IntakeService
from intake.tiers import IntakeWeb, IntakeWorker
from verification.service import VerificationService
from verification.web_tier import VerificationWeb
from verification.worker_tier import VerificationWorkers


def entrypoints(cls) -> dict:
    return {name: getattr(member, ENTRYPOINT_EXTENSIONS_ATTR) for name, member in inspect.getmembers(cls)
            if getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, None)}


def is_http(extensions) -> bool:
    return any(isinstance(e, HttpRequestHandler) for e in extensions)


def test_each_tier_has_its_kind_of_entrypoints_and_together_they_are_the_service():
    for whole, web, worker in ((IntakeService, IntakeWeb, IntakeWorker),
                               (VerificationService, VerificationWeb, VerificationWorkers)):
        web_eps, worker_eps = entrypoints(web), entrypoints(worker)
        assert web_eps and worker_eps
        assert all(is_http(e) for e in web_eps.values()), web
        assert not any(is_http(e) for e in worker_eps.values()), worker
        assert not set(web_eps) & set(worker_eps)
        assert set(web_eps) | set(worker_eps) == set(entrypoints(whole))
        assert web.name == worker.name == whole.name


def test_the_intake_web_tier_serves_http(container_factory, service_config):
    config = service_config("intake")
    container = container_factory(IntakeWeb, config)
    container.start()
    answer = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/api/v1/categories", timeout=10)
    assert answer.status_code == 200 and answer.json()

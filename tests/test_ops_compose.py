"""deploy/compose_check.py's production rules (issue: operable in production), each seen to fail:
a reverse proxy publishes 8000/8001, services publish nothing and scale, every image is pinned,
healthchecks go through /readyz, and the migration one-shot runs before the services."""
from pathlib import Path

import pytest

from tests.test_compose_check import compose, compose_check, problems_of  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
WBS = ("intake", "storage", "verification", "notification")


def test_the_real_file_scales_each_service_behind_the_proxy(compose, tmp_path):
    assert problems_of(compose, tmp_path) == []
    services = compose["services"]
    assert services["proxy"]["image"].startswith("caddy:")
    assert sorted(services["proxy"]["ports"]) == ["8000:8000", "8001:8001"]
    for name in WBS:
        assert "ports" not in services[name] and "container_name" not in services[name]
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("image", ["minio/minio:latest", "postgres", "rabbitmq:4", "caddy:latest"])
def test_an_unpinned_image_is_a_problem(compose, tmp_path, image):
    name = {"minio": "minio", "postgres": "postgres", "rabbitmq": "rabbitmq", "caddy": "proxy"}[
        image.split("/")[0].split(":")[0]]
    compose["services"][name]["image"] = image
    assert problems_of(compose, tmp_path) == [f"service {name}: image {image!r} is not pinned to a version"]


def test_the_built_image_must_be_pinned_too(compose, tmp_path):
    compose["x-wbs-image"] = None
    for name in WBS + ("migrate", "rabbitmq-definitions"):
        compose["services"][name]["image"] = "wbs:latest"
    found = problems_of(compose, tmp_path)
    assert "service intake: image 'wbs:latest' is not pinned to a version" in found


def test_a_service_without_a_readyz_healthcheck_is_a_problem(compose, tmp_path):
    del compose["services"]["notification"]["healthcheck"]
    compose["services"]["storage"]["environment"]["STORAGE_OPS_ADDRESS"] = "0.0.0.0:9999"
    assert sorted(problems_of(compose, tmp_path)) == [
        "service notification: needs a healthcheck calling its ops listener's /readyz",
        "service storage: STORAGE_OPS_ADDRESS must listen on the port its healthcheck calls"]


def test_services_must_wait_for_the_migration_one_shot(compose, tmp_path):
    del compose["services"]["intake"]["depends_on"]["migrate"]
    compose["services"]["verification"]["environment"]["DB_AUTO_MIGRATE"] = "true"
    assert sorted(problems_of(compose, tmp_path)) == [
        "service intake: must depend on the migration one-shot (service_completed_successfully)",
        "service verification: must run with DB_AUTO_MIGRATE=false (the one-shot migrates)"]


def test_no_migration_one_shot_or_a_restarting_one_is_a_problem(compose, tmp_path):
    compose["services"]["migrate"]["restart"] = "always"
    assert problems_of(compose, tmp_path) == ["service migrate: the migration one-shot must not restart"]
    del compose["services"]["migrate"]
    for name in WBS:
        del compose["services"][name]["depends_on"]["migrate"]
    found = problems_of(compose, tmp_path)
    assert "no one-shot service runs `wbs migrate`" in found


def test_a_fixed_container_name_prevents_scaling(compose, tmp_path):
    compose["services"]["verification"]["container_name"] = "wbs-verification"
    assert problems_of(compose, tmp_path) == ["service verification: container_name prevents --scale"]


def test_the_caddyfile_proxies_every_replica_and_logs_nothing():
    caddyfile = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    assert "dynamic a intake 8000" in caddyfile and "dynamic a verification 8001" in caddyfile
    directives = [line.strip() for line in caddyfile.splitlines() if not line.strip().startswith("#")]
    assert not [d for d in directives if d.split(" ")[0] == "log"]
    assert "header_up -X-Forwarded-For" in directives

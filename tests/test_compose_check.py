"""deploy/compose_check.py on the real docker-compose.yml, and on broken variants so each rule is
seen to fail. Docker itself cannot run here; these are the checks that can."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compose_check = load("wbs_compose_check", ROOT / "deploy" / "compose_check.py")


def test_the_real_compose_file_has_no_problems():
    assert compose_check.check_compose(COMPOSE) == []


def test_the_check_reads_the_file_as_written_after_nameko_has_read_a_config():
    """nameko's config loading teaches yaml.SafeLoader to substitute ${VAR} from the
    environment, process-wide; the check must still judge the compose file's own text."""
    from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    assert compose_check.check_compose(COMPOSE) == []


@pytest.fixture
def compose():
    return compose_check.load_yaml(COMPOSE.read_text())


def problems_of(doc, tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc))
    return compose_check.check_compose(path, root=ROOT)


def test_the_variants_start_clean(compose, tmp_path):
    assert problems_of(compose, tmp_path) == []


def test_an_extra_published_port_is_a_problem(compose, tmp_path):
    compose["services"]["mail"]["ports"] = ["8025:8025"]
    assert problems_of(compose, tmp_path) == ["port 8025 is published by mail; only 8000 and 8001 may be"]


@pytest.mark.parametrize("entry", ["5672", {"target": 5672}, "127.0.0.1::5672"])
def test_a_random_host_port_is_a_problem(compose, tmp_path, entry):
    compose["services"]["rabbitmq"]["ports"] = [entry]
    found = problems_of(compose, tmp_path)
    assert len(found) == 1 and "random host port" in found[0]


def test_a_web_port_on_a_service_instead_of_the_proxy_is_a_problem(compose, tmp_path):
    compose["services"]["intake"]["ports"] = ["8001:8001"]
    found = problems_of(compose, tmp_path)
    assert ("port 8001 (the inspector console) must be published by the reverse proxy (caddy, nginx "
            "or traefik), not by intake") in found
    assert "service intake: publishes ports; only the reverse proxy may (replicas could not scale)" in found


def test_host_networking_is_a_problem(compose, tmp_path):
    compose["services"]["notification"]["network_mode"] = "host"
    assert "service notification: network_mode host publishes every port" in problems_of(compose, tmp_path)


def test_a_variable_a_service_reads_must_be_set(compose, tmp_path):
    del compose["services"]["notification"]["environment"]["SMTP_HOST"]
    del compose["services"]["storage"]["environment"]["S3_ENDPOINT"]
    found = problems_of(compose, tmp_path)
    assert "service notification: notification reads SMTP_HOST, which is not set" in found
    assert "service storage: storage reads S3_ENDPOINT, which is not set" in found
    assert len(found) == 2


def test_variables_read_come_from_config_and_settings(tmp_path):
    svc = tmp_path / "services" / "demo"
    (svc / "demo").mkdir(parents=True)
    (svc / "config.yml").write_text("# ${NOT_READ:x}\nA: ${ALPHA:1}\nB: !raw_env_var \"${BETA:}\"  # ${NOR_THIS}\n")
    (svc / "demo" / "settings.py").write_text("import os\nx = os.environ.get('GAMMA')\ny = os.environ[\"DELTA\"]\n")
    assert compose_check.variables_read("demo", tmp_path) == {"ALPHA", "BETA", "GAMMA", "DELTA"}


def test_services_must_run_in_production(compose, tmp_path):
    compose["services"]["intake"]["environment"]["WBS_ENV"] = "development"
    assert problems_of(compose, tmp_path) == ["service intake: must run with WBS_ENV=production"]


def test_structure_problems(compose, tmp_path):
    broken = copy.deepcopy(compose)
    broken["servics"] = {}
    broken["services"]["mail"]["imagee"] = "x"
    broken["services"]["notification"]["depends_on"]["nowhere"] = {"condition": "service_healthy"}
    broken["services"]["postgres"]["depends_on"] = {"mail": {"condition": "when_ready"}}
    broken["services"]["minio"]["volumes"] = ["undeclared:/data"]
    broken["services"]["storage"]["secrets"] = ["missing_secret"]
    del broken["services"]["mail"]["image"]
    found = problems_of(broken, tmp_path)
    assert sorted(found) == sorted([
        "unknown top-level key 'servics'",
        "service mail: unknown key 'imagee'",
        "service mail: needs an image or a build",
        "service notification: depends on unknown service 'nowhere'",
        "service postgres: depends_on mail: unknown condition 'when_ready'",
        "service minio: named volume 'undeclared' is not declared at the top level",
        "service storage: secret 'missing_secret' is not declared at the top level",
    ])


def test_unreadable_or_empty_files(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("services: [")
    assert compose_check.check_compose(path)[0].startswith("cannot read")
    path.write_text("name: x\n")
    assert compose_check.check_compose(path) == ["services must be a non-empty mapping"]


# --- RabbitMQ definitions -------------------------------------------------------------------------

definitions = load("wbs_rabbit_definitions", ROOT / "deploy" / "rabbitmq" / "definitions.py")


def test_committed_definitions_match_what_the_services_declare():
    """Regenerate with `python deploy/rabbitmq/definitions.py generate` when this fails."""
    committed = json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    assert committed == definitions.topology()
    names = {q["name"] for q in committed["queues"]}
    assert "wbs.dead-letters" in names
    assert "evt-verification-case_assigned--notification.handle_case_assigned" in names


def test_password_hash_is_rabbitmq_sha256_format():
    import base64
    import hashlib
    encoded = definitions.rabbit_password_hash("correct horse", salt=b"\x01\x02\x03\x04")
    raw = base64.b64decode(encoded)
    assert raw[:4] == b"\x01\x02\x03\x04"
    assert raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04correct horse").digest()


def test_render_refuses_a_weak_password(tmp_path, monkeypatch):
    monkeypatch.setenv("RABBITMQ_PASSWORD", "guest")
    with pytest.raises(SystemExit):
        definitions.render(tmp_path / "d.json")

"""deploy/kubernetes/: rendered by kustomize, validated against the Kubernetes and KEDA schemas,
and held to the production rules (probes on the ops port, resources, a PodDisruptionBudget and a
NetworkPolicy per role, secrets referenced not embedded, only storage holds the object-store
secret, HPA for web roles, KEDA on queue depth for worker roles, a migration Job).

Validators: `kubernetes-validate` (PyPI; the Kubernetes OpenAPI schemas, strict: unknown fields
are errors) and, for KEDA's ScaledObject and TriggerAuthentication, the JSON schema of the models
`cloudcoil-models-keda` (PyPI) generates from KEDA's CRDs, made strict the same way. No cluster
runs here: a server-side dry run is not possible; these are the checks that can run.
"""
import importlib
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.33.0"
WEB = {"intake", "verification-console"}
WORKERS = {"intake-worker", "verification-worker", "storage", "notification"}


def render(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed: make test installs it"
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def strict(schema):
    """Forbid properties a schema does not name (as the API server's strict field validation does)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


KEDA_MODELS = ROOT / ".venv" / "keda-models"  # `make test` installs them there (Makefile)


def keda_schema(kind: str) -> dict:
    import sys
    assert (KEDA_MODELS / "cloudcoil").is_dir(), "KEDA's schemas are missing: run `make test`"
    if str(KEDA_MODELS) not in sys.path:
        sys.path.append(str(KEDA_MODELS))
    from cloudcoil.models.keda import v1alpha1
    return strict(getattr(v1alpha1, kind).model_json_schema(by_alias=True, mode="validation"))


def validate(doc: dict) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(doc, keda_schema(doc["kind"]))
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def docs(request):
    return render(KUBE / request.param)


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_rendered_object_is_valid_against_its_schema(docs):
    assert len(docs) > 20
    for doc in docs:
        validate(doc)


def test_the_validators_reject_what_a_cluster_would(docs):
    deployment = dict(by_kind(docs, "Deployment")["wbs-storage"])
    deployment["spec"] = dict(deployment["spec"], replicas="three")
    with pytest.raises(Exception):
        validate(deployment)
    scaled = dict(by_kind(docs, "ScaledObject")["wbs-storage"])
    scaled["spec"] = dict(scaled["spec"], minReplicas=1)  # KEDA calls it minReplicaCount
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def test_each_role_is_probed_on_the_ops_port_and_sized(docs):
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {f"wbs-{r}" for r in WEB | WORKERS}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "ops", "containerPort": 9100} in container["ports"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        # the command names a module that defines a nameko service
        module, _, cls = container["command"][-1].partition(":")
        assert getattr(importlib.import_module(module), cls) if cls else importlib.import_module(module)


def test_each_role_has_a_disruption_budget_and_a_network_policy(docs):
    roles = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in by_kind(docs, "Deployment").values()}
    budgets = {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for d in by_kind(docs, "PodDisruptionBudget").values()}
    policies = by_kind(docs, "NetworkPolicy")
    assert budgets == roles
    assert roles <= {p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") for p in policies.values()}
    assert policies["wbs-default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for role in roles:
        rules = policies[f"wbs-{role}"]["spec"]["ingress"]
        public = [r for r in rules if any(p["port"] in (8000, 8001) for p in r["ports"])]
        assert bool(public) == (role in WEB), role  # only the web roles are reachable from the ingress
        for rule in public:
            assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}


def test_secrets_are_referenced_never_embedded_and_only_storage_gets_the_object_store(docs):
    assert by_kind(docs, "Secret") == {}
    for name, deployment in by_kind(docs, "Deployment").items():
        text = yaml.safe_dump(deployment)
        assert ("wbs-object-store" in text) == (name == "wbs-storage"), name
        assert ("wbs-keys" in text) == (name == "wbs-storage"), name


def test_web_roles_scale_on_cpu_and_worker_roles_on_queue_depth(docs):
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(docs, "HorizontalPodAutoscaler").values()}
    assert hpas == {f"wbs-{r}" for r in WEB}
    scaled = by_kind(docs, "ScaledObject")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == {f"wbs-{r}" for r in WORKERS}
    for s in scaled.values():
        assert s["spec"]["triggers"] and all(t["type"] == "rabbitmq" and t["metadata"]["mode"] == "QueueLength"
                                             for t in s["spec"]["triggers"])


def test_the_migration_job_and_the_ingress(docs):
    job = by_kind(docs, "Job")["wbs-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["wbs", "migrate"]
    config = by_kind(docs, "ConfigMap")["wbs-config"]["data"]
    assert config["DB_AUTO_MIGRATE"] == "false" and config["LOG_FORMAT"] == "json"
    backends = {p["backend"]["service"]["name"] for rule in by_kind(docs, "Ingress")["wbs"]["spec"]["rules"]
                for p in rule["http"]["paths"]}
    assert backends == {"wbs-intake", "wbs-verification-console"}

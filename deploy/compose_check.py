"""Static checks of docker-compose.yml, because Docker cannot run where the tests run.

``check_compose(path)`` returns a list of problems (empty = fine):

1. **Compose basics.** Top-level keys are those of the Compose specification (or ``x-``
   extensions); ``services`` is a non-empty mapping; every service has an ``image`` or a
   ``build``, uses only known service keys, writes ``environment`` as a mapping or a list of
   ``KEY=VALUE``; ``depends_on`` names existing services with a valid condition; named volumes,
   secrets and networks a service uses are declared at the top level.
2. **Only the two web surfaces are published, by the reverse proxy.** The host ports published
   by the whole stack are exactly 8000 (the reporter site) and 8001 (the inspector console), both
   by the reverse proxy (a Caddy, nginx or Traefik image), and no service uses
   ``network_mode: host`` (which would publish everything). The WBS services publish nothing
   and set no ``container_name``, so ``--scale intake=2 --scale verification=3 --scale
   notification=2`` is valid.
3. **Every variable a service reads is set for it.** A compose service runs WBS service ``svc``
   when its command is ``nameko run --config services/<svc>/config.yml <svc>.service``. The
   variables ``svc`` reads are every ``${VAR`` in ``services/<svc>/config.yml`` and every
   ``os.environ``/``os.getenv`` name in ``services/<svc>/<svc>/settings.py``. Each must be in
   that compose service's ``environment`` (an empty value counts: it is a deliberate choice), or
   be provided as ``VAR_FILE``. Production configuration is explicit: nothing is left to a
   default an operator never saw. The services must also run with ``WBS_ENV=production``.
4. **Every image is pinned**: a tag naming a release (at least ``major.minor``, e.g.
   PostgreSQL's ``16.10``; the stack uses full versions where the project has them, or a MinIO
   ``RELEASE.`` stamp) or a digest, the locally built one included; never ``latest``, a bare
   major version or no tag.
5. **Healthchecks through /readyz**: every WBS service has a healthcheck that calls its ops
   listener's ``/readyz``, and sets its ``<SVC>_OPS_ADDRESS`` to the port that healthcheck calls.
6. **The migration one-shot before the services**: a service runs ``wbs migrate`` with
   ``restart: "no"``; every WBS service depends on it with ``service_completed_successfully``
   and runs with ``DB_AUTO_MIGRATE=false``.

Run it by hand: ``python deploy/compose_check.py [docker-compose.yml]``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TOP_LEVEL_KEYS = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"}
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts",
    "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform",
    "ports", "post_start", "pre_stop", "privileged", "profiles", "pull_policy", "read_only", "restart",
    "runtime", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts",
    "volumes", "volumes_from", "working_dir",
}
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART_POLICIES = {"no", "always", "on-failure", "unless-stopped"}
ALLOWED_PUBLISHED = {8000: "the reporter site", 8001: "the inspector console"}
PROXY_IMAGES = ("caddy", "nginx", "traefik")
PINNED_TAG = re.compile(r":(v?\d+\.\d+[^:/]*|RELEASE\.[^:/]+)$|@sha256:[0-9a-f]{64}$")
READYZ_PORT = re.compile(r"127\.0\.0\.1:(\d+)/readyz|localhost:(\d+)/readyz")

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
ENV_READ = re.compile(r"""os\.(?:environ\.get|getenv|environ\.setdefault)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
                      r"""|os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]""")
NAMEKO_CONFIG = re.compile(r"services/([A-Za-z0-9_-]+)/config\.yml")


def _is_mapping(value) -> bool:
    return isinstance(value, dict)


def variables_read(service: str, root: Path = ROOT) -> set[str]:
    """Environment variables WBS service ``service`` reads (config.yml and settings.py)."""
    names: set[str] = set()
    config = root / "services" / service / "config.yml"
    if config.exists():
        for line in config.read_text().splitlines():
            if line.lstrip().startswith("#"):
                continue  # comments explain the syntax ("${VAR:default}") without reading VAR
            names.update(ENV_REF.findall(re.sub(r"\s#.*$", "", line)))
    settings = root / "services" / service / service / "settings.py"
    if settings.exists():
        for a, b in ENV_READ.findall(settings.read_text()):
            names.add(a or b)
    return names


def _command_text(command) -> str:
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return str(command or "")


def wbs_service_of(definition: dict) -> str | None:
    """The WBS service a compose service runs, from its ``nameko run --config`` command."""
    text = _command_text(definition.get("command")) + " " + _command_text(definition.get("entrypoint"))
    if "nameko" not in text:
        return None
    match = NAMEKO_CONFIG.search(text)
    return match.group(1) if match else None


def _plain_loader() -> type:
    """A SafeLoader that reads ``${VAR:-default}`` as the text it is. nameko's config loading adds
    implicit resolvers for such strings to yaml.SafeLoader itself, process-wide; once a nameko
    config has been read in this process, plain safe_load would substitute the environment into
    the compose file and the check would judge values the file does not hold."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if "env_var" not in tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return Loader


def load_yaml(text: str):
    """The compose file's YAML as written (see _plain_loader)."""
    return yaml.load(text, Loader=_plain_loader())


def environment_of(definition: dict, problems: list, where: str) -> dict:
    env = definition.get("environment")
    if env is None:
        return {}
    if _is_mapping(env):
        for key, value in env.items():
            if value is not None and not isinstance(value, (str, int, float, bool)):
                problems.append(f"{where}: environment {key} must be a scalar")
        return {str(k): v for k, v in env.items()}
    if isinstance(env, list):
        out = {}
        for item in env:
            if not isinstance(item, str):
                problems.append(f"{where}: environment entries must be strings")
                continue
            key, _, value = item.partition("=")
            out[key] = value if "=" in item else None
        return out
    problems.append(f"{where}: environment must be a mapping or a list")
    return {}


def published_ports(definition: dict, problems: list, where: str) -> list[int]:
    """Host ports a service publishes (a container-only entry publishes a random port: a problem)."""
    found = []
    for entry in definition.get("ports") or []:
        if _is_mapping(entry):
            published = entry.get("published")
            if published is None:
                problems.append(f"{where}: port {entry.get('target')} is published on a random host port")
                continue
            text = str(published)
        else:
            text = str(entry).split("/", 1)[0]
            parts = text.rsplit(":", 2) if text.count(":") <= 2 else None
            if parts is None:
                problems.append(f"{where}: cannot read port entry {entry!r}")
                continue
            if len(parts) == 1:
                problems.append(f"{where}: port {entry!r} is published on a random host port")
                continue
            text = parts[-2]
            if not text.strip():
                problems.append(f"{where}: port {entry!r} is published on a random host port")
                continue
        if "-" in text:
            low, high = (int(p) for p in text.split("-", 1))
            found.extend(range(low, high + 1))
        elif text.strip().isdigit():
            found.append(int(text))
        else:
            problems.append(f"{where}: cannot read published port {text!r}")
    return found


def check_compose(path, root: Path | None = None) -> list[str]:
    """Problems with the compose file at ``path`` (see the module docstring); [] when it is fine."""
    root = Path(root) if root is not None else Path(path).resolve().parent
    problems: list[str] = []
    try:
        doc = load_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [f"cannot read {path}: {exc}"]
    if not _is_mapping(doc):
        return [f"{path}: the top level must be a mapping"]

    for key in doc:
        if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-"):
            problems.append(f"unknown top-level key {key!r}")
    services = doc.get("services")
    if not _is_mapping(services) or not services:
        return problems + ["services must be a non-empty mapping"]
    declared = {kind: set((doc.get(kind) or {}).keys()) if _is_mapping(doc.get(kind) or {}) else set()
                for kind in ("volumes", "secrets", "networks", "configs")}
    for kind in ("volumes", "secrets", "networks", "configs"):
        if doc.get(kind) is not None and not _is_mapping(doc.get(kind)):
            problems.append(f"top-level {kind} must be a mapping")
    for name, spec in (doc.get("secrets") or {}).items():
        if not _is_mapping(spec) or not ({"file", "environment", "external"} & set(spec)):
            problems.append(f"secret {name}: needs file, environment or external")

    published: dict[int, list[str]] = {}
    wbs_services: dict[str, str] = {}
    migrations = {name for name, d in services.items() if _is_mapping(d)
                  and re.search(r"\bwbs migrate\b", _command_text(d.get("command")))}
    for name in sorted(migrations):
        if str(services[name].get("restart", "no")) != "no":
            problems.append(f"service {name}: the migration one-shot must not restart")
    if not migrations:
        problems.append("no one-shot service runs `wbs migrate`")
    for name, definition in services.items():
        where = f"service {name}"
        if not _is_mapping(definition):
            problems.append(f"{where}: must be a mapping")
            continue
        for key in definition:
            if key not in SERVICE_KEYS and not str(key).startswith("x-"):
                problems.append(f"{where}: unknown key {key!r}")
        if "image" not in definition and "build" not in definition:
            problems.append(f"{where}: needs an image or a build")
        image = definition.get("image")
        if image is not None and not PINNED_TAG.search(str(image).split("$")[0] + _default_tag(str(image))):
            problems.append(f"{where}: image {image!r} is not pinned to a version")
        restart = definition.get("restart")
        if restart is not None and str(restart).split(":")[0] not in RESTART_POLICIES:
            problems.append(f"{where}: unknown restart policy {restart!r}")
        if definition.get("network_mode") == "host":
            problems.append(f"{where}: network_mode host publishes every port")

        depends = definition.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {} for d in depends}
        if not _is_mapping(depends):
            problems.append(f"{where}: depends_on must be a list or a mapping")
            depends = {}
        for other, spec in depends.items():
            if other not in services:
                problems.append(f"{where}: depends on unknown service {other!r}")
            condition = (spec or {}).get("condition", "service_started") if _is_mapping(spec or {}) else None
            if condition not in DEPENDS_CONDITIONS:
                problems.append(f"{where}: depends_on {other}: unknown condition {condition!r}")

        for volume in definition.get("volumes") or []:
            source = volume.get("source") if _is_mapping(volume) else str(volume).split(":", 1)[0]
            kind = volume.get("type", "volume") if _is_mapping(volume) else "volume"
            if not source or ":" not in str(volume) and not _is_mapping(volume):
                continue  # anonymous volume
            if kind == "volume" and not str(source).startswith((".", "/", "~", "$")) \
                    and source not in declared["volumes"]:
                problems.append(f"{where}: named volume {source!r} is not declared at the top level")
        for kind in ("secrets", "configs"):
            for item in definition.get(kind) or []:
                ref = item.get("source") if _is_mapping(item) else item
                if ref not in declared[kind]:
                    problems.append(f"{where}: {kind[:-1]} {ref!r} is not declared at the top level")
        networks = definition.get("networks") or []
        for network in (networks.keys() if _is_mapping(networks) else networks):
            if network != "default" and network not in declared["networks"]:
                problems.append(f"{where}: network {network!r} is not declared at the top level")

        for port in published_ports(definition, problems, where):
            published.setdefault(port, []).append(name)

        env = environment_of(definition, problems, where)
        wbs = wbs_service_of(definition)
        if wbs is not None:
            wbs_services[name] = wbs
            if not (root / "services" / wbs / "config.yml").exists():
                problems.append(f"{where}: runs {wbs}, which has no services/{wbs}/config.yml")
            if str(env.get("WBS_ENV", "")).strip().lower() != "production":
                problems.append(f"{where}: must run with WBS_ENV=production")
            for variable in sorted(variables_read(wbs, root)):
                if variable not in env and f"{variable}_FILE" not in env:
                    problems.append(f"{where}: {wbs} reads {variable}, which is not set")
            problems.extend(_scalable_and_probed(name, wbs, definition, env, migrations))

    for port, names in sorted(published.items()):
        expected = ALLOWED_PUBLISHED.get(port)
        if expected is None:
            problems.append(f"port {port} is published by {', '.join(names)}; only 8000 and 8001 may be")
            continue
        for name in names:
            image = str(services[name].get("image") or "")
            if not image.split("/")[-1].startswith(PROXY_IMAGES):
                problems.append(f"port {port} ({expected}) must be published by the reverse proxy "
                                f"(caddy, nginx or traefik), not by {name}")
    for port, expected in ALLOWED_PUBLISHED.items():
        if port not in published:
            problems.append(f"port {port} ({expected}) is not published")
    return problems


def _default_tag(image: str) -> str:
    """For ``wbs:${WBS_VERSION:-0.1.0}``: the default the variable falls back to."""
    match = re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]+)\}", image)
    return match.group(1) if match else ""


def _scalable_and_probed(name: str, wbs: str, definition: dict, env: dict, migrations: set) -> list[str]:
    """Rules 2, 5 and 6 for a compose service that runs WBS service ``wbs``."""
    where, problems = f"service {name}", []
    if definition.get("ports"):
        problems.append(f"{where}: publishes ports; only the reverse proxy may (replicas could not scale)")
    if definition.get("container_name"):
        problems.append(f"{where}: container_name prevents --scale")
    test = _command_text((definition.get("healthcheck") or {}).get("test"))
    port = READYZ_PORT.search(test)
    if port is None:
        problems.append(f"{where}: needs a healthcheck calling its ops listener's /readyz")
    else:
        address = str(env.get(f"{wbs.upper()}_OPS_ADDRESS") or "")
        if not address.endswith(":" + (port.group(1) or port.group(2))):
            problems.append(f"{where}: {wbs.upper()}_OPS_ADDRESS must listen on the port its healthcheck calls")
    depends = definition.get("depends_on") or {}
    if not any(_is_mapping(depends) and _is_mapping(depends.get(m) or {}) and
               (depends.get(m) or {}).get("condition") == "service_completed_successfully" for m in migrations):
        problems.append(f"{where}: must depend on the migration one-shot (service_completed_successfully)")
    if str(env.get("DB_AUTO_MIGRATE", "")).strip().lower() not in ("false", "0", "no"):
        problems.append(f"{where}: must run with DB_AUTO_MIGRATE=false (the one-shot migrates)")
    return problems


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docker-compose.yml")
    found = check_compose(target)
    for problem in found:
        print(problem)
    sys.exit(1 if found else 0)

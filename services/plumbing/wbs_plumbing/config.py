"""Configuration helpers shared by every service's typed settings.

nameko hands each container a plain dict (from `config.yml`, where `${VAR:default}` pulls in the
environment). Each service parses that dict once into a frozen dataclass in its `settings.py`;
these helpers hold the rules every service shares, so they are written down once.
"""
from pathlib import Path

DEVELOPMENT = "development"
PRODUCTION = "production"


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the service refuses to start."""


def environment(config: dict) -> str:
    env = (config.get("WBS_ENV") or DEVELOPMENT).strip().lower()
    if env not in (DEVELOPMENT, PRODUCTION):
        raise ConfigError(f"WBS_ENV must be '{DEVELOPMENT}' or '{PRODUCTION}', not {env!r}")
    return env


def is_production(config: dict) -> bool:
    return environment(config) == PRODUCTION


def data_dir(config: dict) -> Path:
    """Where embedded defaults keep their files (`WBS_DATA_DIR`, default ./var)."""
    path = Path(config.get("WBS_DATA_DIR") or "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(config: dict, service_name: str) -> str:
    """The service's own database: DATABASE_URL, or an SQLite file in the data dir.

    Production refuses the SQLite fallback: a ministry-wide deployment must name its database.
    """
    url = (config.get("DATABASE_URL") or "").strip()
    if url:
        return url
    if is_production(config):
        raise ConfigError(f"{service_name}: DATABASE_URL is required when WBS_ENV=production")
    return f"sqlite:///{data_dir(config) / (service_name + '.db')}"


def flag(value, default=False) -> bool:
    """Parse a boolean that may arrive as a YAML bool or as an environment string."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def secret_file(config: dict, key: str, default_name: str, generate) -> Path:
    """Path of a secret file named by `config[key]`, generating it (mode 0600) in development.

    `generate` returns the bytes of a fresh secret. Production never generates a secret: a secret
    made on first start would silently differ between replicas and vanish with the container.
    Production also refuses a file that other users can read.
    """
    configured = (config.get(key) or "").strip()
    path = Path(configured) if configured else data_dir(config) / default_name
    if not path.exists():
        if is_production(config):
            raise ConfigError(f"{key}: {path} does not exist; production never generates secrets")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb", opener=lambda p, f: __import__("os").open(p, f, 0o600)) as handle:
            handle.write(generate())
        tmp.replace(path)
    if is_production(config) and path.stat().st_mode & 0o077:
        raise ConfigError(f"{key}: {path} is readable by other users; chmod 600 it")
    return path

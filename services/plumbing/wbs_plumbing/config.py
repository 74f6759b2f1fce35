"""Configuration helpers shared by every service's typed settings.

nameko hands each container a plain dict (from `config.yml`, where `${VAR:default}` pulls in the
environment). Each service parses that dict once into a frozen dataclass in its `settings.py`
(`text`, `number`, `integer`, `flag` and the `*_at(config, key, ...)` forms are the one set
of parsing rules; `ConfigError` the one
error type) and every DependencyProvider of the service gets that same object through
`service_settings`, so no provider reads a raw key with rules of its own.
"""
import os
import secrets
from pathlib import Path
from typing import Any, Callable, TypeVar

from nameko.extensions import DependencyProvider

T = TypeVar("T")

DEVELOPMENT = "development"
PRODUCTION = "production"


#: Environment every service process starts with, unless the operator set it (``wbs run``, the
#: test and benchmark stacks; deploy/Dockerfile sets the same for containers).
#: ``EVENTLET_HUB=poll``: eventlet's default epoll hub makes two ``epoll_ctl`` system calls each
#: time a greenthread waits on a socket, which a report does dozens of times (every SQL round
#: trip, every AMQP frame); ``poll(2)`` over a service's few dozen sockets costs none of them.
#: Measured with ``make bench``: 7% less CPU a report and 8% more reports/s. A front holding
#: thousands of open client connections may prefer ``epolls`` again (deploy/README.md).
#: ``PYTHONWARNINGS``: eventlet's deprecation notice, printed by every service at start, says
#: nothing an operator can act on.
#: ``GLIBC_TUNABLES``: glibc's allocator serves a buffer of 1 MiB (a chunk of evidence, its
#: ciphertext, an RPC carrying it) from fresh ``mmap`` pages and unmaps it when freed, so each
#: new one costs 256 page faults: encrypting 1 MiB measured 1.0 ms, of which AES-GCM is 0.07.
#: Buffers below 16 MiB come from the heap instead, which keeps up to 32 MiB of freed memory for
#: the next one (0.09 ms). The resident size grows by at most that much.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432"
PROCESS_ENV = {"EVENTLET_HUB": "poll", "PYTHONWARNINGS": "ignore:::nameko.cli.commands",
               "GLIBC_TUNABLES": MALLOC_TUNABLES}


def with_process_env(env: dict) -> dict:
    """`env` with `PROCESS_ENV`'s settings added where `env` has none."""
    return {**PROCESS_ENV, **env}


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


def text(value: Any, default: str = "") -> str:
    """A string setting, stripped. nameko's `${VAR:}` turns an empty variable into None."""
    if value is None:
        return default
    return str(value).strip()


def _parse(value, default, convert, kind: str, key: str, minimum):
    if value is None or value == "":
        return default
    try:
        parsed = convert(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be {kind}") from None
    if minimum is not None and parsed < minimum:
        raise ConfigError(f"{key} must be >= {minimum}")
    return parsed


def number(value: Any, default: float, *, key: str = "value", minimum: float | None = None) -> float:
    """A number setting; `ConfigError` naming `key` when it is not one or below `minimum`."""
    return _parse(value, default, float, "a number", key, minimum)


def integer(value: Any, default: int, *, key: str = "value", minimum: int | None = None) -> int:
    """An integer setting; `ConfigError` naming `key` when it is not one or below `minimum`."""
    return _parse(value, default, int, "an integer", key, minimum)


def number_at(config, key: str, default: float, minimum: float | None = None) -> float:
    """`config[key]` as a number (see `number`)."""
    return number(config.get(key), default, key=key, minimum=minimum)


def integer_at(config, key: str, default: int, minimum: int | None = None) -> int:
    """`config[key]` as an integer (see `integer`)."""
    return integer(config.get(key), default, key=key, minimum=minimum)


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
        # Several processes may start at once on a fresh data folder: each writes its own
        # temporary file and links it into place; link fails if the name exists, so exactly one
        # secret wins, complete, and the others use it (a rename would let the last one replace
        # a secret the first one already uses).
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
            handle.write(generate())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if is_production(config) and path.stat().st_mode & 0o077:
        raise ConfigError(f"{key}: {path} is readable by other users; chmod 600 it")
    return path


_SETTINGS_ATTRIBUTE = "_wbs_settings"


def service_settings(container, parse: Callable[[dict], T]) -> T:
    """The service's typed settings, parsed once per container by `parse` (its
    `Settings.from_config`) and shared by every provider that asks: one parse, one object."""
    cache = container.__dict__.setdefault(_SETTINGS_ATTRIBUTE, {})
    if parse not in cache:
        cache[parse] = parse(container.config)
    return cache[parse]


class SettingsProvider(DependencyProvider):
    """Hands workers the service's typed settings (`service_settings`). Subclass with
    `parse = staticmethod(Settings.from_config)`; the parse runs at container setup, so a bad
    configuration stops the service at start, not at its first request."""

    parse: Callable[[dict], Any]

    def setup(self):
        self.settings = service_settings(self.container, type(self).parse)

    def get_dependency(self, worker_ctx):
        return self.settings

"""Typed settings of the verification service, parsed once from the nameko config.

Why refuse to start rather than warn: a production console that signs staff in with a
weakened password hash, or hands out session cookies without ``Secure``, looks healthy while
being unsafe. ``WBS_ENV=production`` therefore refuses Argon2 costs below the defaults in
``auth.py`` (only the test suite weakens them, through a fixture named
``insecure_fast_password_hashing``) and a console URL that is not HTTPS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from wbs_plumbing.config import ConfigError, environment, flag, integer_at, number_at, text

from .auth import DEFAULT_MEMORY_KIB, DEFAULT_PARALLELISM, DEFAULT_TIME_COST, HashingCost


def _dates(value: Any) -> frozenset:
    from .deadlines import parse_dates

    try:
        return parse_dates(value)
    except ValueError:
        raise ConfigError("CUTI_BERSAMA_DATES must be ISO dates (YYYY-MM-DD), comma separated") from None


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    console_url: str = "http://localhost:8001"
    session_minutes: int = 8 * 60
    password_cost: HashingCost = HashingCost()
    storage_timeout_seconds: float = 30.0
    secure_cookies: bool = False
    cuti_bersama: frozenset = frozenset()
    login_max_failures: int = 5
    login_lock_minutes: int = 15

    @property
    def calendar(self):
        from .deadlines import Calendar

        return Calendar(self.cuti_bersama)

    @property
    def throttle(self):
        from .auth import Throttle

        return Throttle(self.login_max_failures, self.login_lock_minutes)

    @property
    def development(self) -> bool:
        return self.env == "development"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        env = environment(dict(config))
        console_url = (text(config.get("WBS_CONSOLE_URL")) or "http://localhost:8001").rstrip("/")
        cost = HashingCost(
            time_cost=integer_at(config, "ARGON2_TIME_COST", DEFAULT_TIME_COST, minimum=1),
            memory_kib=integer_at(config, "ARGON2_MEMORY_KIB", DEFAULT_MEMORY_KIB, minimum=8),
            parallelism=integer_at(config, "ARGON2_PARALLELISM", DEFAULT_PARALLELISM, minimum=1),
        )
        settings = cls(
            env=env,
            console_url=console_url,
            session_minutes=integer_at(config, "SESSION_MINUTES", 8 * 60),
            password_cost=cost,
            storage_timeout_seconds=number_at(config, "STORAGE_RPC_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            secure_cookies=flag(config.get("SECURE_COOKIES"), default=env == "production"),
            cuti_bersama=_dates(config.get("CUTI_BERSAMA_DATES")),
            login_max_failures=integer_at(config, "LOGIN_MAX_FAILURES", 5, minimum=1),
            login_lock_minutes=integer_at(config, "LOGIN_LOCK_MINUTES", 15, minimum=1),
        )
        if settings.session_minutes <= 0:
            raise ConfigError("SESSION_MINUTES must be positive")
        if env == "production":
            if cost.weaker_than_default:
                raise ConfigError("ARGON2_* below the default cost is for tests only, never production")
            if not console_url.startswith("https://"):
                raise ConfigError("WBS_CONSOLE_URL must be https:// in production")
            if not settings.secure_cookies:
                raise ConfigError("SECURE_COOKIES cannot be off in production")
        return settings

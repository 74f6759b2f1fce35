"""Typed settings of the notification service, parsed once from the nameko config.

Why a frozen dataclass: every DependencyProvider reads the same values, and a typo in a
config key should fail at start, not on the first email. In production (``WBS_ENV=production``)
an SMTP server is required and must not be reached with an empty password when a username is
set: a misconfigured mailer that silently writes .eml files to a container's disk would look
healthy while no inspector is ever told about a case.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Tuple

from wbs_plumbing.config import ConfigError, flag, integer_at, number_at, text


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Delay after the ``attempt``-th failed attempt (1-based): base, 2*base, 4*base, ... <= cap.

    Here, beside the settings that parameterise it, so the domain (which applies it) and the
    settings (which document it as ``retry_schedule``) need not import each other."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    return float(min(cap, base * (2 ** (attempt - 1))))


def _secret(config: Mapping[str, Any], key: str) -> str:
    """``KEY``, or the content of the file named by ``KEY_FILE`` (Docker/Kubernetes secrets)."""
    path = text(config.get(key + "_FILE"))
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise ConfigError("{}_FILE: cannot read {} ({})".format(key, path, type(exc).__name__))
    return text(config.get(key))


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    data_dir: str = "./var"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "wbs@localhost"
    console_url: str = "http://localhost:8001"
    # Retry of undelivered mail: attempt n (1-based) that fails waits
    # min(retry_base * 2**(n-1), retry_max) seconds; after max_attempts the row is failed.
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 10
    # How long a claimed row is reserved for the worker sending it (crash -> resent after this).
    claim_seconds: float = 120.0
    sweep_interval_seconds: float = 5.0
    sweep_batch: int = 50
    rpc_timeout_seconds: float = 10.0
    # How long a process may reuse a staff member's address it asked verification for (0: ask
    # at every attempt); a staff_changed about them ends it at once (notification.dependencies).
    recipient_cache_seconds: float = 600.0
    # Reporter notices: where the reporter signs in with the receipt, and a neutral sender and
    # subject (a mailbox reader learns there is a report; the words must not say more).
    followup_url: str = "http://localhost:8000/follow-up"
    reporter_mail_from: str = ""
    reporter_sender_name: str = "Layanan Pemberitahuan"
    reporter_subject: str = ""
    # "One notice a day" counts days in this offset from UTC (Indonesia's WIB by default).
    day_utc_offset_hours: float = 7.0
    # Staff reminders and digests: remind the assignee this many working days before a
    # deadline; digests (and "daily" staff email) go out from this local hour; the planner runs
    # every plan_interval seconds.
    reminder_working_days: int = 2
    digest_hour: int = 7
    plan_interval_seconds: float = 300.0
    # A registered OpenPGP key expiring within this many days is reported to its owner and the
    # administrators (once per key); an expired one again (its owner's case emails are held).
    key_warning_days: int = 14

    @property
    def outbox_dir(self) -> str:
        return os.path.join(self.data_dir, "outbox")

    @property
    def reporter_from(self) -> str:
        return self.reporter_mail_from or self.mail_from

    @property
    def uses_smtp(self) -> bool:
        return bool(self.smtp_host)

    @property
    def retry_schedule(self) -> Tuple[float, ...]:
        """Seconds to wait after each failed attempt (documentation and tests)."""
        return tuple(
            backoff_seconds(n, self.retry_base_seconds, self.retry_max_seconds)
            for n in range(1, self.max_attempts)
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        env = text(config.get("WBS_ENV"), "development").lower()
        smtp_host = text(config.get("SMTP_HOST"))
        starttls = flag(config.get("SMTP_STARTTLS"), False)
        default_port = 587 if starttls else 25
        settings = cls(
            env=env,
            data_dir=text(config.get("WBS_DATA_DIR"), "./var"),
            smtp_host=smtp_host,
            smtp_port=integer_at(config, "SMTP_PORT", default_port),
            smtp_username=text(config.get("SMTP_USERNAME")),
            smtp_password=_secret(config, "SMTP_PASSWORD"),
            smtp_starttls=starttls,
            smtp_timeout=number_at(config, "SMTP_TIMEOUT_SECONDS", 10.0),
            mail_from=text(config.get("MAIL_FROM"), "wbs@localhost"),
            console_url=text(config.get("WBS_CONSOLE_URL"), "http://localhost:8001").rstrip("/"),
            retry_base_seconds=number_at(config, "NOTIFY_RETRY_BASE_SECONDS", 30.0),
            retry_max_seconds=number_at(config, "NOTIFY_RETRY_MAX_SECONDS", 3600.0),
            max_attempts=integer_at(config, "NOTIFY_MAX_ATTEMPTS", 10),
            claim_seconds=number_at(config, "NOTIFY_CLAIM_SECONDS", 120.0),
            sweep_interval_seconds=number_at(config, "NOTIFY_SWEEP_INTERVAL_SECONDS", 5.0),
            sweep_batch=integer_at(config, "NOTIFY_SWEEP_BATCH", 50),
            rpc_timeout_seconds=number_at(config, "NOTIFY_RPC_TIMEOUT_SECONDS", 10.0),
            recipient_cache_seconds=number_at(config, "NOTIFY_RECIPIENT_CACHE_SECONDS", 600.0),
            # a deployment that names its reporter site (WBS_PUBLIC_URL, as intake reads it) need
            # not repeat it: the follow-up page is on that site
            followup_url=text(config.get("WBS_FOLLOWUP_URL"))
            or text(config.get("WBS_PUBLIC_URL"), "http://localhost:8000").rstrip("/") + "/follow-up",
            reporter_mail_from=text(config.get("REPORTER_MAIL_FROM")),
            reporter_sender_name=text(config.get("REPORTER_SENDER_NAME"), "Layanan Pemberitahuan"),
            reporter_subject=text(config.get("REPORTER_SUBJECT")),
            day_utc_offset_hours=number_at(config, "NOTIFY_DAY_UTC_OFFSET_HOURS", 7.0),
            reminder_working_days=integer_at(config, "NOTIFY_REMINDER_WORKING_DAYS", 2),
            digest_hour=integer_at(config, "NOTIFY_DIGEST_HOUR", 7),
            plan_interval_seconds=number_at(config, "NOTIFY_PLAN_INTERVAL_SECONDS", 300.0),
            key_warning_days=integer_at(config, "NOTIFY_KEY_WARNING_DAYS", 14),
        )
        settings.check()
        if env == "production" and not text(config.get("WBS_CONSOLE_URL")):
            # The link is the whole point of the email; a default pointing at localhost
            # would send every inspector to their own machine.
            raise ConfigError("WBS_CONSOLE_URL must be set in production")
        return settings

    def check(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("NOTIFY_MAX_ATTEMPTS must be at least 1")
        if self.retry_base_seconds <= 0 or self.retry_max_seconds < self.retry_base_seconds:
            raise ConfigError("NOTIFY_RETRY_* must satisfy 0 < base <= max")
        if self.env == "production":
            if not self.smtp_host:
                raise ConfigError(
                    "WBS_ENV=production needs SMTP_HOST: the outbox folder is for development only"
                )
            if self.smtp_username and not self.smtp_password:
                raise ConfigError("SMTP_USERNAME is set but SMTP_PASSWORD is missing")

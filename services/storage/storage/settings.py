"""Typed settings of the storage service, parsed once from the nameko config.

Why refuse to start rather than limp along: the vault is where a misconfiguration turns into a
leak or into lost evidence. So in production (``WBS_ENV=production``) the storage service refuses
an S3 store without credentials or with MinIO's well-known default credentials, and the key file
rules of :meth:`storage.crypto.KeyRing.load` apply (no generated, missing or world-readable key
file). Development keeps the embedded defaults: a folder under ``WBS_DATA_DIR`` and a key file
generated there on first start.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from wbs_plumbing.config import ConfigError, data_dir, environment, flag, integer_at, number_at, text

FILE, S3 = "file", "s3"
CHUNK_SIZE = 1024 * 1024  # the unit of append_evidence and read_evidence_chunk
END_STATES = ("not_actionable", "referred", "closed")
# Days a report's content is kept after its case reached each end state (RETENTION_<STATE>_DAYS).
# not_actionable: 90 days (nothing to act on; keep it only long enough for a reopening);
# referred: 2 years (the competent authority may ask back); closed: 5 years (archive rules for
# concluded inspection files; set it to what your records schedule (JRA) says).
DEFAULT_RETENTION_DAYS = {"not_actionable": 90, "referred": 730, "closed": 1825}
_DEFAULT_S3_CREDENTIALS = {("minioadmin", "minioadmin"), ("minio", "minio123")}


@dataclass(frozen=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    secure: bool
    region: str | None
    part_size: int
    parallel_uploads: int
    object_lock_days: float = 90.0

    def __repr__(self):  # never print the secret key
        return f"S3Settings(endpoint={self.endpoint!r}, bucket={self.bucket!r}, secure={self.secure})"


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: str
    evidence_store: str
    evidence_root: str
    key_file: str
    s3: S3Settings | None
    upload_idle_seconds: float
    reaper_interval_seconds: float
    max_uploads: int
    require_sealed_transit: bool = True
    chunk_size: int = CHUNK_SIZE
    retention: dict = field(default_factory=lambda: {
        state: timedelta(days=days) for state, days in DEFAULT_RETENTION_DAYS.items()})
    retention_interval_seconds: float = 86400.0
    key_rotation_grace_seconds: float = 10.0
    retention_confirm_timeout_seconds: float = 10.0  # verification's answer before a shredding

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Settings":
        env = environment(dict(config))
        base = str(data_dir(dict(config)))
        store = text(config.get("EVIDENCE_STORE"), FILE).lower()
        if store not in (FILE, S3):
            raise ConfigError(f"EVIDENCE_STORE must be '{FILE}' or '{S3}', not {store!r}")
        s3 = None
        if store == S3:
            s3 = S3Settings(
                endpoint=text(config.get("S3_ENDPOINT")),
                access_key=text(config.get("S3_ACCESS_KEY")),
                secret_key=text(config.get("S3_SECRET_KEY")),
                bucket=text(config.get("S3_BUCKET"), "wbs-evidence"),
                secure=flag(config.get("S3_SECURE"), default=True),
                region=text(config.get("S3_REGION")) or None,
                part_size=integer_at(config, "S3_PART_SIZE", 8 * 1024 * 1024),
                parallel_uploads=integer_at(config, "S3_PARALLEL_UPLOADS", 2),
                object_lock_days=number_at(config, "S3_OBJECT_LOCK_DAYS", 90.0),
            )
            if not s3.endpoint:
                raise ConfigError("EVIDENCE_STORE=s3 needs S3_ENDPOINT")
            if env == "production":
                if not s3.access_key or not s3.secret_key:
                    raise ConfigError("S3_ACCESS_KEY and S3_SECRET_KEY are required in production")
                if (s3.access_key, s3.secret_key) in _DEFAULT_S3_CREDENTIALS:
                    raise ConfigError("S3 credentials are a well-known default; refusing to start")
            if s3.part_size < 5 * 1024 * 1024:
                raise ConfigError("S3_PART_SIZE must be at least 5 MiB (S3 minimum part size)")
        key_file = text(config.get("WBS_KEY_FILE")) or os.path.join(base, "keys.json")
        retention = {}
        for state, days in DEFAULT_RETENTION_DAYS.items():
            key = f"RETENTION_{state.upper()}_DAYS"
            value = number_at(config, key, days)
            if value < 0:
                raise ConfigError(f"RETENTION_{state.upper()}_DAYS must not be negative")
            retention[state] = timedelta(days=value)
        return cls(
            env=env,
            data_dir=base,
            evidence_store=store,
            evidence_root=os.path.join(base, "evidence"),
            key_file=key_file,
            s3=s3,
            upload_idle_seconds=number_at(config, "UPLOAD_IDLE_SECONDS", 600.0),
            reaper_interval_seconds=number_at(config, "UPLOAD_REAPER_INTERVAL_SECONDS", 30.0),
            max_uploads=integer_at(config, "MAX_CONCURRENT_UPLOADS", 64),
            require_sealed_transit=flag(config.get("REQUIRE_SEALED_TRANSIT"), default=True),
            retention=retention,
            retention_interval_seconds=number_at(config, "RETENTION_INTERVAL_SECONDS", 86400.0),
            key_rotation_grace_seconds=number_at(config, "KEY_ROTATION_GRACE_SECONDS", 10.0),
            retention_confirm_timeout_seconds=number_at(config, "RETENTION_CONFIRM_TIMEOUT_SECONDS", 10.0),
        )

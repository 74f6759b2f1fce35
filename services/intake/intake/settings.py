"""Intake's configuration, parsed once from the nameko config dict into a frozen object.

Secrets have no defaults in production: `WBS_ENV=production` refuses to start without
`WBS_RECEIPT_KEY` (or an existing `WBS_RECEIPT_KEY_FILE`). In development a key is generated
into `WBS_DATA_DIR/intake-receipt.key` with mode 0600 on first start, so `make run` works from a
fresh clone and receipts keep working across restarts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from wbs_plumbing.config import ConfigError, integer_at, is_production, number_at, secret_file

from intake.uploads import UploadLimits

MIB = 1024 * 1024
GIB = 1024 * MIB

#: About one second of work for the bundled pure-JavaScript solver on a mid-range phone.
DEFAULT_POW_BITS = 18
MIN_KEY_BYTES = 32


def _decode_key(text: str, source: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{source}: the receipt key must be hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{source}: the receipt key must have at least {MIN_KEY_BYTES} bytes")
    return key


def load_receipt_key(config: dict) -> bytes:
    """`WBS_RECEIPT_KEY` (hex, >= 256 bits), else the key file (generated in development only)."""
    inline = (config.get("WBS_RECEIPT_KEY") or "").strip()
    if inline:
        return _decode_key(inline, "WBS_RECEIPT_KEY")
    if is_production(config) and not (config.get("WBS_RECEIPT_KEY_FILE") or "").strip():
        raise ConfigError("WBS_RECEIPT_KEY is required when WBS_ENV=production")
    path = secret_file(
        config, "WBS_RECEIPT_KEY_FILE", "intake-receipt.key",
        lambda: secrets.token_hex(32).encode("ascii"),
    )
    return _decode_key(path.read_text(), str(path))


@dataclass(frozen=True)
class Settings:
    receipt_key: bytes
    pow_key: bytes
    pow_bits: int
    pow_ttl_seconds: int
    session_ttl_seconds: int
    limits: UploadLimits
    max_json_bytes: int
    units_cache_seconds: float
    rpc_timeout_seconds: float
    evidence_chunk_bytes: int
    throttle_per_minute: int = 600

    def __repr__(self) -> str:  # never print keys
        return f"Settings(pow_bits={self.pow_bits}, limits={self.limits})"

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        from intake.receipts import derive_key

        key = load_receipt_key(config)
        bits = integer_at(config, "WBS_POW_BITS", DEFAULT_POW_BITS, 0)
        if bits > 32:
            raise ConfigError("WBS_POW_BITS above 32 would lock every reporter out")
        max_json = integer_at(config, "INTAKE_MAX_JSON_BYTES", 256 * 1024, 1024)
        limits = UploadLimits(
            max_request_bytes=integer_at(config, "INTAKE_MAX_REQUEST_BYTES", 2 * GIB, 1024),
            max_files=integer_at(config, "INTAKE_MAX_FILES", 20, 0),
            max_file_bytes=integer_at(config, "INTAKE_MAX_FILE_BYTES", 1 * GIB, 1),
            max_field_bytes=max_json,
            max_report_bytes=integer_at(config, "INTAKE_MAX_REPORT_BYTES", 2 * GIB, 1),
        )
        return cls(
            receipt_key=derive_key(key, "receipt"),
            pow_key=derive_key(key, "pow"),
            pow_bits=bits,
            pow_ttl_seconds=integer_at(config, "WBS_POW_TTL_SECONDS", 600, 10),
            session_ttl_seconds=integer_at(config, "INTAKE_SESSION_TTL_SECONDS", 1800, 60),
            limits=limits,
            max_json_bytes=max_json,
            units_cache_seconds=number_at(config, "INTAKE_UNITS_CACHE_SECONDS", 5.0),
            rpc_timeout_seconds=number_at(config, "INTAKE_RPC_TIMEOUT_SECONDS", 30.0),
            evidence_chunk_bytes=MIB,
            throttle_per_minute=integer_at(config, "INTAKE_THROTTLE_PER_MINUTE", 600, 0),
        )

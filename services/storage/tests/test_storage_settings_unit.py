"""Typed settings and config.yml: the vault refuses unsafe production configurations."""
import os
from pathlib import Path

import pytest
import yaml
from wbs_plumbing.config import ConfigError

from storage.settings import Settings

CONFIG_YML = Path(__file__).resolve().parents[1] / "config.yml"


def test_development_defaults(tmp_path):
    s = Settings.from_config({"WBS_DATA_DIR": str(tmp_path)})
    assert s.env == "development" and s.evidence_store == "file" and s.s3 is None
    assert s.evidence_root == str(tmp_path / "evidence")
    assert s.key_file == str(tmp_path / "keys.json")
    assert s.chunk_size == 1024 * 1024
    assert s.require_sealed_transit is True  # as in config.yml
    assert not Settings.from_config({"WBS_DATA_DIR": str(tmp_path),
                                     "REQUIRE_SEALED_TRANSIT": "false"}).require_sealed_transit


def test_s3_settings_and_secret_not_in_repr(tmp_path):
    s = Settings.from_config({"WBS_DATA_DIR": str(tmp_path), "EVIDENCE_STORE": "s3",
                              "S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": "ak",
                              "S3_SECRET_KEY": "SECRET-CANARY", "S3_SECURE": "false"})
    assert s.s3.endpoint == "minio:9000" and s.s3.secure is False and s.s3.bucket == "wbs-evidence"
    assert "SECRET-CANARY" not in repr(s)


@pytest.mark.parametrize("overrides, reason", [
    ({"EVIDENCE_STORE": "ftp"}, "EVIDENCE_STORE"),
    ({"EVIDENCE_STORE": "s3"}, "S3_ENDPOINT"),
    ({"EVIDENCE_STORE": "s3", "S3_ENDPOINT": "x:9000", "S3_PART_SIZE": 1024}, "S3_PART_SIZE"),
])
def test_bad_configurations_refused(tmp_path, overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        Settings.from_config({"WBS_DATA_DIR": str(tmp_path), **overrides})


@pytest.mark.parametrize("creds", [("", ""), ("minioadmin", "minioadmin")])
def test_production_refuses_missing_or_default_s3_credentials(tmp_path, creds):
    config = {"WBS_DATA_DIR": str(tmp_path), "WBS_ENV": "production", "EVIDENCE_STORE": "s3",
              "S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": creds[0], "S3_SECRET_KEY": creds[1]}
    with pytest.raises(ConfigError):
        Settings.from_config(config)
    Settings.from_config({**config, "WBS_ENV": "development"})  # fine in development


def _load_config_yml(env):
    from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    old = dict(os.environ)
    try:
        os.environ.update(env)
        for key in [k for k in os.environ if k.startswith(("S3_", "EVIDENCE_", "WBS_", "STORAGE_"))
                    and k not in env]:
            del os.environ[key]
        with open(CONFIG_YML) as fh:
            return yaml.safe_load(fh)  # what `nameko run --config` does
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_config_yml_embedded_defaults(tmp_path):
    config = _load_config_yml({"WBS_DATA_DIR": str(tmp_path)})
    assert config["serializer"] == "msgpack" and config["ACCEPT"] == ["msgpack", "json"]
    assert config["LOGGING"]["handlers"]["console"]["class"] == "logging.StreamHandler"
    s = Settings.from_config(config)
    assert s.evidence_store == "file" and s.key_file == str(tmp_path / "keys.json")
    assert not config["DATABASE_URL"]  # SQLite fallback in WBS_DATA_DIR


def test_config_yml_takes_the_environment(tmp_path):
    config = _load_config_yml({
        "WBS_DATA_DIR": str(tmp_path), "EVIDENCE_STORE": "s3", "S3_ENDPOINT": "minio:9000",
        "S3_ACCESS_KEY": "ak", "S3_SECRET_KEY": "sk:with:colons", "S3_BUCKET": "bkt",
        "S3_SECURE": "false", "STORAGE_DATABASE_URL": "postgresql://db/storage",
        "WBS_KEY_FILE": str(tmp_path / "k.json"), "WBS_ENV": "production"})
    assert config["DATABASE_URL"] == "postgresql://db/storage"
    s = Settings.from_config(config)
    assert (s.env, s.evidence_store, s.key_file) == ("production", "s3", str(tmp_path / "k.json"))
    assert (s.s3.endpoint, s.s3.access_key, s.s3.secret_key, s.s3.bucket, s.s3.secure) == (
        "minio:9000", "ak", "sk:with:colons", "bkt", False)

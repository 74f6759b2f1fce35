"""Each service's code defaults are its config.yml's defaults.

A service started from its config.yml (every `${VAR:default}` left at its default) and one started
with no configuration at all must get the same typed Settings; otherwise a test or tool that
builds settings from a bare dict runs with different rules than production (as storage once did:
sealed transit required in config.yml, optional in code)."""
import re
from pathlib import Path

import pytest
import yaml

from intake.settings import Settings as IntakeSettings
from notification.settings import Settings as NotificationSettings
from storage.settings import Settings as StorageSettings
from verification.settings import Settings as VerificationSettings

ROOT = Path(__file__).resolve().parents[1]
_VARIABLE = re.compile(r"\$\{(\w+):?([^}]*)\}")


def config_yml_defaults(service: str) -> dict:
    """config.yml as nameko reads it with an empty environment (each variable at its default)."""
    text = (ROOT / "services" / service / "config.yml").read_text()
    text = text.replace("!raw_env_var ", "")
    return yaml.safe_load(_VARIABLE.sub(lambda m: m.group(2), text))


@pytest.mark.parametrize("service, parse", [
    ("intake", IntakeSettings.from_config),
    ("storage", StorageSettings.from_config),
    ("notification", NotificationSettings.from_config),
    ("verification", VerificationSettings.from_config),
])
def test_code_defaults_equal_config_yml(service, parse, tmp_path):
    from_yml = config_yml_defaults(service)
    from_yml["WBS_DATA_DIR"] = str(tmp_path)
    assert parse(from_yml) == parse({"WBS_DATA_DIR": str(tmp_path)})


def test_the_yaml_reading_keeps_defaults():
    assert config_yml_defaults("storage")["REQUIRE_SEALED_TRANSIT"] is True
    assert config_yml_defaults("intake")["INTAKE_RPC_TIMEOUT_SECONDS"] == 30

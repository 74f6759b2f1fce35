"""Every launcher starts the services with the same process environment (wbs_plumbing.config)."""
import re
from pathlib import Path

from wbs_plumbing.config import PROCESS_ENV, with_process_env

ROOT = Path(__file__).resolve().parents[3]


def test_the_operator_s_choice_wins_over_the_default():
    assert with_process_env({"EVENTLET_HUB": "epolls"})["EVENTLET_HUB"] == "epolls"
    assert with_process_env({"OTHER": "1"}) == {**PROCESS_ENV, "OTHER": "1"}


def test_the_image_and_the_kubernetes_config_set_the_same_environment():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    configmap = (ROOT / "deploy" / "kubernetes" / "base" / "config.yaml").read_text()
    for key, value in PROCESS_ENV.items():
        assert re.search(rf"^\s+{key}={re.escape(value)}\b", dockerfile, re.M), key
        assert re.search(rf"^\s+{key}: {re.escape(value)}$", configmap, re.M), key

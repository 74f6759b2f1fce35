"""deploy/prometheus/: the alert rules load in Prometheus's own checker and fire as intended
(`promtool test rules`), and every wbs_ metric they use is one the services export."""
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus"


def promtool(*args):
    exe = shutil.which("promtool")
    assert exe, "promtool (Debian package prometheus) is needed: make test installs it"
    return subprocess.run([exe, *args], cwd=RULES, capture_output=True, text=True)


def test_the_rules_are_valid_and_their_unit_tests_pass():
    checked = promtool("check", "rules", "wbs-alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "wbs-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_broken_rule_is_caught(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((RULES / "wbs-alerts.yml").read_text().replace("> 300", "> > 300"))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_every_metric_in_the_rules_is_exported_and_documented():
    used = set(re.findall(r"\b(wbs_[a-z_]+?)(?:_bucket|_count|_sum)?\b", (RULES / "wbs-alerts.yml").read_text()))
    exported = "".join((ROOT / "services/plumbing/wbs_plumbing" / name).read_text() for name in ("metrics.py", "ops.py"))
    documented = (ROOT / "deploy" / "RUNBOOK.md").read_text()
    for name in used:
        base = name.removesuffix("_total")
        assert f'"{base}"' in exported or f'"{name}"' in exported or f'f"wbs_notification_emails_{{status}}"' in exported, name
        assert name in documented, name

"""The golden record's level-3 monitoring files pass Prometheus's own checks."""

from __future__ import annotations

import json
import subprocess

from tests.compiler.conftest import REPO
from tests.system_programs import require

MONITORING = REPO / "generated" / "breast-cancer" / "monitoring"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("promtool"), *args], cwd=MONITORING, capture_output=True, text=True, check=False
    )


def test_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", "alert-rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_generated_rule_tests_pass() -> None:
    result = _promtool("test", "rules", "alert-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_dashboard_and_provisioning_are_what_grafana_reads() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert any("mlops_monitor_drift_score" in e for e in exprs)
    assert any("mlops_request_latency_seconds_bucket" in e for e in exprs)
    provisioning = (MONITORING / "grafana-provisioning.yml").read_text()
    assert "providers:" in provisioning and "apiVersion: 1" in provisioning


def test_only_level_three_emits_them() -> None:
    for project in (REPO / "generated").iterdir():
        level = json.loads((project / "config.json").read_text())["level"]
        assert (project / "monitoring").is_dir() == (level == 3), project.name

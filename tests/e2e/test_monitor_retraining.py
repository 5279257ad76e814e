"""Level 3: the monitor retrains on drift, once per cooldown, gated like any training run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.monitor.retraining import triggers
from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import SPECS, build_project, records, stage_env, train

pytestmark = pytest.mark.slow
REPO = SPECS.parent


def build(root: Path, retrain: str) -> Path:
    """breast-cancer with its `retrain` section replaced, built by the real compiler."""
    spec = (SPECS / "breast-cancer.mlops.yaml").read_text()
    lines = [ln for ln in spec.splitlines() if not ln.startswith("retrain:")]
    return build_project(root, "breast-cancer", "\n".join([*lines, f"retrain: {retrain}", ""]))


def drifted_rows(n: int = 200) -> list[dict[str, Any]]:
    return [{k: v * 3 for k, v in r.items()} for r in records("breast_cancer", n)]


def start_monitor(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "monitor", "--json", "--no-dashboard"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stage_env(),
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=600)
    assert process.returncode in (0, 1, 3), out + err
    report: dict[str, Any] = json.loads(out)
    return report


def audit(project: Path) -> list[dict[str, Any]]:
    path = project / "reports/monitor/retrain-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def versions(project: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns.db'}")
    return sorted(str(v.version) for v in client.search_model_versions("name='breast-cancer'"))


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = build(tmp_path_factory.mktemp("retrain"), "{on: [drift], cooldown: 1h}")
    train(project)
    log_lines(project, drifted_rows())
    return project


def test_drift_retrains_once_then_the_cooldown_holds(drifting: Path) -> None:
    first = finish(start_monitor(drifting))
    assert first["status"] == "alert"
    assert "dataset_drift" in {v["check"] for v in first["violations"]}
    entry = first["retraining"]
    assert entry["event"] == "retrain_finished" and entry["outcome"] == "registered"
    assert entry["why"]["drift"]["fired"] == 1 and entry["version"] == "2"
    assert versions(drifting) == ["1", "2"]
    second = finish(start_monitor(drifting))
    assert second["retraining"]["event"] == "retrain_skipped"
    assert second["retraining"]["reason"].startswith("cooldown")
    events = [e["event"] for e in audit(drifting)]
    assert events == ["retrain_started", "retrain_finished", "retrain_skipped"]
    assert versions(drifting) == ["1", "2"]


def test_two_monitors_at_once_train_once(tmp_path: Path) -> None:
    project = build(tmp_path, "{on: [drift], cooldown: 1h}")
    train(project)
    log_lines(project, drifted_rows())
    reports = [finish(p) for p in [start_monitor(project), start_monitor(project)]]
    events = sorted(r["retraining"]["event"] for r in reports)
    assert events == ["retrain_finished", "retrain_skipped"]
    assert [e["event"] for e in audit(project)].count("retrain_started") == 1
    assert versions(project) == ["1", "2"]


def test_fresh_data_that_breaks_the_contract_changes_nothing(tmp_path: Path) -> None:
    project = build(tmp_path, "{on: [drift], cooldown: 1h, data: data/fresh.csv}")
    source = (tmp_path / "specs/data/breast_cancer.csv").read_text().splitlines()
    header, *rows = source
    radius = header.split(",").index("mean_radius")
    bad = [",".join("-5" if i == radius else c for i, c in enumerate(r.split(","))) for r in rows]
    (tmp_path / "specs/data/fresh.csv").write_text("\n".join([header, *bad]) + "\n")
    train(project)
    log_lines(project, drifted_rows())
    report = finish(start_monitor(project))
    entry = report["retraining"]
    assert entry["event"] == "retrain_failed" and entry["outcome"] == "stopped_by_data_contract"
    assert entry["stage"] == "retrain" and entry["data"].endswith("fresh.csv")
    assert versions(project) == ["1"], "a gated retraining registers nothing"
    assert report["gates"]["retraining"] == {
        "ok": False,
        "outcome": "stopped_by_data_contract",
        "data": entry["data"],
    }


def test_k_of_the_last_n_windows() -> None:
    drift = {"violations": [{"check": "dataset_drift"}]}
    quiet: dict[str, Any] = {"violations": []}
    settings = {"on": ["drift"], "windows": {"k": 2, "n": 3}}
    assert triggers([quiet, quiet, drift], settings) == {}
    assert triggers([drift, quiet, drift], settings)["drift"] == {
        "fired": 2,
        "of": 3,
        "k": 2,
        "n": 3,
    }
    assert triggers([drift, quiet, quiet, drift], settings) == {}  # the first is out of the window
    assert "schedule" in triggers([quiet], {"on": ["schedule"]})

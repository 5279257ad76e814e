"""Bad input to the monitor: a clear status and exit code in the report, never a traceback,
and the registry untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import build_project, records, stage_env, train

pytestmark = pytest.mark.slow
Write = Callable[..., Path]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = build_project(tmp_path_factory.mktemp("bad-input"), "breast-cancer")
    train(project)
    return project


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained project, its prediction log empty."""
    copy = tmp_path / "breast-cancer"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("prediction_log"))
    return copy


def monitor(project: Path) -> tuple[int, dict[str, Any], str]:
    store = project / "mlruns.db"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "monitor", "--json", "--window", "1h"],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(),
        check=False,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before, "the registry changed"
    return result.returncode, json.loads(result.stdout), result.stderr


def statuses(report: dict[str, Any]) -> set[str]:
    return {p["status"] for p in report["problems"]}


def test_empty_window(project: Path) -> None:
    code, report, _ = monitor(project)
    assert code == 1 and report["status"] == "warning"
    assert "empty_window" in statuses(report) and report["window"]["rows"] == 0


def test_corrupt_log_file_and_lines(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    (project / "prediction_log/predictions-2.parquet").write_bytes(b"PAR1 this is not parquet")
    with (project / "prediction_log/predictions-3.jsonl").open("w") as handle:
        handle.write('{"request_id": "x", "ts": "2026-')  # a line cut off by a crash
    code, report, _ = monitor(project)
    assert {"corrupt_log_file", "corrupt_log_lines"} <= statuses(report)
    assert report["window"]["rows"] == 150 and code == report["exit_code"] >= 1


def test_missing_and_all_null_columns(project: Path) -> None:
    rows = [
        {k: v for k, v in r.items() if k != "mean_texture"} | {"mean_radius": None}
        for r in records("breast_cancer", 150)
    ]
    log_lines(project, rows)
    _, report, _ = monitor(project)
    quality = report["data_quality"]["columns"]
    assert quality["mean_texture"]["status"] == "missing_column"
    assert quality["mean_radius"]["null_rate"] == 1.0
    assert quality["mean_radius"]["status"] == "all_null"
    checks = {(v["check"], v["feature"]) for v in report["violations"]}
    assert {("missing_column", "mean_texture"), ("null_rate", "mean_radius")} <= checks
    assert report["drift"]["features"]["mean_radius"]["status"] == "all_null"
    assert report["drift"]["features"]["mean_texture"]["status"] == "missing_column"


def test_labels_matching_no_request(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    labels = project.parents[1] / "specs/data/breast_cancer_labels.csv"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text("request_id,malignant\nsomeone-else,1\n")
    labels_cfg = json.loads((project / "config.json").read_text())["monitor"]["labels"]
    assert (project / labels_cfg["path"]).resolve() == labels.resolve()
    _, report, _ = monitor(project)
    assert "labels_unmatched" in statuses(report)
    assert report["performance"]["status"] == "insufficient_samples"
    assert report["performance"]["labelled"] == 0


@pytest.mark.parametrize("change", ["missing", "older"])
def test_missing_or_older_reference(project: Path, change: str) -> None:
    log_lines(project, records("breast_cancer", 150))
    for path in [project / "reports/reference_profile.json", *project.glob("reports/reference/*")]:
        if change == "missing":
            path.unlink()
        else:
            profile = json.loads(path.read_text())
            path.write_text(json.dumps({**profile, "version": 1}))
    code, report, _ = monitor(project)
    expected = "reference_missing" if change == "missing" else "reference_unsupported"
    assert expected in statuses(report) and code >= 1
    assert report["drift"] is None and report["traffic"]["rows"] == 150

"""`check-data`: the contract gate alone, as a pull request runs it; nothing is tracked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.runtime.serving_fixtures import build_project, stage_env


def check(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "check-data", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(),
        check=False,
        timeout=120,
    )


def test_good_data_passes_and_bad_data_stops_with_a_report(tmp_path: Path) -> None:
    project = build_project(tmp_path, "diabetes")
    good = check(project)
    assert good.returncode == 0 and "meets the data contract (442 rows)" in good.stdout, good.stderr
    bad = tmp_path / "bad.csv"
    lines = (tmp_path / "specs/data/diabetes.csv").read_text().splitlines()
    bad.write_text("\n".join([lines[0], *(ln.replace(",", ",-", 1) for ln in lines[1:]), ""]))
    failed = check(project, str(bad))
    assert failed.returncode == 3, failed.stdout + failed.stderr
    report = json.loads((project / "reports/contract_report.json").read_text())
    assert report["ok"] is False and report["source"] == str(bad)
    assert not (project / "mlruns.db").exists(), "nothing is tracked"

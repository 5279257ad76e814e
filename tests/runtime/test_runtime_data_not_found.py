"""A training data path with no file behind it is a usage error, not a contract failure: the
train and check-data stages say `error: training data not found: PATH (where it came from)`
and exit 2, before anything is read, tracked or reported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from serving_fixtures import SPECS, build_project, run_stage

pytestmark = pytest.mark.slow

EXIT_USAGE = 2
EXIT_CONTRACT = 3


def missing_train(root: Path, spec: str, real: str) -> Path:
    """The example spec with data.train pointing at a file that does not exist."""
    text = (SPECS / f"{spec}.mlops.yaml").read_text()
    assert f"train: data/{real}" in text
    return build_project(root, spec, text.replace(f"train: data/{real}", "train: data/later.csv"))


def expect_not_found(result: subprocess.CompletedProcess[str], path: Path, origin: str) -> None:
    stderr = result.stderr
    assert result.returncode == EXIT_USAGE, stderr
    assert stderr.strip() == f"error: training data not found: {path} ({origin})", stderr
    assert "contract" not in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("spec", "real"), [("breast-cancer", "breast_cancer.csv"), ("wine", "wine.csv")]
)
def test_a_missing_data_train_says_not_found(tmp_path: Path, spec: str, real: str) -> None:
    """Level 3 (tracked training) and level 0 (plain training), and check-data."""
    project = missing_train(tmp_path, spec, real)
    path = (project / "../../specs/data/later.csv").absolute()
    origin = "data.train of the spec; $MLOPS_TRAIN_DATA overrides it"
    expect_not_found(run_stage(project, "train"), path, origin)
    assert not (project / "reports" / "contract_report.json").exists()
    assert not (project / "mlruns.db").exists(), "nothing tracked: no store was even opened"
    assert not (project / "model").exists()
    if spec == "breast-cancer":  # level 0 has no check-data stage
        expect_not_found(run_stage(project, "check-data"), path, origin)


def test_an_override_that_points_nowhere_names_the_variable(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    elsewhere = tmp_path / "fetched" / "train.csv"
    for stage in ("train", "check-data"):
        result = run_stage(project, stage, MLOPS_TRAIN_DATA=str(elsewhere))
        expect_not_found(result, elsewhere, "set by $MLOPS_TRAIN_DATA")
    result = run_stage(project, "check-data", str(elsewhere))
    expect_not_found(result, elsewhere, "the FILE argument")


def test_a_file_that_is_there_but_unreadable_is_still_a_contract_failure(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = run_stage(project, "train", MLOPS_TRAIN_DATA=str(empty))
    assert result.returncode == EXIT_CONTRACT, result.stderr
    assert "not found" not in result.stderr
    assert (project / "reports" / "contract_report.json").exists()

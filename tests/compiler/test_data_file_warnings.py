"""A training data file that does not exist yet is a positioned warning, never an error: it may
be fetched later (in CI, by a pipeline step), and the build does not read it. A feature view's
source stays an error, since the build reads its columns; late labels draw nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_compiler.errors import Diagnostic
from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import MINIMAL, run_mlops

WARNING = (
    "mlops.yaml:4:10: data.train: warning: churn.csv not found (churn.csv; it may appear "
    "later, e.g. in CI)"
)


def test_validate_warns_with_the_position_and_succeeds(minimal_spec: Path) -> None:
    result = run_mlops("validate", "mlops.yaml", cwd=minimal_spec.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: churn (level 1)\n"
    assert result.stderr == WARNING + "\n"


def test_plan_and_build_warn_too_and_build_writes_the_project(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    plan = run_mlops("plan", "mlops.yaml", cwd=cwd)
    assert plan.returncode == 0 and WARNING in plan.stderr.splitlines(), plan.stderr
    build = run_mlops("build", "mlops.yaml", cwd=cwd)
    assert build.returncode == 0, build.stderr
    assert build.stderr.splitlines().count(WARNING) == 1
    assert (cwd / "generated" / "churn" / "config.json").exists()


def test_no_warning_once_the_file_is_there(minimal_spec: Path) -> None:
    (minimal_spec.parent / "churn.csv").write_text("tenure,plan,churned\n1,basic,true\n")
    result = run_mlops("validate", "mlops.yaml", cwd=minimal_spec.parent)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_warning_comes_with_the_errors_of_an_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text(MINIMAL.replace("target: churned", "target: churn"))
    result = run_mlops("validate", "mlops.yaml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == WARNING
    assert any(ln.startswith("mlops.yaml:5:11: data.target: target 'churn'") for ln in lines)
    assert lines[-1] == "1 problem found; nothing was written."


def test_validate_hands_each_warning_over_as_a_diagnostic(minimal_spec: Path) -> None:
    warnings: list[Diagnostic] = []
    spec = validate(load_spec(minimal_spec), warn=warnings.append)
    assert spec.name == "churn"
    assert [(w.line, w.col, w.path) for w in warnings] == [(4, 10, "data.train")]
    assert warnings[0].message.startswith("warning: churn.csv not found")


def test_missing_late_labels_draw_no_warning(workspace: Path) -> None:
    spec = workspace / "specs" / "breast-cancer.mlops.yaml"
    assert "labels: {file: data/breast_cancer_labels.csv" in spec.read_text()
    assert not (workspace / "specs" / "data" / "breast_cancer_labels.csv").exists()
    result = run_mlops("validate", "specs/breast-cancer.mlops.yaml", cwd=workspace)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_missing_view_source_stays_an_error_and_says_why(workspace: Path) -> None:
    (workspace / "specs" / "data" / "churn_activity.csv").unlink()
    shutil.move(workspace / "specs/data/churn_labels.csv", workspace / "specs/data/later.csv")
    result = run_mlops("validate", "specs/churn.mlops.yaml", cwd=workspace)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("specs/churn.mlops.yaml:10:10: data.train: warning: ")
    assert any(
        ln.startswith(
            "specs/churn.mlops.yaml:34:17: features.store.views[0].source: file not found"
        )
        and "the build reads the columns of a view's source" in ln
        for ln in lines
    ), result.stderr

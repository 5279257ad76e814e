from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"


def run_mlops(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI as a user runs it: a separate process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of specs/ (with its data) in a fresh folder, laid out like the repository."""
    shutil.copytree(SPECS, tmp_path / "specs")
    return tmp_path


MINIMAL = """\
apiVersion: mlops/v1
name: churn
data:
  train: churn.csv
  target: churned
  contract:
    columns:
      tenure: {type: int, min: 0}
      plan: {type: category, values: [basic, pro]}
      churned: {type: bool}
model:
  estimator: sklearn.linear_model.LogisticRegression
"""


@pytest.fixture
def minimal_spec(tmp_path: Path) -> Path:
    path = tmp_path / "mlops.yaml"
    path.write_text(MINIMAL)
    return path

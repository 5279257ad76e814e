"""A non-editable install in a fresh venv builds every example spec from another folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compiler.conftest import REPO


@pytest.mark.slow
def test_wheel_install_builds_examples_from_elsewhere(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "generated", "__pycache__", "*.egg-info"),
    )
    subprocess.run([*pip, str(source)], check=True, capture_output=True)
    shutil.rmtree(source)  # the installed package must not lean on the source tree
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(REPO / "specs", elsewhere / "specs")
    result = subprocess.run(
        [str(venv / "bin/mlops"), "build", "specs"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built = sorted(p.name for p in (elsewhere / "generated").iterdir())
    assert built == ["breast-cancer", "churn", "diabetes", "penguins", "wine"]
    for name in built:
        committed = REPO / "generated" / name / "mlops-manifest.json"
        assert (
            elsewhere / "generated" / name / "mlops-manifest.json"
        ).read_bytes() == committed.read_bytes()
    freeze = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "scikit-learn" not in freeze and "mlflow" not in freeze

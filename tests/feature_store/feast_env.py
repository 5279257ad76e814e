"""The interpreter of a project with a feature store: this environment plus Feast.

Feast pins pandas < 3 (and an older prometheus-client), which would downgrade the environment
the rest of the suite runs in. So the feature-store tests run the generated projects' stages
in a virtualenv of their own that sees this environment's packages (the runtime, MLflow,
scikit-learn, ...) and shadows only what Feast needs, as a project's own `pip install -r
requirements.txt` would resolve it. It is made once, cached, and shared by xdist workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FEAST_VERSION = "0.67.0"
READY = "mlops-ready"
INSTALL_TIMEOUT_S = 600


def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, env=env
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def feast_python() -> Path:
    override = os.environ.get("MLOPS_FEAST_VENV")
    venv = (
        Path(override)
        if override
        else Path.home() / ".cache" / "mlops-compiler-tests" / f"feast-{FEAST_VERSION}"
    )
    python = venv / "bin" / "python"
    with _locked(venv.with_name(venv.name + ".lock")):
        if (venv / READY).is_file() and python.is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
        assert made.returncode == 0, f"cannot make a virtualenv at {venv}:\n{made.stderr}"
        try:
            installed = _run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 f"feast=={FEAST_VERSION}"],
                timeout=INSTALL_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"pip install feast=={FEAST_VERSION} took over {INSTALL_TIMEOUT_S} s")
        if installed.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(
                f"pip install feast=={FEAST_VERSION} into {venv} failed (the test needs PyPI):\n"
                + installed.stderr[-3000:]
            )
        probe = _run(
            [str(python), "-c", "import feast, mlops_runtime, mlflow; print(feast.__version__)"]
        )
        assert probe.stdout.strip() == FEAST_VERSION, probe.stdout + probe.stderr
        (venv / READY).write_text(FEAST_VERSION + "\n")
    return python

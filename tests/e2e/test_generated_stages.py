"""The compiler's output, run for real: build the example specs, train, read lineage back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
TRACKED = ["breast-cancer", "diabetes", "penguins"]


def mlops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_compiler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every example spec built and trained once, as a user would with `mlops run`."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "specs", root / "specs")
    for name in [*TRACKED, "wine"]:
        result = mlops("run", f"specs/{name}.mlops.yaml", "train", cwd=root)
        assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", TRACKED)
def test_trained_version_is_champion_with_lineage(trained: Path, name: str) -> None:
    result = mlops("run", f"specs/{name}.mlops.yaml", "lineage", "--", "--json", cwd=trained)
    assert result.returncode == 0, result.stderr
    lineage = json.loads(result.stdout)
    manifest = json.loads((trained / "generated" / name / "mlops-manifest.json").read_text())
    assert lineage["version"] == "1" or lineage["version"] == 1
    assert "champion" in lineage["aliases"]
    assert lineage["spec_sha256"] == manifest["spec_sha256"]
    data = (trained / "specs/data" / f"{name.replace('-', '_')}.csv").read_bytes()
    import hashlib

    assert lineage["data_sha256"] == hashlib.sha256(data).hexdigest()
    assert lineage["run_id"] and lineage["metrics"] and lineage["params"]


@pytest.mark.slow
def test_level0_project_saves_a_local_model_and_no_registry(trained: Path) -> None:
    project = trained / "generated/wine"
    assert (project / "model/model.skops").is_file()
    assert not (project / "mlruns.db").exists()


@pytest.mark.slow
def test_bad_data_through_the_generated_stage_leaves_the_champion(trained: Path) -> None:
    bad = trained / "bad_penguins.csv"
    text = (trained / "specs/data/penguins.csv").read_text().replace("Torgersen", "Atlantis")
    bad.write_text(text)
    env = {**ENV, "MLOPS_TRAIN_DATA": str(bad)}
    result = subprocess.run(
        [sys.executable, "-m", "mlops_compiler", "run", "specs/penguins.mlops.yaml", "train"],
        cwd=trained,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads((trained / "generated/penguins/reports/contract_report.json").read_text())
    assert "Atlantis" in json.dumps(report) and "island" in json.dumps(report)
    lineage = mlops("run", "specs/penguins.mlops.yaml", "lineage", "--", "--json", cwd=trained)
    assert json.loads(lineage.stdout)["version"] in ("1", 1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _container_command(dockerfile: Path) -> list[str]:
    cmd = [ln for ln in dockerfile.read_text().splitlines() if ln.startswith("CMD ")]
    assert len(cmd) == 1
    argv: list[str] = json.loads(cmd[0].removeprefix("CMD "))
    return argv


@pytest.mark.slow
def test_container_cmd_serves_the_trained_champion(trained: Path) -> None:
    """No Docker engine here: run the image's exact CMD in the project folder instead.

    The image listens on 0.0.0.0; the test binds loopback, everything else is as in the image.
    """
    import time
    import urllib.error
    import urllib.request

    project = trained / "generated/penguins"
    argv = _container_command(project / "Dockerfile")
    assert argv == ["python", "-m", "mlops_runtime", "serve"]
    port = _free_port()
    env = {**ENV, "HOST": "127.0.0.1", "PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, *argv[1:]],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        record = {
            "island": "Biscoe",
            "bill_length_mm": 45.2,
            "bill_depth_mm": 14.8,
            "flipper_length_mm": 212.0,
            "body_mass_g": 5200.0,
            "sex": "female",
            "year": 2008,
        }
        request = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
            assert response.headers["X-Model-Version"] == "1"
        assert body["prediction"] == "Gentoo"
        bad = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps({**record, "island": "Atlantis"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as rejected:
            urllib.request.urlopen(bad, timeout=10)
        assert rejected.value.code == 422
        assert "island" in rejected.value.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)

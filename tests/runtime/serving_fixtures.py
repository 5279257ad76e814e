"""Real generated projects and running model servers for the serving tests.

A project is built by the real compiler from a copy of specs/ (so the tests exercise exactly
the modules the level table emits), and the generated pipeline trains the model. Servers are `python -m mlops_runtime serve`
subprocesses on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def stage_env(**extra: str) -> dict[str, str]:
    skip = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_TRAIN_DATA", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(QUIET)
    env.update(extra)
    return env


def build_project(root: Path, spec: str, text: str | None = None) -> Path:
    """`mlops build` of specs/<spec>.mlops.yaml into root/generated/<name>/, beside a copy of
    specs/ (whose data the spec reads); `text` replaces the spec's own text."""
    shutil.copytree(SPECS, root / "specs")
    if text is not None:
        (root / "specs" / f"{spec}.mlops.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mlops_compiler", "build", f"specs/{spec}.mlops.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        # This checkout's compiler and templates, whichever one is installed.
        env=stage_env(PYTHONPATH=str(REPO)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return root / "generated" / spec


def run_stage(
    project: Path, *args: str, python: str = sys.executable, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m mlops_runtime ARGS...` in the project, output captured, never raising;
    `python` is the project's interpreter (a feature store's has Feast)."""
    return subprocess.run(
        [python, "-m", "mlops_runtime", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(**env),
        check=False,
        timeout=300,
    )


def train(project: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "train"],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(),
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    project: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(project: Path, python: str = sys.executable, **env: str) -> Server:
    port = free_port()
    log_path = project / f"serve-{port}.log"
    full_env = stage_env(PORT=str(port), HOST="127.0.0.1", **env)
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [python, "-m", "mlops_runtime", "serve"],
            cwd=project,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(project, port, process, log_path, full_env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url + "/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server not ready in time:\n{server.output()}")


@pytest.fixture(scope="module")
def serving_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="module")
def breast_cancer_server(serving_root: Path) -> Iterator[Server]:
    """Level 3, one trained version, A/B configured but no challenger yet."""
    project = build_project(serving_root / "bc", "breast-cancer")
    train(project)
    server = start_server(project, MLOPS_RELOAD_INTERVAL_S="1")
    yield server
    server.stop()


def records(name: str, n: int | None = None) -> list[dict[str, Any]]:
    """Rows of a bundled data set as JSON-like records, without the target."""
    import csv

    targets = {"breast_cancer": "malignant", "penguins": "species", "wine": "cultivar"}
    with (SPECS / "data" / f"{name}.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows[: n or len(rows)]:
        record: dict[str, Any] = {}
        for key, value in row.items():
            if key == targets[name]:
                continue
            if value in ("", "NA"):
                record[key] = None
                continue
            try:
                number = float(value)
                record[key] = int(number) if number.is_integer() and "." not in value else number
            except ValueError:
                record[key] = value
        out.append(record)
    return out

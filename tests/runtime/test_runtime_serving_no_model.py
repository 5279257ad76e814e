"""Serving before any training: the server says what is missing and how to train it, answers
503 with that detail meanwhile, and serves the model as soon as training produces one."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import Server, build_project, free_port, records, stage_env, train

pytestmark = pytest.mark.slow

NOT_READY = (
    ("POST", "/predict"),
    ("POST", "/invocations"),
    ("GET", "/ready"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{name}/ready"),
    ("GET", "/v2/models/{name}"),
    ("POST", "/v2/models/{name}/infer"),
)


def start_unready(project: Path) -> Server:
    """`serve` in a project with nothing trained: it is alive (/health) but not ready."""
    port = free_port()
    log_path = project / f"serve-{port}.log"
    env = stage_env(PORT=str(port), HOST="127.0.0.1", MLOPS_RELOAD_INTERVAL_S="0.5")
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_runtime", "serve"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    server = Server(project, port, process, log_path, env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, server.output()
        try:
            if httpx.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"server not up in time:\n{server.output()}")


def said(server: Server) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [ln for ln in server.output().splitlines() if "no model to serve yet" in ln]
        if lines:
            return lines
        time.sleep(0.2)
    raise AssertionError(server.output())


def check_unready(server: Server, name: str, record: dict[str, object]) -> str:
    """Every prediction and readiness endpoint: 503 with the same `detail`; returns it."""
    details = set()
    with server.client() as client:
        for method, path in NOT_READY:
            body: object = record
            if path == "/invocations":
                body = {"dataframe_records": [record]}
            elif path.endswith("/infer"):
                body = {
                    "inputs": [
                        {"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                        for k, v in record.items()
                    ]
                }
            response = client.request(
                method, path.format(name=name), json=body if method == "POST" else None
            )
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/json"
            details.add(response.json()["detail"])
        ping = client.get("/ping")
        assert ping.status_code == 503
        details.add(ping.text.strip())
        health = client.get("/health").json()
        assert health["ready"] is False
        details.add(health["detail"])
        predict = client.post("/predict", json=record).json()
        assert predict["error"] == "no model loaded yet"
    assert len(details) == 1, details
    return details.pop()


def wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(server.url + "/ready").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready after training:\n{server.output()}")


def test_registry_without_a_champion_says_how_to_train_then_serves_it(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    server = start_unready(project)
    try:
        record = records("breast_cancer", 1)[0]
        time.sleep(1.5)  # a few reload polls: still said once
        lines = said(server)
        assert len(lines) == 1, server.output()
        line = lines[0]
        assert line.startswith("breast-cancer: no model to serve yet: ")
        assert "'breast-cancer' has the alias 'champion'" in line
        assert f"`mlops run specs/breast-cancer.mlops.yaml train` in {tmp_path.resolve()}" in line
        assert f"`python -m mlops_runtime train` in {project.resolve()}" in line
        detail = check_unready(server, "breast-cancer", record)
        assert line == f"breast-cancer: {detail}"
        train(project)
        wait_ready(server)
        answer = httpx.post(server.url + "/predict", json=record)
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"] in (0, 1)
        assert httpx.get(server.url + "/ready").json() == {"ready": True}
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_level_0_without_a_model_file_says_how_to_train_then_serves_it(tmp_path: Path) -> None:
    project = build_project(tmp_path, "wine")
    server = start_unready(project)
    try:
        record = records("wine", 1)[0]
        line = said(server)[0]
        model = project.resolve() / "model" / "model.skops"
        assert line.startswith(f"wine: no model to serve yet: no model file {model}")
        assert "`mlops run specs/wine.mlops.yaml train`" in line
        detail = check_unready(server, "wine", record)
        assert line == f"wine: {detail}"
        train(project)
        wait_ready(server)
        assert httpx.post(server.url + "/predict", json=record).json()["prediction"] == 0
    finally:
        server.stop()

"""Serving over a model's life: hot reload under traffic, the A/B split, level 0, categoricals."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_fixtures import Server, build_project, records, start_server, train

from mlops_runtime.serve.ab import choose_arm

pytestmark = pytest.mark.slow


def registry(project: Path) -> Any:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project / 'mlruns.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def metric(server: Server, prefix: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_hot_reload_under_traffic_fails_no_request(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    server = start_server(project, MLOPS_RELOAD_INTERVAL_S="0.5")
    rows = records("breast_cancer", 50)
    seen: list[tuple[int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer(offset: int) -> None:
        with server.client() as client:
            i = offset
            while not stop.is_set():
                try:
                    response = client.post("/predict", json=rows[i % len(rows)])
                    seen.append((response.status_code, response.headers.get("x-model-version", "")))
                except httpx.HTTPError as exc:  # a dropped connection is a failed request too
                    failures.append(repr(exc))
                i += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        train(project)  # version 2 ties the champion's metrics: auto-promoted to champion
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(v == "2" for _, v in seen[-50:]):
            time.sleep(0.2)
        time.sleep(1.0)  # keep traffic flowing on the new version for a while
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        reloads = metric(server, 'mlops_model_reloads_total{arm="champion"}')
        server.stop()
    assert failures == []
    assert Counter(status for status, _ in seen) == {200: len(seen)}
    versions = [v for _, v in seen]
    assert set(versions) == {"1", "2"}
    switch = versions.index("2")
    # Requests started before the swap may finish on version 1; none starts on it long after.
    assert versions[switch + 20 :].count("1") == 0
    assert reloads == 1


def test_ab_split_follows_the_weight_and_sticks(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")  # ab_test: weight 0.1, key patient_id
    train(project)
    train(project)  # version 2 becomes champion
    registry(project).set_registered_model_alias("breast-cancer", "challenger", "1")
    server = start_server(project, MLOPS_RELOAD_INTERVAL_S="60")
    row = records("breast_cancer", 1)[0]
    try:
        with server.client() as client:
            health = client.get("/health").json()
            assert {(m["arm"], m["model_version"]) for m in health["models"]} == {
                ("champion", "2"),
                ("challenger", "1"),
            }
            arms: Counter[str] = Counter()
            n = 1500
            for i in range(n):
                request_id = f"ab-{i}"
                response = client.post("/predict", json=row, headers={"X-Request-ID": request_id})
                arm = response.headers["x-ab-arm"]
                # No sticky key in the request: the request id decides, reproducibly.
                assert arm == choose_arm(request_id, 0.1)
                assert response.json()["model_version"] == ("1" if arm == "challenger" else "2")
                arms[arm] += 1
            # Binomial(1500, 0.1): mean 150, sd 11.6; 5 sd either side.
            assert abs(arms["challenger"] - 150) < 58
            sticky_arms = {
                client.post("/predict", json=dict(row, patient_id="p-42")).headers["x-ab-arm"]
                for _ in range(20)
            }
            assert sticky_arms == {choose_arm("p-42", 0.1)}
            by_header = {
                client.post("/predict", json=row, headers={"patient-id": "p-7"}).headers["x-ab-arm"]
                for _ in range(20)
            }
            assert by_header == {choose_arm("p-7", 0.1)}
            challenger_keys = [
                k for k in (f"k{i}" for i in range(200)) if choose_arm(k, 0.1) == "challenger"
            ]
            response = client.post("/predict", json=dict(row, patient_id=challenger_keys[0]))
            assert response.json()["arm"] == "challenger"
        text = httpx.get(server.url + "/metrics").text
        assert 'mlops_predictions_total{arm="challenger",model_version="1"' in text
        assert 'mlops_predictions_total{arm="champion",model_version="2"' in text
    finally:
        server.stop()


def test_without_a_challenger_everything_goes_to_the_champion(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    server = start_server(project)
    row = records("breast_cancer", 1)[0]
    try:
        with server.client() as client:
            arms = {
                client.post("/predict", json=row, headers={"X-Request-ID": f"r{i}"}).headers[
                    "x-ab-arm"
                ]
                for i in range(100)
            }
        assert arms == {"champion"}
    finally:
        server.stop()


def test_level_0_serves_the_local_file_without_mlflow(tmp_path: Path) -> None:
    project = build_project(tmp_path, "wine")  # level 0: model/model.skops
    train(project)
    assert (project / "model" / "model.skops").is_file()
    # Any attempt to import MLflow in the server now fails loudly.
    shim = tmp_path / "no_mlflow"
    shim.mkdir()
    (shim / "mlflow.py").write_text("raise ImportError('level 0 must not import mlflow')\n")
    server = start_server(project, PYTHONPATH=str(shim))
    rows = records("wine", 10)
    try:
        with server.client() as client:
            response = client.post("/predict", json=rows)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model_version"].startswith("local-")
            assert body["run_id"] is None
            assert body["model"] == "wine"
            assert len(body["predictions"]) == 10
            bad = client.post("/predict", json=dict(rows[0], magnesium=2.5))
            assert bad.status_code == 422
            assert bad.json()["violations"][0]["column"] == "magnesium"
    finally:
        server.stop()
    assert "level 0 must not import mlflow" not in server.output()


def test_categoricals_nulls_and_extra_fields(tmp_path: Path) -> None:
    project = build_project(tmp_path, "penguins")  # level 2, extra_columns: forbid
    train(project)
    server = start_server(project)
    rows = records("penguins", 20)
    try:
        with server.client() as client:
            response = client.post("/predict", json=rows)
            assert response.status_code == 200, response.text
            labels = response.json()["predictions"]
            assert set(labels) <= {"Adelie", "Chinstrap", "Gentoo"}
            with_nulls = dict(rows[0], sex=None, bill_length_mm=None)
            assert client.post("/predict", json=with_nulls).status_code == 200
            bad = client.post("/predict", json=dict(rows[0], island="Atlantis", colour="blue"))
            assert bad.status_code == 422
            faults = {(v["column"], v["check"]) for v in bad.json()["violations"]}
            assert faults == {("island", "values"), ("colour", "extra_column")}
            inputs = [
                {
                    "name": c,
                    "shape": [2],
                    "datatype": "BYTES" if isinstance(rows[0][c], str) else "FP64",
                    "data": [r[c] for r in rows[:2]],
                }
                for c in rows[0]
            ]
            v2 = client.post("/v2/models/penguins/infer", json={"inputs": inputs})
            assert v2.status_code == 200, v2.text
            assert v2.json()["outputs"][0]["data"] == labels[:2]
            assert v2.json()["outputs"][0]["datatype"] == "BYTES"
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _log_pids(folder: Path) -> Counter[str]:
    """Prediction-log lines per writing process (the pid is part of each file name)."""
    lines: Counter[str] = Counter()
    for path in folder.glob("predictions-*.jsonl"):
        lines[path.name.split("-")[2]] += len(path.read_bytes().splitlines())
    return lines


def test_several_workers_share_the_port_metrics_and_reloads(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    server = start_server(
        project, WEB_CONCURRENCY="2", MLOPS_RELOAD_INTERVAL_S="0.5", TMPDIR=str(scratch)
    )
    rows = records("breast_cancer", 40)
    log_dir = project / "prediction_log"
    try:
        assert len(_children(server.process.pid)) >= 2  # the workers (and uvicorn's helpers)
        # /ready answers as soon as one worker is up; the other may still be loading its
        # model, and until it accepts, the kernel hands every connection to the first.
        warm_up = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_log_pids(log_dir)) < 2:
            assert httpx.post(server.url + "/predict", json=rows[0]).status_code == 200
            warm_up += 1
            time.sleep(0.05)
        statuses: list[int] = []

        def one(i: int) -> None:
            # A new connection each time, so the kernel hands requests to either worker.
            statuses.append(httpx.post(server.url + "/predict", json=rows[i % 40]).status_code)

        threads = [threading.Thread(target=lambda k=k: [one(k * 15 + j) for j in range(15)])
                   for k in range(4)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert statuses == [200] * 60
        deadline = time.monotonic() + 20
        sent = warm_up + 60
        while time.monotonic() < deadline and sum(_log_pids(log_dir).values()) < sent:
            time.sleep(0.2)
        per_worker = _log_pids(log_dir)
        assert sum(per_worker.values()) == sent and len(per_worker) == 2, per_worker
        # Whichever worker answers /metrics reports the sum over both.
        for _ in range(4):
            assert metric(server, 'mlops_requests_total{endpoint="/predict"') == sent

        train(project)  # version 2 becomes champion: every worker must swap to it
        deadline = time.monotonic() + 30
        answers: list[str] = []
        while time.monotonic() < deadline:
            answers = [
                httpx.post(server.url + "/predict", json=rows[0]).headers["x-model-version"]
                for _ in range(20)
            ]
            if set(answers) == {"2"}:
                break
            time.sleep(0.3)
        assert set(answers) == {"2"}
        text = httpx.get(server.url + "/metrics").text
        info = {
            line.split('model_version="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mlops_model_info{")
        }
        assert info == {"1": 0.0, "2": 1.0}
    finally:
        server.stop()
    assert list(scratch.iterdir()) == []  # the metrics folder goes with the server

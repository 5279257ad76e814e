"""The generated model server, end to end: a real project, a trained model, a real subprocess.

One level-3 breast-cancer project is built, trained and served for the whole module.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from serving_fixtures import (  # noqa: F401 - fixtures
    Server,
    breast_cancer_server,
    records,
    serving_root,
)

pytestmark = pytest.mark.slow

NAME = "breast-cancer"


def reference_model(project: Path) -> Any:
    """The champion loaded straight from the registry by MLflow's own loader, as a second
    opinion on the server (which loads it its own, stricter way)."""
    import mlflow.sklearn

    uri = f"sqlite:///{project / 'mlruns.db'}"
    mlflow.set_registry_uri(uri)
    mlflow.set_tracking_uri(uri)
    with mock.patch.dict(os.environ, {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}):
        return mlflow.sklearn.load_model(f"models:/{NAME}@champion")


@pytest.fixture(scope="module")
def expected(breast_cancer_server: Server) -> tuple[list[Any], np.ndarray]:  # noqa: F811
    model = reference_model(breast_cancer_server.project)
    frame = pd.DataFrame(records("breast_cancer", 40)).astype("float64")
    return answered(model.predict(frame)), model.predict_proba(frame)


def answered(labels: Any) -> list[int]:
    """The model predicts the text "0"/"1" it was trained on; the contract's `values: [0, 1]`
    makes the server answer the integers."""
    return [int(label) for label in labels]


def test_health_endpoints(breast_cancer_server: Server) -> None:  # noqa: F811
    with breast_cancer_server.client() as client:
        assert client.get("/ready").json() == {"ready": True}
        health = client.get("/health").json()
        assert health["ready"] is True
        assert [m["arm"] for m in health["models"]] == ["champion"]
        assert health["models"][0]["model_version"] == "1"
        assert health["models"][0]["compiled"] is True
        ping = client.get("/ping")
        assert ping.status_code == 200
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2").json()["name"] == "mlops-serving"
        ready = client.get(f"/v2/models/{NAME}/ready")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        assert client.get("/v2/models/no-such-model/ready").status_code == 404
        assert client.get("/nowhere").status_code == 404
        assert client.get("/predict").status_code == 405


def test_openapi_describes_endpoints_and_contract(breast_cancer_server: Server) -> None:  # noqa: F811
    with breast_cancer_server.client() as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/predict", "/invocations", "/v2/models/{name}/infer", "/metrics", "/ping"):
        assert path in doc["paths"]
    record = doc["components"]["schemas"]["Record"]
    assert len(record["required"]) == 30
    assert "malignant" not in record["properties"]  # the target is not an input
    assert record["properties"]["mean_radius"] == {"type": "number", "minimum": 0.0}
    assert "patient_id" in record["properties"]  # the A/B sticky key may travel in the record


def test_predict_single_and_batch_match_the_registered_model(
    breast_cancer_server: Server,  # noqa: F811
    expected: tuple[list[Any], np.ndarray],
) -> None:
    labels, proba = expected
    rows = records("breast_cancer", 40)
    with breast_cancer_server.client() as client:
        one = client.post("/predict", json=rows[3], headers={"X-Request-ID": "req-single-3"})
        assert one.status_code == 200
        body = one.json()
        assert body["prediction"] == labels[3]
        assert np.allclose(body["probabilities"], proba[3])
        assert body["classes"] == [0, 1]
        assert body["request_id"] == "req-single-3"
        assert one.headers["x-request-id"] == "req-single-3"
        assert one.headers["x-model-name"] == NAME
        assert one.headers["x-model-version"] == "1"
        assert len(one.headers["x-model-run-id"]) == 32
        assert body["run_id"] == one.headers["x-model-run-id"]
        assert one.headers["x-ab-arm"] == "champion"
        many = client.post("/predict", json=rows).json()
        assert many["predictions"] == labels
        assert np.allclose(many["probabilities"], proba)
        assert client.post("/predict", json=[]).json()["predictions"] == []
        unsafe = "spaces; and {braces}" + "x" * 200  # not echoed: replaced by a fresh id
        generated = client.post("/predict", json=rows[0], headers={"X-Request-ID": unsafe})
        assert generated.headers["x-request-id"] != unsafe
        assert len(generated.json()["request_id"]) == 32


def test_invocations_all_four_formats(
    breast_cancer_server: Server,  # noqa: F811
    expected: tuple[list[Any], np.ndarray],
) -> None:
    labels = expected[0][:5]
    rows = records("breast_cancer", 5)
    columns = list(rows[0])
    bodies = [
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
        {"dataframe_records": rows},
        {"inputs": {c: [r[c] for r in rows] for c in columns}},
        {"instances": rows},
    ]
    with breast_cancer_server.client() as client:
        for body in bodies:
            response = client.post("/invocations", json=body)
            assert response.status_code == 200, response.text
            assert response.json() == {"predictions": labels}
            assert response.headers["x-model-version"] == "1"
        assert client.post("/invocations", json={"nothing": []}).status_code == 400
        csv = client.post("/invocations", content=b"a,b\n1,2", headers={"content-type": "text/csv"})
        assert csv.status_code == 415


def test_v2_metadata_and_infer_over_plain_http(
    breast_cancer_server: Server,  # noqa: F811
    expected: tuple[list[Any], np.ndarray],
) -> None:
    rows = records("breast_cancer", 4)
    with breast_cancer_server.client() as client:
        meta = client.get(f"/v2/models/{NAME}").json()
        assert meta["name"] == NAME
        assert meta["versions"] == ["1"]
        assert len(meta["inputs"]) == 30
        assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
        assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
        inputs = [
            {"name": c, "shape": [4, 1], "datatype": "FP64", "data": [r[c] for r in rows]}
            for c in rows[0]
        ]
        response = client.post(f"/v2/models/{NAME}/infer", json={"id": "abc", "inputs": inputs})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == "abc"
        assert body["model_version"] == "1"
        predict = body["outputs"][0]
        assert predict["shape"] == [4]
        assert predict["data"] == expected[0][:4]
        by_version = client.post(f"/v2/models/{NAME}/versions/1/infer", json={"inputs": inputs})
        assert by_version.status_code == 200
        assert (
            client.post(f"/v2/models/{NAME}/versions/99/infer", json={"inputs": inputs}).status_code
            == 404
        )
        assert client.post("/v2/models/other/infer", json={"inputs": inputs}).status_code == 404
        short = [dict(inputs[0], data=[1.0]), *inputs[1:]]
        assert client.post(f"/v2/models/{NAME}/infer", json={"inputs": short}).status_code == 400


def test_tritonclient_talks_to_the_server(
    breast_cancer_server: Server,  # noqa: F811
    expected: tuple[list[Any], np.ndarray],
) -> None:
    import tritonclient.http as triton

    rows = records("breast_cancer", 6)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{breast_cancer_server.port}")
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(NAME)
    metadata = client.get_model_metadata(NAME)
    assert metadata["name"] == NAME
    inputs = []
    for column in rows[0]:
        tensor = triton.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(
            np.array([r[column] for r in rows], dtype=np.float64), binary_data=False
        )
        inputs.append(tensor)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = client.infer(NAME, inputs, outputs=outputs, request_id="triton-1")
    assert result.as_numpy("predict").dtype == np.int64
    assert result.as_numpy("predict").tolist() == expected[0][:6]
    assert np.allclose(result.as_numpy("predict_proba"), expected[1][:6])
    assert result.get_response()["id"] == "triton-1"
    # Without requested outputs the client asks for binary ones (binary_data_output).
    plain = client.infer(NAME, inputs)
    assert plain.as_numpy("predict").shape == (6,)
    bad = triton.InferInput("mean_radius", [1], "FP64")
    bad.set_data_from_numpy(np.array([-5.0]), binary_data=False)
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="contract violation"):
        client.infer(NAME, [bad])
    client.close()


def test_big_batches_in_every_format_match_the_registered_model(
    breast_cancer_server: Server,  # noqa: F811
) -> None:
    import tritonclient.http as triton

    pool = records("breast_cancer")
    rows = [pool[i % len(pool)] for i in range(700)]  # > 256 rows: the column-wise path
    columns = list(rows[0])
    model = reference_model(breast_cancer_server.project)
    frame = pd.DataFrame(rows).astype("float64")
    labels, proba = answered(model.predict(frame)), model.predict_proba(frame)
    with breast_cancer_server.client() as client:
        body = client.post("/predict", json=rows, headers={"X-Request-ID": "big-records"}).json()
        assert body["predictions"] == labels
        assert np.array_equal(body["probabilities"], proba)  # exactly, not approximately
        split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        answer = client.post("/invocations", json={"dataframe_split": split})
        assert answer.json() == {"predictions": labels}
        inputs = [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": [r[c] for r in rows]}
            for c in columns
        ]
        v2 = client.post(f"/v2/models/{NAME}/infer", json={"inputs": inputs}).json()
        assert v2["outputs"][0]["data"] == labels
        assert np.array_equal(np.reshape(v2["outputs"][1]["data"], (-1, 2)), proba)
    client_ = triton.InferenceServerClient(url=f"127.0.0.1:{breast_cancer_server.port}")
    tensors = []
    for column in columns:
        tensor = triton.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(np.array([r[column] for r in rows]), binary_data=True)
        tensors.append(tensor)
    for binary_out in (True, False):
        outputs = [
            triton.InferRequestedOutput("predict", binary_data=binary_out),
            triton.InferRequestedOutput("predict_proba", binary_data=binary_out),
        ]
        result = client_.infer(
            NAME, tensors, outputs=outputs, headers={"X-Request-ID": "big-binary"}
        )
        assert result.as_numpy("predict").tolist() == labels
        assert np.array_equal(result.as_numpy("predict_proba"), proba)
        described = {o["name"]: o for o in result.get_response()["outputs"]}
        assert ("binary_data_size" in described["predict"].get("parameters", {})) is binary_out
    # A contract fault inside a binary tensor names its record and column.
    bad = np.array([r["mean_radius"] for r in rows])
    bad[[5, 650]] = -1.0
    tensors[0].set_data_from_numpy(bad, binary_data=True)
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="contract violation") as caught:
        client_.infer(NAME, tensors)
    assert "422" in str(caught.value)
    client_.close()
    with httpx.Client(base_url=breast_cancer_server.url) as raw_client:
        response = raw_client.post(
            f"/v2/models/{NAME}/infer",
            content=_binary_body(columns, rows, bad),
            headers={"Inference-Header-Content-Length": str(_binary_header_length(columns, rows))},
        )
    assert response.status_code == 422
    assert [(v["record"], v["column"], v["check"]) for v in response.json()["violations"]] == [
        (5, "mean_radius", "min"),
        (650, "mean_radius", "min"),
    ]
    # The big batches are logged column-wise, every row with the request id.
    folder = breast_cancer_server.project / "prediction_log"
    deadline = time.monotonic() + 15
    logged: list[str] = []
    while time.monotonic() < deadline and logged.count("big-binary") < 2 * len(rows):
        import pyarrow.parquet as pq

        logged = [
            rid
            for path in folder.glob("predictions-*.parquet")
            for rid in pq.read_table(path, columns=["request_id"]).column(0).to_pylist()
        ]
        time.sleep(0.2)
    assert logged.count("big-records") == len(rows)
    assert logged.count("big-binary") == 2 * len(rows)


def _binary_header(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    n = len(rows)
    inputs = [
        {"name": c, "shape": [n], "datatype": "FP64", "parameters": {"binary_data_size": 8 * n}}
        for c in columns
    ]
    return orjson.dumps({"inputs": inputs})


def _binary_header_length(columns: list[str], rows: list[dict[str, Any]]) -> int:
    return len(_binary_header(columns, rows))


def _binary_body(columns: list[str], rows: list[dict[str, Any]], first: np.ndarray) -> bytes:
    data = [first.astype("<f8").tobytes()]
    data += [np.array([r[c] for r in rows], dtype="<f8").tobytes() for c in columns[1:]]
    return _binary_header(columns, rows) + b"".join(data)


def test_bad_requests_are_4xx_naming_every_field(breast_cancer_server: Server) -> None:  # noqa: F811
    row = records("breast_cancer", 1)[0]
    bad = dict(row, mean_radius=-1.0, mean_area="lots", mean_texture=None)
    del bad["worst_area"]
    with breast_cancer_server.client() as client:
        response = client.post("/predict", json=[row, bad])
        assert response.status_code == 422
        body = response.json()
        found = {(v["record"], v["column"], v["check"]) for v in body["violations"]}
        assert found == {
            (1, "mean_radius", "min"),
            (1, "mean_area", "dtype"),
            (1, "mean_texture", "not_nullable"),
            (1, "worst_area", "missing_column"),
        }
        assert body["total"] == 4
        assert response.headers["x-request-id"] == body["request_id"]
        assert client.post("/predict", content=b"{not json").status_code == 400
        assert client.post("/predict", content=b"").status_code == 400
        assert client.post("/predict", json="a string").status_code == 400
        assert client.post("/predict", json=[1, 2]).json()["violations"][0]["check"] == "record"
        huge = b"[" + b",".join([orjson.dumps(row)] * 2000) + b"]"  # > max_body_bytes (1 MB)
        assert client.post("/predict", content=huge).status_code == 413
        text_number = dict(row, mean_radius="17.99")  # numeric text is valid per the contract
        assert client.post("/predict", json=text_number).status_code == 200
        inf = dict(row, mean_radius="inf")
        inf_body = client.post("/predict", json=inf)
        assert inf_body.status_code == 422
        assert inf_body.json()["violations"][0]["message"] == "not a finite number"
        metrics = client.get("/metrics").text
    assert 'mlops_input_violations_total{check="min",column="mean_radius"}' in metrics
    assert 'mlops_requests_total{endpoint="/predict",model_version="1",status="422"}' in metrics


def test_metrics_count_requests_latency_and_predictions(breast_cancer_server: Server) -> None:  # noqa: F811
    with breast_cancer_server.client() as client:
        for row in records("breast_cancer", 5):
            assert client.post("/predict", json=row).status_code == 200
        text = client.get("/metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    ok = 'endpoint="/predict",model_version="1",status="200"'
    assert samples[f"mlops_requests_total{{{ok}}}"] >= 5
    assert samples[f"mlops_request_latency_seconds_count{{{ok}}}"] >= 5
    predicted = sum(v for k, v in samples.items() if k.startswith("mlops_predictions_total{"))
    assert predicted >= 5
    assert samples["mlops_prediction_log_dropped_total"] == 0
    assert any(k.startswith("mlops_model_info{") and 'arm="champion"' in k for k in samples)


def test_prediction_log_records_every_prediction(breast_cancer_server: Server) -> None:  # noqa: F811
    rows = records("breast_cancer", 3)
    with breast_cancer_server.client() as client:
        client.post("/predict", json=rows, headers={"X-Request-ID": "log-check-batch"})
        client.post("/predict", json=rows[0], headers={"X-Request-ID": "log-check-one"})
    folder = breast_cancer_server.project / "prediction_log"
    deadline = time.monotonic() + 10
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        lines = [
            orjson.loads(line)
            for path in sorted(folder.glob("predictions-*.jsonl"))
            for line in path.read_bytes().splitlines()
        ]
        if {"log-check-batch", "log-check-one"} <= {x["request_id"] for x in lines}:
            break
        time.sleep(0.1)
    batch = [x for x in lines if x["request_id"] == "log-check-batch"]
    assert [x["row"] for x in batch] == [0, 1, 2]
    assert [x["inputs"] for x in batch] == rows
    one = next(x for x in lines if x["request_id"] == "log-check-one")
    assert one["model"] == NAME
    assert one["model_version"] == "1"
    assert one["arm"] == "champion"
    assert one["endpoint"] == "/predict"
    assert one["output"]["prediction"] in (0, 1)
    assert len(one["output"]["probabilities"]) == 2
    assert one["latency_ms"] > 0
    assert one["ts"].endswith("Z")
    assert len(one["run_id"]) == 32


def test_concurrent_single_records_are_micro_batched(breast_cancer_server: Server) -> None:  # noqa: F811
    import asyncio

    rows = records("breast_cancer", 64)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=breast_cancer_server.url, timeout=30) as client:
            return await asyncio.gather(*[client.post("/predict", json=r) for r in rows])

    def batch_stats() -> tuple[float, float]:
        text = httpx.get(breast_cancer_server.url + "/metrics").text
        values = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("mlops_batch_size_")
        }
        return values["mlops_batch_size_count"], values["mlops_batch_size_sum"]

    count0, sum0 = batch_stats()
    responses = asyncio.run(burst())
    count1, sum1 = batch_stats()
    assert all(r.status_code == 200 for r in responses)
    assert sum1 - sum0 == 64  # every row scored once
    assert count1 - count0 < 64  # ...in fewer model calls than requests


def test_schemathesis_finds_no_server_error(breast_cancer_server: Server) -> None:  # noqa: F811
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(breast_cancer_server.url + "/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=breast_cancer_server.url)
            assert response.status_code < 500, (case.path, case.body, response.text)

        run()
        checked += 1
    assert checked == 12  # every operation in the document

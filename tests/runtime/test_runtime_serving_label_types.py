"""A prediction has the type the contract gives the target, on every protocol and in the log.

Training reads a category as text, so breast-cancer's `malignant: {type: category, values:
[0, 1]}` is fitted on "0" and "1"; a client still gets the integers 0 and 1, from /predict,
/invocations and Open Inference V2 (datatype INT64, JSON and binary), in the prediction log and
in the OpenAPI document. A bool target answers booleans, a category of names text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator
from serving_fixtures import (  # noqa: F401 - pytest fixtures
    Server,
    breast_cancer_server,
    build_project,
    records,
    serving_root,
    start_server,
    train,
)

from mlops_runtime.serve.labels import answers, label_kind, label_schema
from mlops_runtime.serve.open_inference_codec import encode_tensor

SPECS = Path(__file__).resolve().parents[2] / "specs"


def v2_inputs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def datatype(value: Any) -> str:
        if isinstance(value, bool):
            return "BOOL"
        return "BYTES" if isinstance(value, str) else "FP64"

    return [
        {"name": c, "shape": [len(rows)], "datatype": datatype(rows[0][c]), "data": [r[c] for r in rows]}
        for c in rows[0]
    ]  # fmt: skip


def conforms(openapi: dict[str, Any], schema: str, body: Any) -> None:
    """`body` against components/schemas/<schema> of the served OpenAPI document."""
    Draft202012Validator({**openapi, "$ref": f"#/components/schemas/{schema}"}).validate(body)


def logged(project: Path, request_ids: set[str]) -> dict[str, list[Any]]:
    """Predictions by request id, from the JSON lines and the Parquet files of the log."""
    found: dict[str, list[Any]] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = {}
        for path in sorted((project / "prediction_log").glob("predictions-*.jsonl")):
            for line in path.read_bytes().splitlines():
                entry = json.loads(line)
                if entry["request_id"] in request_ids and entry.get("output"):
                    found.setdefault(entry["request_id"], []).append(entry["output"]["prediction"])
        for path in sorted((project / "prediction_log").glob("predictions-*.parquet")):
            table = pq.read_table(path).flatten()
            for rid, prediction in zip(
                table["request_id"].to_pylist(), table["output.prediction"].to_pylist(), strict=True
            ):
                if rid in request_ids:
                    found.setdefault(rid, []).append(prediction)
        if set(found) == request_ids:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not logged in time: {request_ids - set(found)}")


def check_types(server: Server, name: str, rows: list[dict[str, Any]], kind: type) -> list[Any]:
    """Every protocol answers predictions of Python type `kind`; returns /predict's."""
    many = rows * (300 // len(rows) + 1)  # > 256 rows: the column-wise path, logged as Parquet
    with server.client() as client:
        openapi = client.get("/openapi.json").json()
        one = client.post("/predict", json=rows[0], headers={"X-Request-ID": "type-one"}).json()
        assert type(one["prediction"]) is kind, one
        assert all(type(c) is kind for c in one["classes"]), one
        conforms(openapi, "Prediction", one)
        batch = client.post("/predict", json=rows, headers={"X-Request-ID": "type-batch"}).json()
        assert all(type(p) is kind for p in batch["predictions"])
        conforms(openapi, "Prediction", batch)
        assert batch["predictions"][0] == one["prediction"]
        big = client.post("/predict", json=many, headers={"X-Request-ID": "type-big"}).json()
        assert big["predictions"][: len(rows)] == batch["predictions"]
        mlflow = client.post("/invocations", json={"dataframe_records": rows}).json()
        assert mlflow == {"predictions": batch["predictions"]}
        split = {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}
        assert client.post("/invocations", json={"dataframe_split": split}).json() == mlflow
        invocations = openapi["paths"]["/invocations"]["post"]["responses"]["200"]
        Draft202012Validator(
            {**openapi, **invocations["content"]["application/json"]["schema"]}
        ).validate(mlflow)
        v2 = client.post(f"/v2/models/{name}/infer", json={"inputs": v2_inputs(rows)}).json()
        predict = v2["outputs"][0]
        assert predict["data"] == batch["predictions"]
        assert v2["parameters"]["classes"] == one["classes"]
        metadata = client.get(f"/v2/models/{name}").json()
        assert metadata["outputs"][0]["datatype"] == predict["datatype"]
        binary = client.post(
            f"/v2/models/{name}/infer",
            json={"inputs": v2_inputs(rows), "outputs": [{"name": "predict", "parameters": {"binary_data": True}}]},
        )  # fmt: skip
        size = int(binary.headers["inference-header-content-length"])
        head = json.loads(binary.content[:size])
        raw = binary.content[size:]
        assert head["outputs"][0]["datatype"] == predict["datatype"]
        assert raw == encode_tensor(predict["datatype"], predict["data"])
    log = logged(server.project, {"type-one", "type-batch", "type-big"})
    assert log["type-one"] == [one["prediction"]]
    assert log["type-batch"] == batch["predictions"]
    assert log["type-big"] == big["predictions"]
    assert all(type(p) is kind for values in log.values() for p in values)
    return list(batch["predictions"])


@pytest.mark.slow
def test_integer_codes_come_back_as_integers(breast_cancer_server: Server) -> None:  # noqa: F811
    rows = records("breast_cancer", 12)
    predictions = check_types(breast_cancer_server, "breast-cancer", rows, int)
    assert set(predictions) <= {0, 1}
    with breast_cancer_server.client() as client:
        openapi = client.get("/openapi.json").json()
        v2 = client.post("/v2/models/breast-cancer/infer", json={"inputs": v2_inputs(rows)})
    assert openapi["components"]["schemas"]["Label"]["type"] == "integer"
    assert openapi["components"]["schemas"]["Label"]["enum"] == [0, 1]
    prediction = openapi["components"]["schemas"]["Prediction"]["properties"]
    assert prediction["prediction"] == {"$ref": "#/components/schemas/Label"}
    assert prediction["classes"]["items"] == {"$ref": "#/components/schemas/Label"}
    assert v2.json()["outputs"][0]["datatype"] == "INT64"
    with pytest.raises(Exception, match="is not of type 'integer'"):
        conforms(openapi, "Label", "1")


@pytest.mark.slow
def test_level_0_codes_come_back_as_integers(tmp_path: Path) -> None:
    """wine: `cultivar: {type: category, values: [0, 1, 2]}`, the local model file."""
    project = build_project(tmp_path, "wine")
    train(project)
    server = start_server(project)
    try:
        rows = records("wine")[::12]  # the file is sorted by cultivar: take every class
        predictions = check_types(server, "wine", rows, int)
        assert set(predictions) <= {0, 1, 2} and len(set(predictions)) > 1
        meta = httpx.get(server.url + "/v2/models/wine").json()
        assert meta["outputs"][0]["datatype"] == "INT64"
    finally:
        server.stop()


BOOL_TARGET = ("malignant: {type: category, values: [0, 1]}", "malignant: {type: bool}")


@pytest.mark.slow
def test_a_bool_target_answers_booleans(tmp_path: Path) -> None:
    text = (SPECS / "breast-cancer.mlops.yaml").read_text()
    assert BOOL_TARGET[0] in text
    text = text.replace(BOOL_TARGET[0], BOOL_TARGET[1]).replace("level: 3", "level: 0")
    text = text.replace("class: 1,", "class: true,")
    project = build_project(tmp_path, "breast-cancer", text)
    train(project)
    server = start_server(project)
    try:
        predictions = check_types(server, "breast-cancer", records("breast_cancer", 12), bool)
        assert set(predictions) <= {True, False}
        with server.client() as client:
            assert client.get("/v2/models/breast-cancer").json()["outputs"][0]["datatype"] == "BOOL"
            label = client.get("/openapi.json").json()["components"]["schemas"]["Label"]
        assert label["type"] == "boolean" and "enum" not in label
    finally:
        server.stop()


@pytest.mark.slow
def test_a_category_of_names_answers_text(tmp_path: Path) -> None:
    project = build_project(tmp_path, "penguins")
    train(project)
    server = start_server(project)
    try:
        rows = [r for r in records("penguins", 40) if None not in r.values()][:12]
        predictions = check_types(server, "penguins", rows, str)
        assert set(predictions) <= {"Adelie", "Chinstrap", "Gentoo"}
        with server.client() as client:
            assert client.get("/v2/models/penguins").json()["outputs"][0]["datatype"] == "BYTES"
            label = client.get("/openapi.json").json()["components"]["schemas"]["Label"]
        assert label["type"] == "string"
        assert label["enum"] == ["Adelie", "Chinstrap", "Gentoo"]
    finally:
        server.stop()


# -- the rule itself ------------------------------------------------------------------------


def kind_of(rule: dict[str, Any], task: str = "classification") -> str:
    config = {"data": {"target": "y"}, "model": {"task": task}}
    return label_kind(config, {"columns": {"y": rule}})


def test_label_kind_follows_the_contract() -> None:
    assert kind_of({"type": "category", "values": ["0", "1"]}) == "integer"
    assert kind_of({"type": "category", "values": ["0", "2.5"]}) == "number"
    assert kind_of({"type": "category", "values": ["0", "007"]}) == "string"  # "007" is text
    assert kind_of({"type": "category", "values": ["a", "b"]}) == "string"
    assert kind_of({"type": "category", "values": None}) == "string"
    assert kind_of({"type": "int"}) == "integer"
    assert kind_of({"type": "bool"}) == "boolean"
    assert kind_of({"type": "str"}) == "string"
    assert kind_of({"type": "float"}, "regression") == "number"
    config = {"data": {"target": "y"}, "model": {"task": "classification"}}
    contract = {"columns": {"y": {"type": "category", "values": ["1", "2"]}}}
    assert label_schema(config, contract) == {"type": "integer", "enum": [1, 2]}


def test_answers_keep_the_class_order_and_one_type() -> None:
    coded = answers(np.array(["0", "1", "2"], dtype=object), "integer")
    assert coded is not None and coded.tolist() == [0, 1, 2] and coded.dtype == np.int64
    mixed = answers(np.array(["0", "2.5"], dtype=object), "number")
    assert mixed is not None and [type(v) for v in mixed.tolist()] == [int, float]
    assert answers(np.array(["a", "b"], dtype=object), "string") is None  # as trained
    assert answers(np.array([0, 1]), "integer") is None  # already integers
    assert answers(np.array([False, True]), "boolean") is None
    # A class that cannot be read as the kind leaves every class as trained.
    assert answers(np.array(["0", "x"], dtype=object), "integer") is None
    assert answers(None, "integer") is None

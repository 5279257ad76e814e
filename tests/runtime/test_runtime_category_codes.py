"""Categories of numeric codes (`values: [1, 2]`; contract.json lists "1" and "2"): a code may
arrive as text or as a number on every path, and the model always sees the text.

The diabetes fixture declares `sex` so: a category of the codes 1 and 2, read from the CSV as
text. Here clients send JSON numbers and INT64 tensors, and training reads a Parquet file whose
`sex` column is an int column.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from serving_fixtures import build_project, start_server
from serving_fixtures import train as train_stage

from mlops_runtime.contract.coercion import coerce_frame, coerce_series, coerce_value
from mlops_runtime.contract.record_check import check_record
from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.contract.rules import category_readings, normalize_column
from mlops_runtime.contract.training_gate import validate_frame
from mlops_runtime.data import load_table
from mlops_runtime.features.pipeline import build_pipeline, model_frame, target_array
from mlops_runtime.serve.fast_predict import build_predictor
from mlops_runtime.serve.model_source import LocalSource, feature_split, known_categories
from mlops_runtime.serve.open_inference_codec import decode_inputs, encode_tensor
from mlops_runtime.serve.openapi import record_schema
from mlops_runtime.serve.record_validation import (
    Batch,
    ContractRejection,
    Door,
)
from mlops_runtime.serve.rows import Rows
from mlops_runtime.train.plain import train

REPO = Path(__file__).resolve().parents[2]
DIABETES = REPO / "specs" / "data" / "diabetes.csv"
SERVING = {"unknown_categories": "reject"}


# -- reading a code -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, (True, "2")),
        (2.5, (True, "2.5")),
        (2.0, (True, "2.0")),  # the text Python writes: not the category "2"
        (-0.0, (True, "-0.0")),
        (np.int64(2), (True, "2")),
        (np.uint8(7), (True, "7")),
        (np.float64(2.5), (True, "2.5")),
        ("2", (True, "2")),
        (float("nan"), (True, None)),  # a null, as in every other column
        (None, (True, None)),
        (True, (False, None)),
        (np.True_, (False, None)),
        (float("inf"), (False, None)),
        ([2], (False, None)),
    ],
)
def test_coerce_value_reads_a_number_as_its_text(value: Any, expected: tuple[bool, Any]) -> None:
    assert coerce_value(value, "category") == expected


def test_contract_codes_are_text_after_normalizing() -> None:
    assert normalize_column({"type": "category", "values": [0, 1, 2.5]})["values"] == [
        "0",
        "1",
        "2.5",
    ]
    with pytest.raises(ValueError, match="neither text nor a number"):
        normalize_column({"type": "category", "values": [True]})


def test_lookup_tables_keep_types_apart() -> None:
    readings = category_readings(["0", "1", "2.5", "007", "0.0", "a"])
    assert readings[int] == {0: "0", 1: "1"}  # "007" is text only: 7 reads as "7"
    assert readings[float] == {2.5: "2.5"}  # zeros take the exact slow path (-0.0 == 0.0)
    assert readings[str]["007"] == "007"


def test_frame_columns_of_codes_become_text() -> None:
    cases = {
        "int64": pd.Series([1, 2, 1]),
        "Int64 with a null": pd.Series(pd.array([1, None, 2], dtype="Int64")),
        "uint8": pd.Series([1, 2, 1], dtype="uint8"),
        "objects": pd.Series([1, "2", None], dtype=object),
    }
    for label, series in cases.items():
        typed, bad = coerce_series(series, "category")
        assert not bad.any(), label
        assert [None if pd.isna(v) else v for v in typed] == [
            None if pd.isna(v) else str(v) for v in series
        ], label
    typed, bad = coerce_series(pd.Series([-0.0, 0.0, 2.5, np.nan, np.inf]), "category")
    assert typed.tolist()[:3] == ["-0.0", "0.0", "2.5"]  # factorize alone would merge the zeros
    assert bad.tolist() == [False, False, False, False, True]
    typed, bad = coerce_series(pd.Series([True, False]), "category")
    assert bad.all()


# -- the serving door ---------------------------------------------------------------------


def diabetes_rows(n: int) -> list[dict[str, Any]]:
    """Records of the diabetes CSV as a JSON client sends them: numbers, sex as a number."""
    with DIABETES.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    out = []
    for row in rows:
        record = {k: float(v) if "." in v else int(v) for k, v in row.items()}
        del record["progression"]
        out.append(record)
    return out


@pytest.fixture
def served(dataset_config: Any) -> tuple[Door, Any]:
    """A door and a compiled predictor for a diabetes model trained on text codes."""
    config, contract = dataset_config("diabetes")
    config["serving"] = dict(SERVING)
    frame = coerce_frame(load_table(DIABETES, contract), contract)[0]
    pipeline = build_pipeline(config)
    pipeline.fit(model_frame(frame, config), target_array(frame, config))
    numeric, categorical = feature_split(config, contract)
    door = Door(config, contract, numeric, categorical, known_categories(pipeline))
    predictor = build_predictor(pipeline, numeric, categorical, numeric + categorical)
    return door, predictor


def predict(predictor: Any, batch: Batch) -> np.ndarray:
    return np.asarray(predictor.predict(batch.numeric, batch.categorical).labels)


def test_json_number_takes_the_fast_path_and_scores_as_the_text(served: tuple[Door, Any]) -> None:
    door, predictor = served
    numbers = diabetes_rows(20)
    texts = [dict(r, sex=str(r["sex"])) for r in numbers]
    assert {r["sex"] for r in numbers} == {1, 2}
    as_text = door.validate(texts)
    as_number = door.validate(numbers)
    assert as_number.categorical.tolist() == as_text.categorical.tolist()
    assert {type(v) for v in as_number.categorical.ravel()} == {str}
    assert np.array_equal(predict(predictor, as_number), predict(predictor, as_text))
    numeric, categorical, other = door._matrices(1)
    assert door._fast(numbers[0], numeric[0], categorical[0], other[0])  # no slow detour
    by_column = door.validate_columns(Rows(len(numbers), records=numbers))
    assert by_column.categorical.tolist() == as_text.categorical.tolist()


def v2_inputs(rows: list[dict[str, Any]], sex_type: str = "INT64") -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "shape": [len(rows)],
            "datatype": sex_type if name == "sex" else "FP64",
            "data": [r[name] for r in rows],
        }
        for name in rows[0]
    ]


@pytest.mark.parametrize("datatype", ["INT64", "INT32", "UINT8"])
def test_v2_integer_tensors_of_codes(served: tuple[Door, Any], datatype: str) -> None:
    door, predictor = served
    rows = diabetes_rows(12)
    expected = door.validate([dict(r, sex=str(r["sex"])) for r in rows])
    # JSON tensor data
    json_rows, _ = decode_inputs({"inputs": v2_inputs(rows, datatype)})
    got = door.validate_columns(json_rows)
    assert got.categorical.tolist() == expected.categorical.tolist()
    # binary tensor data: the codes arrive as a numpy integer array
    names = list(rows[0])
    chunks = [
        encode_tensor(datatype if n == "sex" else "FP64", [r[n] for r in rows]) for n in names
    ]
    header = {
        "inputs": [
            {
                "name": n,
                "shape": [len(rows)],
                "datatype": datatype if n == "sex" else "FP64",
                "parameters": {"binary_data_size": len(chunk)},
            }
            for n, chunk in zip(names, chunks, strict=True)
        ]
    }
    binary_rows, _ = decode_inputs(header, b"".join(chunks))
    assert isinstance(binary_rows.columns["sex"], np.ndarray)
    got = door.validate_columns(binary_rows)
    assert got.categorical.tolist() == expected.categorical.tolist()
    assert np.array_equal(predict(predictor, got), predict(predictor, expected))


def test_fp64_codes_read_as_float_text(dataset_config: Any) -> None:
    config, contract = dataset_config("diabetes")
    config["serving"] = dict(SERVING)
    numeric, categorical = feature_split(config, contract)
    rows = diabetes_rows(3)
    # FP64 1.0 reads as "1.0", which the contract does not list: a `values` fault, as JSON 1.0.
    door = Door(config, contract, numeric, categorical)
    fp64 = decode_inputs({"inputs": v2_inputs(rows, "FP64")})[0]
    fp64.columns["sex"] = np.array([float(r["sex"]) for r in rows])
    with pytest.raises(ContractRejection) as caught:
        door.validate_columns(fp64)
    assert {(e["column"], e["check"], e["value"]) for e in caught.value.errors} <= {
        ("sex", "values", 1.0),
        ("sex", "values", 2.0),
    }
    # A category of fractional codes takes FP64 tensors as they are.
    contract = copy.deepcopy(contract)
    contract["columns"]["sex"]["values"] = ["0.5", "1.5"]
    door = Door(config, contract, numeric, categorical)
    fp64.columns["sex"] = np.array([0.5, 1.5, 0.5])
    assert door.validate_columns(fp64).categorical[:, 0].tolist() == ["0.5", "1.5", "0.5"]


def test_signed_zero_codes_keep_their_text(dataset_config: Any) -> None:
    config, contract = dataset_config("diabetes")
    config["serving"] = dict(SERVING)
    contract["columns"]["sex"]["values"] = None  # any category
    numeric, categorical = feature_split(config, contract)
    door = Door(config, contract, numeric, categorical)
    rows = decode_inputs({"inputs": v2_inputs(diabetes_rows(2), "FP64")})[0]
    rows.columns["sex"] = np.array([-0.0, 0.0])  # one distinct number for numpy, two texts
    assert door.validate_columns(rows).categorical[:, 0].tolist() == ["-0.0", "0.0"]


def test_a_code_outside_the_list_is_a_values_fault_everywhere(
    served: tuple[Door, Any], dataset_config: Any
) -> None:
    door, _ = served
    _, contract = dataset_config("diabetes")
    rows = diabetes_rows(3)
    rows[1]["sex"] = 4
    expected = [(1, "sex", "values")]

    def faults(call: Any) -> list[tuple[int, str, str]]:
        with pytest.raises(ContractRejection) as caught:
            call()
        return [(e["record"], e["column"], e["check"]) for e in caught.value.errors]

    assert [
        (e["column"], e["check"]) for e in check_record(rows[1], contract, ignore={"progression"})
    ] == [("sex", "values")]
    assert faults(lambda: door.validate(rows)) == expected
    assert faults(lambda: door.validate_columns(Rows(3, records=rows))) == expected
    tensors = decode_inputs({"inputs": v2_inputs(rows)})[0]
    assert faults(lambda: door.validate_columns(tensors)) == expected
    tensors.columns["sex"] = np.array([r["sex"] for r in rows], dtype=np.int64)
    assert faults(lambda: door.validate_columns(tensors)) == expected
    # A boolean is no category at all.
    assert faults(lambda: door.validate([dict(rows[0], sex=True)])) == [(0, "sex", "dtype")]


def test_openapi_record_schema_names_codes_as_text_and_numbers(dataset_config: Any) -> None:
    config, contract = dataset_config("diabetes")
    schema = record_schema(config, contract)
    assert schema["properties"]["sex"] == {"type": ["string", "number"], "enum": ["1", "2", 1, 2]}
    validator = Draft202012Validator(schema)
    row = diabetes_rows(1)[0]
    assert validator.is_valid(row)
    assert validator.is_valid(dict(row, sex="2"))
    assert not validator.is_valid(dict(row, sex=4))
    assert not validator.is_valid(dict(row, sex=True))


# -- training from a file of codes ------------------------------------------------------------


def test_parquet_int_codes_pass_the_gate_and_train(dataset_config: Any, tmp_path: Path) -> None:
    config, contract = dataset_config("diabetes")
    path = tmp_path / "diabetes.parquet"
    raw = pd.read_csv(DIABETES)
    assert raw["sex"].dtype == np.int64
    raw.to_parquet(path)
    frame = load_table(path, contract)
    typed, report = validate_frame(frame, contract, report_path=tmp_path / "report.json")
    assert report["ok"] is True
    assert str(typed["sex"].dtype) == "string"
    assert set(typed["sex"]) == {"1", "2"}
    from_csv = coerce_frame(load_table(DIABETES, contract), contract)[0]
    pd.testing.assert_series_equal(typed["sex"], from_csv["sex"])
    metrics, model_path = train(
        config, contract, environ={"MLOPS_TRAIN_DATA": str(path)}, model_path=tmp_path / "m.skops"
    )
    assert metrics
    source = LocalSource(config, model_path)
    ref = source.lookup("champion")
    assert ref is not None
    pipeline = source.load(ref)
    assert known_categories(pipeline) == {"sex": {"1", "2"}}


def test_parquet_codes_with_nulls_stay_whole_numbers(dataset_config: Any, tmp_path: Path) -> None:
    """pandas reads an int column with nulls as floats; the codes must still read "1", "2"."""
    _, contract = dataset_config("diabetes")
    contract["columns"]["sex"].update(nullable=True, max_null_fraction=0.1)
    raw = pd.read_csv(DIABETES)
    raw["sex"] = pd.array(raw["sex"], dtype="Int64")
    raw.loc[[3, 7], "sex"] = pd.NA
    path = tmp_path / "codes.parquet"
    # Written by pyarrow without pandas metadata, as another tool would write it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False).replace_schema_metadata(), path)
    assert pd.read_parquet(path)["sex"].dtype == np.float64  # what pandas alone would give
    typed, _ = validate_frame(load_table(path, contract), contract, write=False)
    assert set(typed["sex"].dropna()) == {"1", "2"}
    assert typed["sex"].isna().sum() == 2
    raw.loc[0, "sex"] = 4
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False).replace_schema_metadata(), path)
    with pytest.raises(ContractViolation) as caught:
        validate_frame(load_table(path, contract), contract, write=False)
    assert [(f["column"], f["check"]) for f in caught.value.report["failures"]] == [
        ("sex", "values")
    ]


# -- end to end: a spec with a category of codes, trained and served ------------------------

CODES_SPEC = """\
apiVersion: mlops/v1
name: diabetes-codes
description: Diabetes progression with sex as a category of numeric codes.
level: 0
data:
  train: data/diabetes.csv
  target: progression
  contract:
    min_rows: 200
    columns:
      age: {type: int, min: 0, max: 120}
      sex: {type: category, values: [1, 2]}
      bmi: {type: float, min: 10, max: 80}
      bp: {type: float, min: 30, max: 250}
      s1: {type: int, min: 0}
      s2: {type: float, min: 0}
      s3: {type: float, min: 0}
      s4: {type: float, min: 0}
      s5: {type: float, min: 0}
      s6: {type: int, min: 0}
      progression: {type: int, min: 0}
features:
  numeric: {columns: [age, bmi, bp, s1, s2, s3, s4, s5, s6]}
  categorical: {columns: [sex]}
model:
  estimator: sklearn.linear_model.Ridge
  params: {alpha: 1.0}
"""


def build_codes_project(root: Path) -> Path:
    """`mlops build` of CODES_SPEC beside a copy of specs/ (it reads specs/data/)."""
    project = build_project(root, "diabetes-codes", CODES_SPEC)
    assert orjson.loads((project / "contract.json").read_bytes())["columns"]["sex"] == {
        "type": "category",
        "values": ["1", "2"],
    }
    return project


@pytest.mark.slow
def test_server_takes_codes_as_json_numbers_and_int64_tensors(tmp_path: Path) -> None:
    project = build_codes_project(tmp_path)
    train_stage(project)
    server = start_server(project)
    rows = diabetes_rows(8)
    texts = [dict(r, sex=str(r["sex"])) for r in rows]
    try:
        with server.client() as client:
            as_text = client.post("/predict", json=texts)
            assert as_text.status_code == 200, as_text.text
            as_number = client.post("/predict", json=rows)
            assert as_number.status_code == 200, as_number.text
            assert as_number.json()["predictions"] == as_text.json()["predictions"]
            single = client.post("/predict", json=rows[0])
            assert single.status_code == 200, single.text
            assert single.json()["prediction"] == as_text.json()["predictions"][0]
            # V2 with JSON tensor data
            v2 = client.post("/v2/models/diabetes-codes/infer", json={"inputs": v2_inputs(rows)})
            assert v2.status_code == 200, v2.text
            assert v2.json()["outputs"][0]["data"] == as_text.json()["predictions"]
            # V2 with binary tensor data
            v2_binary = post_binary(client, rows)
            assert v2_binary.status_code == 200, v2_binary.text
            assert v2_binary.json()["outputs"][0]["data"] == as_text.json()["predictions"]
            # A code outside the list is refused, naming the column and the check.
            bad = client.post("/predict", json=dict(rows[0], sex=4))
            assert bad.status_code == 422
            assert [(v["column"], v["check"]) for v in bad.json()["violations"]] == [
                ("sex", "values")
            ]
            schema = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
            assert schema["properties"]["sex"]["enum"] == ["1", "2", 1, 2]
    finally:
        server.stop()


def post_binary(client: httpx.Client, rows: list[dict[str, Any]]) -> httpx.Response:
    names = list(rows[0])
    types = {n: "INT64" if n == "sex" else "FP64" for n in names}
    chunks = [encode_tensor(types[n], [r[n] for r in rows]) for n in names]
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": n,
                    "shape": [len(rows)],
                    "datatype": types[n],
                    "parameters": {"binary_data_size": len(chunk)},
                }
                for n, chunk in zip(names, chunks, strict=True)
            ]
        }
    )
    return client.post(
        "/v2/models/diabetes-codes/infer",
        content=header + b"".join(chunks),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

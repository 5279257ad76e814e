"""The batch path in-process: the column-wise contract check against the per-record one, the
binary tensor codec, and the Parquet side of the prediction log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_runtime.data import load_table
from mlops_runtime.features.columns import feature_split
from mlops_runtime.serve.exchange import BadRequest
from mlops_runtime.serve.open_inference_codec import decode_inputs, decode_tensor, encode_tensor
from mlops_runtime.serve.prediction_log import Entry, PredictionLog
from mlops_runtime.serve.record_validation import (
    MAX_REPORTED_ERRORS,
    Batch,
    ContractRejection,
    Door,
)
from mlops_runtime.serve.rows import Rows

SERVING = {"unknown_categories": "reject", "batching": {}, "prediction_log": {}}
KNOWN = {"island": {"Biscoe", "Dream"}, "sex": {"female", "male"}}  # Torgersen is "unseen"

# Values that break a column in every way the contract knows, plus valid-looking ones.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included
    st.sampled_from(
        ["1", " 3 ", "2.5", "nan", "inf", "-1e400", "x", "", "Dream", "Torgersen", "male", "true"]
    ),
    st.lists(st.integers(), max_size=2),
    st.just({"nested": 1}),
)


def dataset_rows(config: dict[str, Any], contract: dict[str, Any]) -> list[dict[str, Any]]:
    target = config["data"]["target"]
    frame = load_table(Path(config["data"]["path"]), contract).drop(columns=[target])
    return [
        {k: (None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v)
         for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]  # fmt: skip


def outcome(door: Door, call: Any) -> tuple[str, Any]:
    try:
        batch: Batch = call()
    except ContractRejection as rejection:
        return "422", (rejection.errors, rejection.total)
    return "ok", batch


def same_batch(a: Batch, b: Batch) -> None:
    assert np.array_equal(a.numeric, b.numeric, equal_nan=True)
    assert a.categorical.shape == b.categorical.shape
    for x, y in zip(a.categorical.ravel().tolist(), b.categorical.ravel().tolist(), strict=True):
        assert (x == y and type(x) is type(y)) or (pd.isna(x) and pd.isna(y))
    assert a.other.tolist() == b.other.tolist()


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_column_check_reports_exactly_what_the_record_check_reports(
    dataset_config: Any, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(["diabetes", "penguins", "wine"]))
    config, contract = dataset_config(name)
    policy = data.draw(st.sampled_from(["reject", "allow"]))
    config["serving"] = dict(SERVING, unknown_categories=policy)
    contract["extra_columns"] = data.draw(st.sampled_from(["ignore", "forbid"]))
    numeric, categorical = feature_split(config, contract)
    door = Door(config, contract, numeric, categorical, KNOWN if name == "penguins" else None)
    pool = dataset_rows(config, contract)
    columns = [c.name for c in door.columns]
    n = data.draw(st.integers(0, 40))
    records: list[Any] = [dict(pool[data.draw(st.integers(0, len(pool) - 1))]) for _ in range(n)]
    broken = data.draw(st.integers(0, 3))  # 0: a clean batch, else up to that many faults a row
    for record in records:
        for _ in range(data.draw(st.integers(0, broken))):
            what = data.draw(st.integers(0, 9))
            column = data.draw(st.sampled_from(columns))
            if what == 0:
                record.pop(column, None)
            elif what == 1:
                record["unexpected"] = 1
            elif what == 2:
                record[config["data"]["target"]] = 1  # ignored, even under "forbid"
            else:
                record[column] = data.draw(ODD_VALUES)
    if n and broken and data.draw(st.integers(0, 8)) == 0:
        records[data.draw(st.integers(0, n - 1))] = data.draw(ODD_VALUES)  # not an object
    expected = outcome(door, lambda: door.validate(records))
    got = outcome(door, lambda: door.validate_columns(Rows(n, records=records)))
    assert got[0] == expected[0]
    if expected[0] == "422":
        assert got[1] == expected[1]
    else:
        same_batch(got[1], expected[1])
    # The same rows as columns (dataframe_split, V2 tensors): only when every record is an
    # object with the same fields, as a column format can carry nothing else.
    if n and all(type(r) is dict and r.keys() == records[0].keys() for r in records):
        table = {k: [r[k] for r in records] for k in records[0]}
        got = outcome(door, lambda: door.validate_columns(Rows(n, columns=table)))
        assert got[0] == expected[0]
        if expected[0] == "422":
            assert got[1] == expected[1]
        else:
            same_batch(got[1], expected[1])
        # Float columns as a binary FP64 tensor would bring them.
        for k, values in table.items():
            if all(type(v) is float for v in values):
                table[k] = np.array(values, dtype=np.float64)
        got = outcome(door, lambda: door.validate_columns(Rows(n, columns=table)))
        assert got[0] == expected[0]
        if expected[0] == "422":
            assert got[1] == expected[1]


def test_column_check_of_a_big_faulty_batch_counts_every_fault(dataset_config: Any) -> None:
    config, contract = dataset_config("wine")
    config["serving"] = dict(SERVING)
    numeric, categorical = feature_split(config, contract)
    door = Door(config, contract, numeric, categorical)
    rows = dataset_rows(config, contract)
    records = [dict(rows[i % len(rows)]) for i in range(5000)]
    first = door.columns[0].name
    for i in range(0, 5000, 10):
        records[i][first] = -1.0 if contract["columns"][first].get("min") is not None else "x"
    with pytest.raises(ContractRejection) as per_record:
        door.validate(records)
    with pytest.raises(ContractRejection) as columnwise:
        door.validate_columns(Rows(5000, records=records))
    assert columnwise.value.total == per_record.value.total == 500
    assert columnwise.value.errors == per_record.value.errors
    assert len(columnwise.value.errors) == MAX_REPORTED_ERRORS
    assert columnwise.value.errors[1]["record"] == 10


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("FP64", [1.5, -0.0, float("inf"), 2.0**60]),
        ("FP32", [1.5, -2.25]),
        ("INT64", [1, -(2**63), 2**63 - 1]),
        ("UINT8", [0, 255]),
        ("BOOL", [True, False, True]),
        ("BYTES", ["Biscoe", "", "é ünïcode", "x" * 300]),
    ],
)
def test_binary_tensors_round_trip(datatype: str, values: list[Any]) -> None:
    raw = encode_tensor(datatype, values)
    if datatype == "BYTES":
        # 4-byte little-endian length, then the UTF-8 bytes, per element.
        assert raw[:4] == len(values[0]).to_bytes(4, "little")
    assert decode_tensor(datatype, raw, len(values)).tolist() == values


@pytest.mark.parametrize(
    ("datatype", "raw", "count", "message"),
    [
        ("FP64", b"\0" * 12, 2, "needs 16 bytes"),
        ("BOOL", b"\x02", 1, "0 or 1"),
        ("BYTES", b"\x05\0\0\0abc", 1, "runs past"),
        ("BYTES", b"\x01\0\0\0a\x01", 1, "longer than"),
        ("BYTES", b"\x01\0\0", 1, "ends after 0"),
        ("BYTES", b"\x01\0\0\0\xff", 1, "not UTF-8"),
    ],
)
def test_malformed_binary_tensors_are_refused(
    datatype: str, raw: bytes, count: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decode_tensor(datatype, raw, count)


def test_v2_binary_inputs_become_columns() -> None:
    # The tensors are decoded before any door sees them: decoding needs no contract.
    islands = encode_tensor("BYTES", ["Biscoe", "Dream"])
    mass = encode_tensor("FP64", [3800.0, 4100.0])
    header = {
        "inputs": [
            {"name": "island", "datatype": "BYTES", "shape": [2],
             "parameters": {"binary_data_size": len(islands)}},
            {"name": "body_mass_g", "datatype": "FP64", "shape": [2, 1],
             "parameters": {"binary_data_size": len(mass)}},
            {"name": "sex", "datatype": "BYTES", "shape": [2], "data": ["male", "female"]},
        ]
    }  # fmt: skip
    rows, _ = decode_inputs(header, islands + mass)
    assert rows.count == 2
    assert rows.record(1) == {"island": "Dream", "body_mass_g": 4100.0, "sex": "female"}
    with pytest.raises(BadRequest, match="left over"):
        decode_inputs(header, islands + mass + b"\0")
    with pytest.raises(BadRequest, match="beyond the body"):
        decode_inputs(header, islands)
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        decode_inputs(header, None)


def columnar_entry(rows: int, request_id: str, start: int = 0) -> Entry:
    numbers = np.arange(start, start + rows, dtype=np.float64)
    numbers[0] = np.nan
    text = np.array([f"c{i % 3}" for i in range(rows)], dtype=object)
    text[1] = np.nan
    proba = np.column_stack([numbers / 1e6, 1 - numbers / 1e6])
    labels = np.where(np.arange(rows) % 2 == 0, "0", "1").astype(object)
    return Entry(request_id, time.time(), "m", "2", None, "challenger", "/invocations", None,
                 labels.tolist(), proba, 12.5, {"x": numbers, "kind": text})  # fmt: skip


def test_big_batches_go_to_parquet_with_every_field(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", rotate_mb=1)
    log.start()
    assert log.submit(columnar_entry(1000, "big-1"))
    assert log.submit(columnar_entry(500, "big-2", 1000))
    assert log.flush(10)  # completes the open Parquet file
    log.close()
    files = sorted((tmp_path / "log").glob("predictions-*.parquet"))
    assert len(files) == 1
    assert not list((tmp_path / "log").glob("*.part"))
    table = pq.read_table(files[0])
    assert table.num_rows == 1500
    first = table.slice(0, 1).to_pylist()[0]
    assert first["request_id"] == "big-1" and first["row"] == 0
    assert first["model"] == "m" and first["model_version"] == "2" and first["run_id"] is None
    assert first["arm"] == "challenger" and first["endpoint"] == "/invocations"
    assert first["inputs"] == {"x": None, "kind": "c0"}  # NaN is a null
    assert first["output"]["prediction"] == "0"
    assert np.isnan(first["output"]["probabilities"]).all()  # NaN in, NaN out
    assert first["latency_ms"] == 12.5
    assert str(table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    last = table.slice(1499, 1).to_pylist()[0]
    assert last["request_id"] == "big-2" and last["row"] == 499
    assert last["inputs"] == {"x": 1499.0, "kind": "c1"}
    assert last["output"]["prediction"] == "1"
    assert last["output"]["probabilities"] == pytest.approx([1499 / 1e6, 1 - 1499 / 1e6])
    flat = table.flatten().to_pandas()
    assert {"inputs.x", "inputs.kind", "output.prediction"} <= set(flat.columns)


def test_parquet_log_rotates_and_prunes(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "all", rotate_mb=64)
    log.start()
    for i in range(4):
        assert log.submit(columnar_entry(100, f"req-{i}", i * 100))
        assert log.flush(20)  # each flush completes the open file
    log.close()
    files = sorted((tmp_path / "all").glob("predictions-*.parquet"))
    assert [pq.read_table(f).column("request_id").to_pylist()[0] for f in files] == [
        "req-0", "req-1", "req-2", "req-3"
    ]  # fmt: skip
    # Every batch is bigger than rotate_mb, so each write completes its file; two are kept.
    log = PredictionLog(tmp_path / "kept", rotate_mb=0.001, keep_files=2)
    log.start()
    for i in range(8):
        assert log.submit(columnar_entry(4000, f"req-{i}", i * 4000))
        assert log.flush(20)  # one write per batch (nothing left open to complete)
    log.close()
    files = sorted((tmp_path / "kept").glob("predictions-*.parquet"))
    assert len(files) == 2
    assert not list((tmp_path / "kept").glob("*.part"))
    assert pq.read_table(files[-1]).column("request_id").to_pylist()[-1] == "req-7"

"""Serving building blocks in-process: the door against check_record, the compiled predictor
against the sklearn pipeline, the A/B hash, the prediction log."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_runtime.contract.coercion import coerce_frame
from mlops_runtime.contract.training_gate import check_record
from mlops_runtime.data import load_table
from mlops_runtime.features.pipeline import (
    build_pipeline,
    feature_columns,
    model_frame,
    target_array,
)
from mlops_runtime.serve.ab import bucket, choose_arm
from mlops_runtime.serve.batching import MicroBatcher, ModelFailure
from mlops_runtime.serve.fast_predict import CompiledPredictor, build_predictor
from mlops_runtime.serve.model_source import feature_split, known_categories
from mlops_runtime.serve.prediction_log import Entry, PredictionLog
from mlops_runtime.serve.record_validation import ContractRejection, Door

SERVING = {
    "host": "127.0.0.1",
    "port": 8080,
    "model_alias": "champion",
    "batching": {"max_batch_size": 8, "max_wait_ms": 2.0},
    "ab_test": None,
    "reload_interval_s": 10,
    "max_body_bytes": 1_000_000,
    "unknown_categories": "reject",
    "prediction_log": {"dir": "prediction_log", "rotate_mb": 1},
}


def fitted(
    dataset_config: Any, name: str
) -> tuple[dict[str, Any], dict[str, Any], Any, pd.DataFrame]:
    config, contract = dataset_config(name)
    config["serving"] = dict(SERVING)
    raw = load_table(Path(config["data"]["path"]), contract)
    frame = coerce_frame(raw, contract)[0].dropna(subset=[config["data"]["target"]])
    pipeline = build_pipeline(config)
    pipeline.fit(model_frame(frame, config), target_array(frame, config))
    return config, contract, pipeline, frame


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes", "wine", "penguins"])
def test_compiled_predictor_equals_the_pipeline(dataset_config: Any, name: str) -> None:
    config, contract, pipeline, frame = fitted(dataset_config, name)
    numeric, categorical = feature_split(config, contract)
    predictor = build_predictor(pipeline, numeric, categorical, feature_columns(config))
    assert isinstance(predictor, CompiledPredictor)  # every example spec takes the fast path
    door = Door(config, contract, numeric, categorical, known_categories(pipeline))
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.drop(columns=[config["data"]["target"]]).astype(object).to_dict("records")
    ]
    batch = door.validate(records)
    got = predictor.predict(batch.numeric, batch.categorical)
    x = model_frame(frame, config)
    expected = pipeline.predict(x)
    if config["model"]["task"] == "classification":
        assert np.array_equal(got.labels, expected)
        assert np.allclose(got.proba, pipeline.predict_proba(x))
    else:
        assert np.allclose(got.labels, expected)


COLUMN_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what orjson can parse
    st.integers(min_value=-(2**70), max_value=2**70),  # in-process callers
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["1", "2", " 3 ", "2.5", "nan", "inf", "-1e400", "x", "", "Dream", "male", "true"]
    ),
    st.lists(st.integers(), max_size=2),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_door_agrees_with_check_record(dataset_config: Any, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["diabetes", "penguins", "wine"]))
    config, contract = dataset_config(name)
    config["serving"] = dict(SERVING, unknown_categories="allow")
    numeric, categorical = feature_split(config, contract)
    door = Door(config, contract, numeric, categorical)
    target = config["data"]["target"]
    columns = [c for c in contract["columns"] if c != target]
    record: dict[str, Any] = {}
    for column in columns:
        if data.draw(st.integers(0, 30)) == 0:
            continue  # now and then a missing field
        record[column] = data.draw(COLUMN_VALUES)
    if data.draw(st.integers(0, 10)) == 0:
        record["unexpected"] = 1
    verdict = check_record(record, contract, ignore={target})
    try:
        batch = door.validate([record])
    except ContractRejection as rejection:
        faults = {(e["column"], e["check"]) for e in rejection.errors}
        # Every contract fault is reported as check_record reports it; the door may add only
        # its serving checks (non-finite numbers).
        assert {(e["column"], e["check"]) for e in verdict} <= faults
        assert all(
            e["check"] == "dtype" and e["message"] == "not a finite number"
            for e in rejection.errors
            if (e["column"], e["check"]) not in {(v["column"], v["check"]) for v in verdict}
        )
        return
    assert verdict == []
    expected = model_frame(coerce_frame(pd.DataFrame([record]), contract)[0], config)
    for i, column in enumerate(numeric):
        assert np.allclose(batch.numeric[0, i], expected[column].iloc[0], equal_nan=True)
    for i, column in enumerate(categorical):
        want, got = expected[column].iloc[0], batch.categorical[0, i]
        assert (pd.isna(want) and pd.isna(got)) or want == got


def test_door_rejects_categories_unseen_in_training(dataset_config: Any) -> None:
    config, contract = dataset_config("penguins")
    contract["columns"]["island"]["values"] = None  # only the model knows the islands now
    numeric, categorical = feature_split(config, contract)
    known = {"island": {"Biscoe", "Dream", "Torgersen"}, "sex": {"female", "male"}}
    record = {"island": "Atlantis", "bill_length_mm": 40.0, "bill_depth_mm": 18.0,
              "flipper_length_mm": 190, "body_mass_g": 3800, "sex": "male", "year": 2008}  # fmt: skip
    config["serving"] = dict(SERVING, unknown_categories="reject")
    with pytest.raises(ContractRejection) as caught:
        Door(config, contract, numeric, categorical, known).validate([record])
    assert [(e["column"], e["check"]) for e in caught.value.errors] == [
        ("island", "unseen_category")
    ]
    config["serving"] = dict(SERVING, unknown_categories="allow")
    batch = Door(config, contract, numeric, categorical, known).validate([record])
    assert batch.categorical[0, categorical.index("island")] == "Atlantis"


def test_ab_bucket_is_uniform_and_deterministic() -> None:
    values = np.array([bucket(f"key-{i}") for i in range(20000)])
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.01
    share = np.mean([choose_arm(f"key-{i}", 0.25) == "challenger" for i in range(20000)])
    assert abs(share - 0.25) < 0.015
    assert {choose_arm("same", 0.5) for _ in range(10)} == {choose_arm("same", 0.5)}


def entry(rows: int, request_id: str = "r") -> Entry:
    return Entry(request_id, time.time(), "m", "1", "run", "champion", "/predict",
                 [{"x": i, "pad": "p" * 200} for i in range(rows)], list(range(rows)), None, 1.5)  # fmt: skip


def test_prediction_log_rotates_and_keeps_every_line(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", rotate_mb=0.01)  # ~10 kB files
    log.start()
    for i in range(100):
        assert log.submit(entry(3, f"req-{i}"))
    assert log.flush(10)
    log.close()
    files = sorted((tmp_path / "log").glob("predictions-*.jsonl"))
    assert len(files) > 3
    lines = [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]
    assert len(lines) == 300
    assert lines[0]["request_id"] == "req-0" and lines[-1]["request_id"] == "req-99"
    assert lines[4] | {"ts": None} == {
        "request_id": "req-1", "row": 1, "ts": None, "model": "m", "model_version": "1",
        "run_id": "run", "arm": "champion", "endpoint": "/predict",
        "inputs": {"x": 1, "pad": "p" * 200}, "output": {"prediction": 1}, "latency_ms": 1.5,
    }  # fmt: skip
    assert all(f.stat().st_size < 20_000 for f in files)


def test_prediction_log_keeps_only_the_newest_files(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log", rotate_mb=0.01, keep_files=3)
    log.start()
    for i in range(100):
        assert log.submit(entry(3, f"req-{i}"))
    assert log.flush(10)
    log.close()
    files = sorted((tmp_path / "log").glob("predictions-*.jsonl"))
    assert len(files) == 3
    last = [orjson.loads(line) for line in files[-1].read_bytes().splitlines()][-1]
    assert last["request_id"] == "req-99"


def test_prediction_log_drops_instead_of_blocking(tmp_path: Path) -> None:
    """A stalled disk: the writer hangs in its first write, so the queue fills to its bound;
    later entries are dropped and counted, and submit returns instead of waiting."""
    dropped: list[int] = []
    log = PredictionLog(tmp_path / "log", rotate_mb=1, max_rows=10, on_drop=dropped.append)
    assert log.submit(entry(4)) is False  # not started: nothing would ever drain the queue
    assert log.dropped == 4
    disk = threading.Event()
    writing = threading.Event()
    real_write = log._write

    def stalled_write(lines: list[bytes]) -> None:
        writing.set()
        disk.wait()
        real_write(lines)

    log._write = stalled_write  # type: ignore[method-assign]
    log.start()
    results: list[bool] = []
    submitter = threading.Thread(
        target=lambda: results.extend(log.submit(entry(4)) for _ in range(5))
    )
    submitter.start()
    submitter.join(timeout=30)
    assert not submitter.is_alive(), "submit waited for the stalled writer"
    assert writing.wait(timeout=30), "the writer never picked up the first entry"
    # 4 + 4 rows fit the bound of 10 while the writer is stuck; the rest cannot.
    assert results == [True, True, False, False, False]
    assert log.dropped == 4 + 3 * 4 and sum(dropped) == log.dropped
    disk.set()
    assert log.flush(10)
    assert log.submit(entry(4)) is True  # the queue drained, so entries are accepted again
    assert log.flush(10)
    log.close()
    lines = [
        ln
        for f in (tmp_path / "log").glob("predictions-*.jsonl")
        for ln in f.read_text().splitlines()
    ]
    assert len(lines) == 3 * 4


def test_micro_batcher_groups_concurrent_rows() -> None:
    calls: list[int] = []

    def run(model: Any, numeric: np.ndarray, categorical: np.ndarray) -> Any:
        from mlops_runtime.serve.fast_predict import Prediction

        calls.append(len(numeric))
        return Prediction(numeric[:, 0] * 2, None)

    async def main() -> list[Any]:
        batcher = MicroBatcher(run, max_batch_size=8, max_wait_ms=50)
        model = object()
        futures = [
            batcher.submit(model, np.array([float(i)]), np.empty(0, dtype=object))
            for i in range(20)
        ]
        return list(await asyncio.gather(*futures))

    results = asyncio.run(main())
    assert [label for label, _ in results] == [2.0 * i for i in range(20)]
    assert calls == [8, 8, 4]  # full batches go at once, the rest after one quiet loop turn


@pytest.mark.parametrize("error", [AttributeError, RuntimeError, KeyError, ZeroDivisionError])
def test_micro_batcher_resolves_every_request_of_a_batch_whose_model_raises(
    error: type[Exception],
) -> None:
    def run(model: Any, numeric: np.ndarray, categorical: np.ndarray) -> Any:
        raise error("broken")

    async def main() -> list[Any]:
        batcher = MicroBatcher(run, max_batch_size=4, max_wait_ms=50)
        model = object()
        futures = [
            batcher.submit(model, np.array([float(i)]), np.empty(0, dtype=object))
            for i in range(10)
        ]
        return list(
            await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout=5)
        )

    results = asyncio.run(main())
    assert len(results) == 10
    assert all(isinstance(r, ModelFailure) for r in results), results
    assert all(r.kind == "exception" and error.__name__ in r.message for r in results)


def test_micro_batcher_times_out_a_slow_model_in_its_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mlops_runtime.serve.fast_predict import Prediction

    release = threading.Event()
    timed_out: list[str] = []

    def run(model: Any, numeric: np.ndarray, categorical: np.ndarray) -> Any:
        release.wait(10)
        return Prediction(numeric[:, 0], None)

    async def main() -> tuple[list[Any], float]:
        model = object()
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(
                run,
                max_batch_size=4,
                max_wait_ms=1,
                slow={id(model)},
                executor=pool,
                timeout_s=0.3,
                on_timeout=lambda m, failure: timed_out.append(failure.kind),
            )
            started = time.monotonic()
            futures = [
                batcher.submit(model, np.array([float(i)]), np.empty(0, dtype=object))
                for i in range(3)
            ]
            # The loop is free while the model runs: this sleep ends on time.
            await asyncio.sleep(0.1)
            assert time.monotonic() - started < 0.25
            results = await asyncio.gather(*futures, return_exceptions=True)
            elapsed = time.monotonic() - started
            release.set()
        return list(results), elapsed

    results, elapsed = asyncio.run(main())
    assert all(isinstance(r, ModelFailure) and r.kind == "timeout" for r in results), results
    assert elapsed < 2
    assert timed_out == ["timeout"]

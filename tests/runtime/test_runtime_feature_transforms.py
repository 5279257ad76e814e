"""The derived features' transforms: each one's values, nulls and edges, and the offline
(frame) and online (records) paths giving the same bits."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_runtime.features.store.transforms import derive, derive_records

DEFINITIONS: dict[str, dict[str, Any]] = {
    "ratio": {"transform": "ratio", "inputs": ["a", "b"]},
    "gap": {"transform": "difference", "inputs": ["a", "b"]},
    "log": {"transform": "log1p", "inputs": ["a"]},
    "bucket": {"transform": "bucketize", "inputs": ["a"], "boundaries": [0.0, 10.0, 100.0]},
    "idle": {"transform": "days_since", "inputs": ["seen"]},
    "log_ratio": {"transform": "log1p", "inputs": ["ratio"]},
}
AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["a", "b", "seen"])


def _null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def test_each_transform_and_its_nulls() -> None:
    rows = [
        {"a": 5.0, "b": 2.0, "seen": "2026-02-27T12:00:00Z"},
        {"a": 3.0, "b": 0.0, "seen": None},  # division by zero: null, not inf
        {"a": -1.0, "b": 1.0, "seen": "2026-03-01T00:00:00+00:00"},  # log1p(-1): null
        {"a": None, "b": 1.0, "seen": "not a time"},
        {"a": 100.0, "b": 4.0, "seen": "2026-01-01T00:00:00"},  # naive: UTC
    ]
    out = derive(_frame(rows), DEFINITIONS, as_of=pd.Series([AS_OF] * len(rows)))
    assert out["ratio"].tolist()[0] == 2.5 and _null(out["ratio"][1])
    assert out["gap"].tolist()[:3] == [3.0, 3.0, -2.0]
    assert out["log"][0] == math.log1p(5.0) and _null(out["log"][2])
    # Buckets by the right edge: 100 is in the last bucket; a null stays null.
    assert out["bucket"].tolist()[:3] == [1, 1, 0] and out["bucket"][4] == 3
    assert _null(out["bucket"][3]) and str(out["bucket"].dtype) == "Int64"
    assert out["idle"][0] == 1.5 and out["idle"][2] == 0.0 and out["idle"][4] == 59.0
    assert _null(out["idle"][1]) and _null(out["idle"][3])
    assert out["log_ratio"][0] == math.log1p(2.5)  # a derived input of a derived feature


def test_days_since_counts_from_each_rows_own_time() -> None:
    frame = _frame([{"seen": "2026-01-01T00:00:00Z"}, {"seen": "2026-01-01T00:00:00Z"}])
    as_of = pd.Series(pd.to_datetime(["2026-01-02", "2026-01-11"], utc=True))
    out = derive(frame, {"idle": DEFINITIONS["idle"]}, as_of=as_of)
    assert out["idle"].tolist() == [1.0, 10.0]
    with pytest.raises(ValueError, match="event times"):
        derive(frame, {"idle": DEFINITIONS["idle"]})


def test_an_unknown_transform_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transform"):
        derive(_frame([{"a": 1.0}]), {"x": {"transform": "sqrt", "inputs": ["a"]}})


numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(numbers, numbers, st.integers(0, 10**9)), min_size=1, max_size=20))
def test_one_record_online_equals_its_row_offline(values: list[tuple[Any, Any, int]]) -> None:
    """The same bits whether a row is computed alone (a request) or among many (a table)."""
    rows = [
        {"a": a, "b": b, "seen": datetime.fromtimestamp(s, UTC).isoformat()} for a, b, s in values
    ]
    offline = derive(_frame(rows), DEFINITIONS, as_of=pd.Series([AS_OF] * len(rows)))
    for i, row in enumerate(rows):
        record = dict(row)
        derive_records([record], DEFINITIONS, AS_OF)
        for name in DEFINITIONS:
            expected = offline[name][i]
            got = record[name]
            if _null(expected):
                assert got is None, (name, row, got)
            else:
                assert got == expected and type(got) is (int if name == "bucket" else float)
                assert np.float64(got).tobytes() == np.float64(expected).tobytes(), name

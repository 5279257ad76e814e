"""Reference profile: structure, determinism and a size that does not grow with the data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_runtime.train.reference_profile import (
    MAX_CATEGORIES,
    QUANTILES,
    build_profile,
    categorical_profile,
    histogram,
    numeric_profile,
    write_profile,
)


def config(sample_size: int = 50, bins: int = 8):
    return {
        "name": "synthetic",
        "data": {"target": "y", "split": {"seed": 1}},
        "features": {
            "numeric": {"columns": ["a", "b"]},
            "categorical": {"columns": ["c"]},
            "passthrough": ["flag"],
        },
        "model": {"task": "classification"},
        "profile": {"sample_size": sample_size, "bins": bins},
    }


CONTRACT = {"columns": {"a": {"type": "float"}, "b": {"type": "int"}, "c": {"type": "category"},
                        "flag": {"type": "bool"}, "y": {"type": "str"}}}  # fmt: skip


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    a[::10] = np.nan
    return pd.DataFrame(
        {
            "a": a,
            "b": pd.array(rng.integers(0, 5, rows), dtype="Int64"),
            # Far more distinct values than MAX_CATEGORIES: frequencies must still be capped.
            "c": pd.array([f"cat{i}" for i in rng.integers(0, 5000, rows)], dtype="string"),
            "flag": pd.array(rng.integers(0, 2, rows).astype(bool), dtype="boolean"),
            "y": pd.array(rng.choice(["p", "q"], rows), dtype="string"),
        }
    )


def profile_of(rows: int, **kw):
    data = frame(rows)
    predictions = np.where(np.arange(rows) % 3 == 0, "p", "q").astype(object)
    proba = np.column_stack([np.linspace(0, 1, rows), 1 - np.linspace(0, 1, rows)])
    return build_profile(
        data, config(**kw), CONTRACT, predictions=predictions, proba=proba, classes=["p", "q"]
    )


def test_profile_structure():
    profile = profile_of(1000)
    assert profile["rows"] == 1000 and profile["version"] == 2
    a = profile["features"]["a"]
    assert a["kind"] == "numeric" and a["null_rate"] == 0.1
    assert len(a["histogram"]["edges"]) == 9 and sum(a["histogram"]["counts"]) == 900
    # The monitor's mergeable sketch of the same values (version 2).
    assert a["sketch"]["kind"] == "numeric" and a["sketch"]["count"] == 900
    assert a["sketch"]["nulls"] == 100 and sum(a["sketch"]["counts"]) == 900
    assert list(a["quantiles"]) == [
        "0.01",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "0.75",
        "0.9",
        "0.95",
        "0.99",
    ]
    c = profile["features"]["c"]
    assert c["kind"] == "categorical" and len(c["frequencies"]) == MAX_CATEGORIES
    assert abs(sum(c["frequencies"].values()) + c["other"] - 1.0) < 1e-9
    assert profile["features"]["flag"]["kind"] == "categorical"
    assert set(profile["features"]["flag"]["frequencies"]) == {"True", "False"}
    assert profile["target"]["column"] == "y" and profile["target"]["kind"] == "categorical"
    predictions = profile["predictions"]
    assert predictions["class_frequencies"]["p"] == 334 / 1000
    assert set(predictions["probability_histograms"]) == {"p", "q"}
    assert predictions["probability_histograms"]["p"]["edges"][0] == 0.0
    assert sum(predictions["probability_histograms"]["q"]["counts"]) == 1000
    sample = profile["sample"]
    assert (
        sample["size"] == 50
        and len(sample["rows"]) == 50
        and sample["columns"] == ["a", "b", "c", "flag", "y"]
    )


def test_regression_predictions_get_a_score_histogram():
    data = frame(200)
    cfg = config()
    cfg["model"]["task"] = "regression"
    profile = build_profile(data, cfg, CONTRACT, predictions=np.linspace(0, 10, 200))
    assert profile["predictions"]["kind"] == "regression"
    assert sum(profile["predictions"]["histogram"]["counts"]) == 200
    assert profile["predictions"]["quantiles"]["0.5"] == 5.0


def test_profile_is_deterministic_and_strict_json(tmp_path):
    first, second = profile_of(500), profile_of(500)
    assert first == second
    path = write_profile(first, tmp_path / "p.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(first))


def test_profile_size_does_not_grow_with_rows(tmp_path):
    small = (
        write_profile(profile_of(2_000, sample_size=1000, bins=20), tmp_path / "small.json")
        .stat()
        .st_size
    )
    large = (
        write_profile(profile_of(300_000, sample_size=1000, bins=20), tmp_path / "large.json")
        .stat()
        .st_size
    )
    assert large < 1_000_000
    assert large < small * 1.2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=300),
    st.integers(1, 30),
)
def test_presorted_histogram_counts_as_numpy_does(values, bins):
    data = np.asarray(values, dtype="float64")
    expected_counts, expected_edges = np.histogram(
        data, bins=bins, range=None if data.min() < data.max() else (data[0] - 0.5, data[0] + 0.5)
    )
    fast = histogram(np.sort(data), bins, presorted=True)
    assert fast == {
        "edges": [float(e) for e in expected_edges],
        "counts": [int(c) for c in expected_counts],
    }


def test_numeric_and_categorical_profiles_agree_with_pandas():
    data = frame(5000, seed=3)
    rows = np.random.default_rng(4).permutation(5000)[:3000]
    picked = data.iloc[rows]
    numeric = numeric_profile(data["a"], 12, rows)
    finite = picked["a"].dropna().to_numpy()
    assert numeric["null_rate"] == picked["a"].isna().mean()
    assert numeric["count"] == 3000 and numeric["min"] == finite.min()
    assert list(numeric["quantiles"].values()) == list(np.quantile(finite, QUANTILES))
    assert numeric["histogram"]["counts"] == np.histogram(finite, bins=12)[0].tolist()
    categorical = categorical_profile(data["c"], rows)
    shares = picked["c"].dropna().astype(str).value_counts(normalize=True)
    assert categorical["distinct"] == len(shares)
    for key, share in categorical["frequencies"].items():
        assert share == pytest.approx(shares[key])
    ranked = list(categorical["frequencies"].values())
    assert ranked == sorted(ranked, reverse=True)


def test_profile_of_positions_equals_profile_of_the_rows_taken():
    data = frame(2000, seed=5)
    rows = np.random.default_rng(6).permutation(2000)[:1500]
    predictions = np.array(["p", "q"] * 10, dtype=object)
    by_position = build_profile(data, config(), CONTRACT, rows=rows, predictions=predictions)
    by_copy = build_profile(
        data.iloc[rows].reset_index(drop=True), config(), CONTRACT, predictions=predictions
    )
    assert by_position == by_copy


def test_profile_sketches_are_the_monitors_sketches_of_the_training_rows():
    from mlops_runtime import sketches

    data = frame(2000, seed=7)
    rows = np.random.default_rng(8).permutation(2000)[:1500]
    predictions = np.array(["p", "q"] * 10, dtype=object)
    profile = build_profile(data, config(), CONTRACT, rows=rows, predictions=predictions)
    for name, column in profile["features"].items():
        values = data[name].to_numpy()[rows]
        expected = (
            sketches.reference_numeric(values)
            if column["kind"] == "numeric"
            else sketches.reference_categorical(values)
        )
        assert column["sketch"] == expected, name

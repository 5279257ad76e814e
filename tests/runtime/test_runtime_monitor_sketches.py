"""Monitor sketches: layout, exact counting on the reference's edges, text keys, merging."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_runtime.monitor.drift import column_drift
from mlops_runtime.sketches import (
    MAX_REFERENCE_CATEGORIES,
    MAX_WINDOW_CATEGORIES,
    OTHER,
    SKETCH_VERSION,
    categorical_against,
    fold_categories,
    merge,
    merge_all,
    numeric_against,
    reference_categorical,
    reference_numeric,
)

NUMERIC_KEYS = {
    "kind", "version", "edges", "counts", "sums", "count", "nulls", "min", "max", "sum",
    "sum_sq", "distinct", "values",
}  # fmt: skip


def strict_json(sketch: dict) -> dict:
    """The sketch survives strict JSON unchanged (no numpy scalars, no NaN)."""
    return json.loads(json.dumps(sketch, allow_nan=False))


def oracle_counts(edges: list[float], values: np.ndarray) -> list[int]:
    """under, np.histogram's bins (last one closed), over: the layout's rule, independently."""
    finite = values[np.isfinite(values)]
    inner, _ = np.histogram(finite, bins=np.asarray(edges))
    under = int(np.sum(finite < edges[0]))
    over = int(np.sum(finite > edges[-1]))
    return [under, *inner.tolist(), over]


def test_reference_numeric_layout_on_continuous_data():
    values = np.random.default_rng(0).normal(10.0, 2.0, 5000)
    values[:7] = np.nan
    values[7] = np.inf
    sketch = reference_numeric(values)
    assert set(sketch) == NUMERIC_KEYS
    assert sketch["kind"] == "numeric" and sketch["version"] == SKETCH_VERSION == 1
    finite = values[np.isfinite(values)]
    levels = np.arange(101) / 100
    quantiles = np.quantile(finite, levels, method="inverted_cdf")
    assert sketch["edges"] == np.unique(quantiles).tolist()
    assert set(sketch["edges"]) <= set(finite.tolist())  # every edge is a reference value
    assert len(sketch["edges"]) == 101 and len(sketch["counts"]) == 102
    assert sketch["counts"][0] == sketch["counts"][-1] == 0  # the reference spans its edges
    assert sketch["counts"] == oracle_counts(sketch["edges"], values)
    assert (sketch["count"], sketch["nulls"]) == (4992, 8)
    assert sketch["min"] == finite.min() and sketch["max"] == finite.max()
    assert sketch["sum"] == pytest.approx(finite.sum()) and sum(sketch["sums"]) == pytest.approx(
        finite.sum()
    )
    assert sketch["sum_sq"] == pytest.approx(np.sum(finite**2))
    assert sketch["distinct"] is None and sketch["values"] is None  # > 1000 distinct values
    assert strict_json(sketch) == sketch


def test_discrete_column_gets_fewer_bins_and_value_counts():
    values = np.random.default_rng(1).integers(0, 4, 999).astype(float)
    sketch = reference_numeric(values)
    assert sketch["edges"] == [0.0, 1.0, 2.0, 3.0]  # equal quantiles collapse
    assert all(sketch["counts"][1:-1])  # and no bin is empty
    assert sketch["counts"] == oracle_counts(sketch["edges"], values)
    assert sketch["distinct"] == 4
    uniques, tallies = np.unique(values, return_counts=True)
    expected = {str(int(v)): int(c) for v, c in zip(uniques, tallies, strict=True)}
    assert sketch["values"] == expected
    assert list(sketch["values"]) == ["0", "1", "2", "3"]  # integral values read as integers


def test_distinct_counts_up_to_a_thousand():
    values = np.arange(500, dtype=float) / 4
    sketch = reference_numeric(np.concatenate([values, values]))
    assert sketch["distinct"] == 500 and sketch["values"] is None
    assert numeric_against(sketch, values)["distinct"] == 500
    assert reference_numeric(np.arange(1001.0))["distinct"] is None


def test_constant_and_empty_columns():
    constant = reference_numeric(np.full(50, 3.0))
    assert constant["edges"] == [2.5, 3.5] and constant["counts"] == [0, 50, 0]
    assert constant["values"] == {"3": 50}
    huge = reference_numeric(np.full(5, 1e17))
    assert huge["edges"][0] < 1e17 < huge["edges"][1]  # still a non-empty bin
    assert huge["counts"] == [0, 5, 0]

    empty = reference_numeric(np.array([np.nan, np.inf, -np.inf]))
    assert empty["edges"] == [] and empty["counts"] == [0]
    assert (empty["count"], empty["nulls"], empty["min"], empty["max"]) == (0, 3, None, None)
    assert strict_json(empty) == empty
    window = numeric_against(empty, np.array([1.0, 2.0, np.nan]))
    assert window["counts"] == [2] and window["nulls"] == 1


def test_window_counts_on_reference_edges_match_the_histogram_rule():
    rng = np.random.default_rng(2)
    reference = reference_numeric(rng.normal(0, 1, 20_000))
    edges = reference["edges"]
    # Values on every edge (left-closed bins, last one closed), outside both ends, and plenty
    # of them so the grid lookup is the path taken.
    window = np.concatenate(
        [rng.normal(0.3, 1.4, 100_000), np.repeat(edges, 3), [edges[0] - 1e-12, edges[-1] + 1e-12]]
    )
    sketch = numeric_against(reference, window)
    assert sketch["edges"] == edges
    assert sketch["counts"] == oracle_counts(edges, window)
    assert sketch["counts"][0] > 0 and sketch["counts"][-1] > 0
    assert sketch["min"] == window.min() and sketch["max"] == window.max()
    slot_sums = np.asarray(sketch["sums"])
    assert slot_sums[0] == pytest.approx(window[window < edges[0]].sum())
    assert slot_sums[-1] == pytest.approx(window[window > edges[-1]].sum())
    assert strict_json(sketch) == sketch


def test_window_of_the_reference_values_is_the_reference():
    values = np.random.default_rng(3).exponential(2.0, 30_000)
    reference = reference_numeric(values)
    again = numeric_against(reference, values[::-1].copy())
    for key in ("edges", "counts", "count", "nulls", "min", "max", "distinct", "values"):
        assert again[key] == reference[key], key
    assert again["sums"] == pytest.approx(reference["sums"])


@settings(max_examples=60, deadline=None)
@given(
    offset=st.sampled_from([0.0, 1e9, -3e12]),
    spread=st.sampled_from([1e-6, 1.0, 1e6]),
    seed=st.integers(0, 2**16),
    size=st.sampled_from([10, 5000]),
)
def test_counts_are_exact_at_any_magnitude(offset, spread, seed, size):
    rng = np.random.default_rng(seed)
    reference = reference_numeric(offset + spread * rng.standard_t(3, 300), bins=40)
    window = offset + spread * rng.standard_t(2, size)
    window[: min(size, 40)] = np.resize(reference["edges"], min(size, 40))
    assert numeric_against(reference, window)["counts"] == oracle_counts(reference["edges"], window)


def test_pandas_series_with_missing_values():
    series = pd.Series([1, 2, None, 4, 5], dtype="Int64")
    sketch = reference_numeric(series)
    assert (sketch["count"], sketch["nulls"]) == (4, 1)
    assert sketch["values"] == {"1": 1, "2": 1, "4": 1, "5": 1}


def test_categorical_text_keys_and_nulls():
    values = pd.Series([1, "1", 1.0, True, "True", np.True_, "a", None, np.nan, 2.5], dtype=object)
    sketch = reference_categorical(values)
    assert sketch == {
        "kind": "categorical",
        "version": SKETCH_VERSION,
        "counts": sketch["counts"],
        "nulls": 2,
        "count": 8,
    }
    assert sketch["counts"] == {"1": 3, "True": 3, "a": 1, "2.5": 1}
    assert strict_json(sketch) == sketch
    window = categorical_against(sketch, np.array(["a", "b", "b", None], dtype=object))
    assert window["counts"] == {"a": 1, "b": 2} and window["nulls"] == 1


def test_categorical_dtype_and_bools():
    series = pd.Series(["x", "y", "x", None], dtype="category")
    assert reference_categorical(series)["counts"] == {"x": 2, "y": 1}
    flags = reference_categorical(np.array([True, False, True]))
    assert flags["counts"] == {"True": 2, "False": 1}


def test_reference_folds_rare_categories_into_other():
    # Category i appears i + 1 times, so the 1000 kept are exactly the most frequent.
    labels = np.repeat([f"c{i}" for i in range(1200)], np.arange(1, 1201))
    sketch = reference_categorical(labels)
    assert len(sketch["counts"]) == MAX_REFERENCE_CATEGORIES
    assert OTHER in sketch["counts"]
    assert "c1199" in sketch["counts"] and "c0" not in sketch["counts"]
    assert sum(sketch["counts"].values()) == sketch["count"] == len(labels)
    assert sketch["counts"][OTHER] == sum(range(1, 202))  # the 201 rarest: counts 1..201


def test_window_keeps_unseen_categories_up_to_its_cap():
    reference = reference_categorical(np.array(["old"] * 5, dtype=object))
    labels = np.array(["old"] + [f"new{i}" for i in range(MAX_WINDOW_CATEGORIES + 50)])
    labels = np.concatenate([labels, ["new1"] * 3])
    window = categorical_against(reference, labels)
    assert len(window["counts"]) == MAX_WINDOW_CATEGORIES
    assert window["counts"]["old"] == 1  # the reference's categories are kept first
    assert window["counts"]["new1"] == 4
    # 10051 categories, 9999 kept beside OTHER itself.
    assert window["counts"][OTHER] == 52 and window["count"] == len(labels)


def test_merging_halves_gives_the_sketch_of_the_whole():
    rng = np.random.default_rng(4)
    values = rng.gamma(2.0, 3.0, 40_001)
    values[rng.random(values.size) < 0.01] = np.nan
    reference = reference_numeric(rng.gamma(2.0, 3.0, 10_000))
    whole = numeric_against(reference, values)
    merged = merge(
        numeric_against(reference, values[:15_000]), numeric_against(reference, values[15_000:])
    )
    for key in ("edges", "counts", "count", "nulls", "min", "max", "distinct", "values"):
        assert merged[key] == whole[key], key
    for key in ("sum", "sum_sq"):
        assert merged[key] == pytest.approx(whole[key], rel=1e-12)
    assert merged["sums"] == pytest.approx(whole["sums"], rel=1e-12)

    labels = rng.choice(["a", "b", "c", "d"], 10_001, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    labels[::97] = None
    ref_cat = reference_categorical(labels[:3000])
    halves = [
        categorical_against(ref_cat, labels[:6000]),
        categorical_against(ref_cat, labels[6000:]),
    ]
    assert merge(*halves) == categorical_against(ref_cat, labels)


def test_merge_of_discrete_partitions_is_exact():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 30, 9000).astype(float)
    reference = reference_numeric(rng.integers(0, 6, 2000).astype(float))
    parts = [numeric_against(reference, chunk) for chunk in np.array_split(values, 7)]
    whole = numeric_against(reference, values)
    merged = merge_all([strict_json(part) for part in parts])  # as stored between runs
    assert merged["distinct"] == whole["distinct"] == 30 and merged["values"] is None
    assert merged["counts"] == whole["counts"]
    small = merge_all(
        [numeric_against(reference, chunk % 5) for chunk in np.array_split(values, 3)]
    )
    assert small["values"] == numeric_against(reference, values % 5)["values"]
    assert list(small["values"]) == ["0", "1", "2", "3", "4"]


def test_merged_distinct_beyond_kept_values_is_a_lower_bound():
    reference = reference_numeric(np.arange(100.0))
    a = numeric_against(reference, np.arange(0.0, 30.0))
    b = numeric_against(reference, np.arange(20.0, 60.0))
    assert merge(a, b)["distinct"] == 40  # true 60: the overlap of unkept values is unknown
    assert merge(a, numeric_against(reference, np.arange(5000.0)))["distinct"] is None


def test_empty_partitions_merge_as_identity():
    reference = reference_numeric(np.random.default_rng(6).normal(size=500))
    part = numeric_against(reference, np.array([0.1, 0.2, np.nan]))
    empty = numeric_against(reference, np.array([]))
    assert empty["count"] == 0 and empty["min"] is None and strict_json(empty) == empty
    merged = merge(empty, part)
    assert merged["counts"] == part["counts"] and merged["min"] == 0.1 and merged["max"] == 0.2
    assert merged["values"] == part["values"] and merged["nulls"] == 1


def test_merge_refuses_incompatible_sketches():
    rng = np.random.default_rng(7)
    a = reference_numeric(rng.normal(size=100))
    b = reference_numeric(rng.normal(size=100))
    with pytest.raises(ValueError, match="different edges"):
        merge(a, b)
    with pytest.raises(ValueError, match="kinds"):
        merge(a, reference_categorical(np.array(["x"])))
    with pytest.raises(ValueError, match="versions"):
        merge(a, {**a, "version": 2})
    with pytest.raises(ValueError, match="numeric"):
        numeric_against(reference_categorical(np.array(["x"])), np.zeros(3))
    with pytest.raises(ValueError, match="nothing"):
        merge_all([])


def test_fold_keeps_reference_categories_then_counts_and_sums_other():
    counts = {"a": 5, OTHER: 3, "b": 1, "c": 1, "d": 7}
    assert fold_categories(counts, 3) == {"d": 7, "a": 5, OTHER: 5}
    assert fold_categories(counts, 3, frozenset({"c"})) == {"c": 1, "d": 7, OTHER: 9}
    assert fold_categories(counts, 5) == counts


def test_overflowing_sums_are_null_not_infinite():
    values = np.array([1e308, 1.5e308, 1.7e308])
    sketch = reference_numeric(values)
    assert sketch["sum"] is None and sketch["sum_sq"] is None
    assert strict_json(sketch) == sketch
    window = numeric_against(sketch, np.array([1.7e308, 1.7e308]))
    assert window["sums"] is None and strict_json(window) == window
    assert merge(window, window)["sums"] is None
    for method in ("ks", "chi2", "wasserstein", "jensenshannon", "psi"):
        verdict = column_drift(sketch, window, method=method, reference_rows=3)
        # The scale of these values overflows: no score beats a wrong one.
        expected = "undefined" if method == "wasserstein" else "ok"
        assert verdict["status"] == expected, verdict
        json.dumps(verdict, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    size=st.integers(0, 3000),
    cut=st.floats(0, 1),
    discrete=st.booleans(),
)
def test_any_split_merges_to_the_whole(seed, size, cut, discrete):
    rng = np.random.default_rng(seed)
    draw = (lambda n: rng.integers(0, 8, n).astype(float)) if discrete else rng.standard_cauchy
    reference = reference_numeric(draw(500))
    values = draw(size)
    values[rng.random(size) < 0.05] = np.nan
    split = int(cut * size)
    parts = [numeric_against(reference, values[:split]), numeric_against(reference, values[split:])]
    merged = merge(*parts)
    whole = numeric_against(reference, values)
    for key in ("counts", "count", "nulls", "min", "max", "values"):
        assert merged[key] == whole[key], key
    if all(part["values"] is not None for part in parts):
        assert merged["distinct"] == whole["distinct"]
    elif whole["distinct"] is not None:  # otherwise a lower bound
        assert merged["distinct"] is not None and merged["distinct"] <= whole["distinct"]

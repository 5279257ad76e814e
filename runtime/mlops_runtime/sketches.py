"""Mergeable per-column sketches: a reference from the training split, windows from the log.

A window of the prediction log is sketched one partition (Parquet or JSONL file) at a time on
the reference's bins, and the partitions are merged, so no window has to fit in memory. Every
sketch is a plain JSON-able dict (strict JSON, no NaN); the layout, format version 1, is
documented in docs/monitoring-drift.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

SKETCH_VERSION = 1
Sketch = dict[str, Any]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]

DEFAULT_BINS = 100
MAX_DISTINCT = 1000  # distinct values counted exactly up to here, null beyond
MAX_VALUES = 20  # per-value counts kept up to this many distinct values
MAX_REFERENCE_CATEGORIES = 1000
MAX_WINDOW_CATEGORIES = 10000
OTHER = "__other__"
# Hashing a window prefix first settles "more than MAX_DISTINCT" for continuous data without
# hashing every value of the partition.
_DISTINCT_PREFIX = 4 * MAX_DISTINCT
_EXACT_INT = 2.0**53
_GRID_CELLS_PER_EDGE = 32
_GRID_MIN_VALUES = 4096  # below this the grid costs more to build than it saves


def number_text(value: float) -> str:
    """Text key of a numeric value: integral values as integers so 1.0, 1 and "1" agree."""
    if value.is_integer() and abs(value) < _EXACT_INT:
        return str(int(value))
    return repr(value)


def sketch_key(value: Any) -> str:
    """A value's key in a categorical sketch's counts: numbers follow number_text, booleans
    read "True"/"False". Every value has one (a bool column is sketched as categories), unlike
    `contract.rules.contract_category_text`, which decides contract membership and refuses
    booleans."""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, float | np.floating):
        return number_text(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _floats(values: Any) -> FloatArray:
    if isinstance(values, pd.Series | pd.Index):
        return np.asarray(values.to_numpy(dtype="float64", na_value=np.nan), dtype=np.float64)
    return np.asarray(values, dtype=np.float64).ravel()


def _json_float(value: float) -> float | None:
    # Sums of huge values can overflow; strict JSON has no inf, so the statistic is unknown.
    return value if math.isfinite(value) else None


def _moments(finite: FloatArray) -> dict[str, Any]:
    if not len(finite):
        return {"min": None, "max": None, "sum": 0.0, "sum_sq": 0.0}
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(finite.sum())
        squares = float(np.dot(finite, finite))
    return {
        "min": float(finite.min()),
        "max": float(finite.max()),
        "sum": _json_float(total),
        "sum_sq": _json_float(squares),
    }


def _value_counts(uniques: FloatArray, counts: npt.NDArray[np.int64]) -> dict[str, int] | None:
    if len(uniques) > MAX_VALUES:
        return None
    order = np.argsort(uniques, kind="stable")
    return {number_text(float(uniques[i])): int(counts[i]) for i in order}


def _sorted_distinct(ordered: FloatArray) -> tuple[int | None, dict[str, int] | None]:
    if not len(ordered):
        return 0, {}
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    if len(starts) > MAX_DISTINCT:
        return None, None
    counts = np.diff(np.r_[starts, len(ordered)]).astype(np.int64)
    return len(starts), _value_counts(ordered[starts], counts)


def _hashed_distinct(finite: FloatArray) -> tuple[int | None, dict[str, int] | None]:
    if len(pd.unique(finite[:_DISTINCT_PREFIX])) > MAX_DISTINCT:
        return None, None
    codes, uniques = pd.factorize(finite)
    if len(uniques) > MAX_DISTINCT:
        return None, None
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    return len(uniques), _value_counts(np.asarray(uniques, dtype=np.float64), counts)


def _constant_edges(value: float) -> FloatArray:
    low, high = value - 0.5, value + 0.5
    if not low < value < high:  # beyond 2**52 the half steps round away
        low, high = np.nextafter(value, -np.inf), np.nextafter(value, np.inf)
    return np.array([low, high], dtype=np.float64)


def _slots(edges: FloatArray, finite: FloatArray) -> npt.NDArray[np.intp]:
    """Bin of every value: 0 under, i for [e_i-1, e_i), len(edges) over; values equal to the
    last edge go to the last inner bin.

    np.searchsorted alone costs ~40 ns a value (a mispredicted branch per step). A uniform grid
    of cells over the edges gives each value its bin with one lookup and one comparison; every
    answer is then checked against its bin's edges and the few wrong ones (cells holding two
    edges, rounding at cell borders) are searched for, so the result is exactly searchsorted's.
    """
    size = len(edges)
    cells = _GRID_CELLS_PER_EDGE * size
    scale = cells / (edges[-1] - edges[0])
    if len(finite) < _GRID_MIN_VALUES or not math.isfinite(scale):
        slots = np.searchsorted(edges, finite, side="right")
    else:
        borders = edges[0] + np.arange(cells) / scale
        first = np.searchsorted(edges, borders, side="right")
        lookup = np.concatenate(([0], first, [size])).astype(np.intp)
        lower = np.concatenate(([-np.inf], edges))  # lower[j] <= x < upper[j] for bin j
        upper = np.concatenate((edges, [np.inf]))
        position = (finite - edges[0]) * scale
        np.clip(position, -1.0, float(cells), out=position)
        slots = lookup[position.astype(np.intp) + 1]
        slots += finite >= upper[slots]
        wrong = np.flatnonzero((finite < lower[slots]) | (finite >= upper[slots]))
        if len(wrong):
            slots[wrong] = np.searchsorted(edges, finite[wrong], side="right")
    slots[finite == edges[-1]] = size - 1
    return slots


def _binned(edges: FloatArray, finite: FloatArray) -> dict[str, Any]:
    if not len(edges):
        # No reference values, no bins: everything shares the one count.
        total = float(finite.sum()) if len(finite) else 0.0
        return {"counts": [len(finite)], "sums": [_json_float(total)]}
    slots = _slots(edges, finite)
    tally = np.bincount(slots, minlength=len(edges) + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.bincount(slots, weights=finite, minlength=len(edges) + 1)
    return {
        "counts": [int(c) for c in tally],
        "sums": [float(v) for v in sums] if np.isfinite(sums).all() else None,
    }


def _binned_sorted(edges: FloatArray, ordered: FloatArray) -> dict[str, Any]:
    """_binned of ascending values: a binary search per edge and prefix sums, no pass per value
    beyond the one cumulative sum."""
    if not len(edges):
        return _binned(edges, ordered)
    bounds = np.searchsorted(ordered, edges, side="left")
    bounds[-1] = np.searchsorted(ordered, edges[-1], side="right")  # the last bin is closed
    cuts = np.concatenate(([0], bounds, [len(ordered)]))
    with np.errstate(over="ignore", invalid="ignore"):
        prefix = np.concatenate(([0.0], np.cumsum(ordered)))
        sums = prefix[cuts[1:]] - prefix[cuts[:-1]]
    return {
        "counts": [int(c) for c in np.diff(cuts)],
        "sums": [float(v) for v in sums] if np.isfinite(sums).all() else None,
    }


def _numeric(edges: FloatArray, data: FloatArray, finite: FloatArray, ordered: bool) -> Sketch:
    distinct, value_counts = _sorted_distinct(finite) if ordered else _hashed_distinct(finite)
    sketch: Sketch = {"kind": "numeric", "version": SKETCH_VERSION}
    sketch["edges"] = [float(e) for e in edges]
    sketch.update(_binned_sorted(edges, finite) if ordered else _binned(edges, finite))
    sketch.update(count=len(finite), nulls=len(data) - len(finite))
    sketch.update(_moments(finite), distinct=distinct, values=value_counts)
    return sketch


def reference_numeric(values: Any, bins: int = DEFAULT_BINS) -> Sketch:
    """Sketch of a reference column on edges at its own empirical quantiles i/bins.

    Equal quantiles collapse (np.unique), so a discrete column gets fewer bins, none of them
    empty-width; a constant column gets the one bin [v - 0.5, v + 0.5].
    """
    data = _floats(values)
    ordered = np.sort(data[np.isfinite(data)])
    return reference_numeric_sorted(ordered, len(data) - len(ordered), bins)


def reference_numeric_sorted(ordered: FloatArray, nulls: int, bins: int = DEFAULT_BINS) -> Sketch:
    """reference_numeric of a column whose finite values are already sorted (the training
    profile sorts each column once for its quantiles and histogram)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    edges = np.empty(0, dtype=np.float64)
    if len(ordered):
        # Empirical quantiles are reference values, so no inner bin is empty: each holds its
        # left edge (interpolated quantiles would cut empty bins between a discrete column's
        # values).
        levels = np.arange(bins + 1) / bins
        edges = np.unique(np.quantile(ordered, levels, method="inverted_cdf"))
        if len(edges) == 1:
            edges = _constant_edges(float(edges[0]))
    sketch = _numeric(edges, ordered, ordered, ordered=True)
    sketch["nulls"] = nulls
    return sketch


def numeric_against(reference: Sketch, values: Any) -> Sketch:
    """Sketch of new values counted on the reference's edges, comparable and mergeable with
    every other sketch on those edges."""
    if reference.get("kind") != "numeric":
        raise ValueError(f"not a numeric sketch: kind {reference.get('kind')!r}")
    data = _floats(values)
    edges = np.asarray(reference["edges"], dtype=np.float64)
    return _numeric(edges, data, data[np.isfinite(data)], ordered=False)


def _may_hide_bools(uniques: Any) -> bool:
    # True == 1 == 1.0 hash alike, so factorize files them under whichever came first.
    return any(
        isinstance(value, bool | np.bool_)
        or (isinstance(value, int | float | np.number) and value in (0, 1))
        for value in uniques
    )


def _texts(uniques: Any, tally: IntArray) -> tuple[ObjectArray, IntArray]:
    """Distinct values as distinct text keys with their counts."""
    if pd.api.types.infer_dtype(uniques, skipna=True) == "string":
        return np.asarray(uniques, dtype=object), tally  # already distinct text
    # One pass over the distinct values, not the rows; 1 and "1" become one key here.
    texts = np.array([sketch_key(value) for value in uniques], dtype=object)
    codes, merged = pd.factorize(texts)
    if len(merged) == len(texts):
        return texts, tally
    summed = np.bincount(codes, weights=tally, minlength=len(merged))
    return np.asarray(merged, dtype=object), summed.astype(np.int64)


def _text_counts(values: Any) -> tuple[ObjectArray, IntArray, int]:
    series = (
        values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    )
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if (
        series.dtype == object
        and pd.api.types.infer_dtype(uniques, skipna=True) != "string"
        and _may_hide_bools(uniques)
    ):
        # Mixed bools and 0/1 numbers: bools become their text first (one C-level map over
        # the rows, only for such columns), so True joins "True" and 1 stays "1".
        is_bool = series.map(type).isin([bool, np.bool_]).to_numpy()
        if is_bool.any():
            series = series.astype(object).copy()
            series[is_bool] = series[is_bool].map(sketch_key)
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
    present = codes[codes >= 0]
    tally = np.bincount(present, minlength=len(uniques)).astype(np.int64)
    texts, counts = _texts(uniques, tally)
    return texts, counts, len(codes) - len(present)


def _fold(
    texts: ObjectArray, counts: IntArray, limit: int, keep: frozenset[str] = frozenset()
) -> dict[str, int]:
    keys = texts.tolist()
    if len(keys) <= limit:
        return dict(zip(keys, counts.tolist(), strict=True))
    position = dict(zip(keys, range(len(keys)), strict=True))
    # Rank: categories in `keep` first, then by count; the sort is stable, so ties keep the
    # order they were first seen in (sorting a million texts to break ties took a second).
    later = np.ones(len(keys), dtype=np.int8)
    later[[position[key] for key in keep if key in position]] = 0
    extra = 0
    if OTHER in position:
        extra = int(counts[position[OTHER]])
        later[position[OTHER]] = 2
    order = np.lexsort((-counts, later))
    slots = limit - 1  # one key is OTHER itself
    kept = order[:slots]
    folded = dict(zip(texts[kept].tolist(), counts[kept].tolist(), strict=True))
    rest = order[slots:]
    folded[OTHER] = extra + int(counts[rest[later[rest] < 2]].sum())
    return folded


def fold_categories(
    counts: dict[str, int], limit: int, keep: frozenset[str] = frozenset()
) -> dict[str, int]:
    """The `limit` keys of the most frequent categories (those in `keep` first) with the rest
    summed into OTHER, one of the keys."""
    texts = np.array(list(counts), dtype=object)
    tally = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    return _fold(texts, tally, limit, keep)


def _categorical(counts: dict[str, int], nulls: int) -> Sketch:
    return {
        "kind": "categorical",
        "version": SKETCH_VERSION,
        "counts": counts,
        "nulls": nulls,
        "count": sum(counts.values()),
    }


def reference_categorical_counts(uniques: Any, tally: IntArray, nulls: int) -> Sketch:
    """reference_categorical from a factorisation already made (the training profile's): the
    distinct values and their counts."""
    texts, counts = _texts(uniques, np.asarray(tally, dtype=np.int64))
    return _categorical(_fold(texts, counts, MAX_REFERENCE_CATEGORIES), nulls)


def reference_categorical(values: Any) -> Sketch:
    """Category counts of a reference column as text, at most MAX_REFERENCE_CATEGORIES keys."""
    texts, counts, nulls = _text_counts(values)
    return _categorical(_fold(texts, counts, MAX_REFERENCE_CATEGORIES), nulls)


def categorical_against(reference: Sketch, values: Any) -> Sketch:
    """Category counts of new values. Categories the reference never saw are kept (up to
    MAX_WINDOW_CATEGORIES keys, the reference's own categories first) for data-quality checks."""
    if reference.get("kind") != "categorical":
        raise ValueError(f"not a categorical sketch: kind {reference.get('kind')!r}")
    texts, counts, nulls = _text_counts(values)
    keep = frozenset(reference.get("counts", {}))
    return _categorical(_fold(texts, counts, MAX_WINDOW_CATEGORIES, keep), nulls)


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return out


def _combine(a: float | None, b: float | None, pick: Any) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _json_float(a + b)


def _bin_sums(a: list[float] | None, b: list[float] | None) -> list[float] | None:
    if a is None or b is None:
        return None
    sums = [x + y for x, y in zip(a, b, strict=True)]
    return sums if all(math.isfinite(v) for v in sums) else None


def _merged_distinct(a: Sketch, b: Sketch) -> int | None:
    if a["values"] is not None and b["values"] is not None:
        size = len(_add_counts(a["values"], b["values"]))
        return size if size <= MAX_DISTINCT else None
    if a["distinct"] is None or b["distinct"] is None:
        return None
    # Values beyond MAX_VALUES are not kept, so the overlap is unknown: a lower bound.
    return max(int(a["distinct"]), int(b["distinct"]))


def merge(a: Sketch, b: Sketch) -> Sketch:
    """One sketch of the values of both; the sketches must share kind, version and edges."""
    kind = a.get("kind")
    if kind != b.get("kind") or kind not in ("numeric", "categorical"):
        raise ValueError(f"cannot merge sketches of kinds {kind!r} and {b.get('kind')!r}")
    if a.get("version") != SKETCH_VERSION or b.get("version") != SKETCH_VERSION:
        raise ValueError(
            f"cannot merge sketch versions {a.get('version')!r} and {b.get('version')!r}"
        )
    if kind == "categorical":
        counts = fold_categories(_add_counts(a["counts"], b["counts"]), MAX_WINDOW_CATEGORIES)
        return _categorical(counts, int(a["nulls"]) + int(b["nulls"]))
    if a["edges"] != b["edges"] or len(a["counts"]) != len(b["counts"]):
        raise ValueError("cannot merge numeric sketches built on different edges")
    values: dict[str, int] | None = None
    if a["values"] is not None and b["values"] is not None:
        values = _add_counts(a["values"], b["values"])
        values = {k: values[k] for k in sorted(values, key=float)}
        if len(values) > MAX_VALUES:
            values = None
    return {
        "kind": "numeric",
        "version": SKETCH_VERSION,
        "edges": list(a["edges"]),
        "counts": [int(x) + int(y) for x, y in zip(a["counts"], b["counts"], strict=True)],
        "sums": _bin_sums(a.get("sums"), b.get("sums")),
        "count": int(a["count"]) + int(b["count"]),
        "nulls": int(a["nulls"]) + int(b["nulls"]),
        "min": _combine(a["min"], b["min"], min),
        "max": _combine(a["max"], b["max"], max),
        "sum": _sum(a["sum"], b["sum"]),
        "sum_sq": _sum(a["sum_sq"], b["sum_sq"]),
        "distinct": _merged_distinct(a, b),
        "values": values,
    }


def merge_all(sketches: list[Sketch]) -> Sketch:
    """The merge of one or more sketches, left to right."""
    if not sketches:
        raise ValueError("nothing to merge")
    out = sketches[0]
    for sketch in sketches[1:]:
        out = merge(out, sketch)
    return out

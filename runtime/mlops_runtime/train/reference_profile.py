"""The reference profile: what training data and predictions looked like, for drift monitoring.

The layout is documented in docs/reference-profile.md. Its size depends on the number of
columns, `bins` and `sample_size`, never on the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime import sketches
from mlops_runtime.contract.report import jsonable

PROFILE_VERSION = 2  # 2 added mergeable sketches (sketches.py) and baseline metrics
PROFILE_PATH = Path("reports") / "reference_profile.json"
# One copy per training run, named by its MLflow run id: the monitor compares a window with
# the reference of the run that served it, which need not be the latest run trained here.
RUN_PROFILES = Path("reports") / "reference"
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
MAX_CATEGORIES = 100  # the rest is folded into "__other__" so high-cardinality text stays small
MAX_TEXT = 200  # characters kept per text cell in the sample


def histogram(
    values: np.ndarray,
    bins: int,
    value_range: tuple[float, float] | None = None,
    *,
    presorted: bool = False,
) -> dict[str, list[Any]]:
    """np.histogram's bins and counts. `presorted` (finite values in ascending order) counts
    with one binary search per edge instead of a pass over every value."""
    if not presorted:
        values = values[np.isfinite(values)]
    if value_range is None and len(values):
        low, high = (values[0], values[-1]) if presorted else (values.min(), values.max())
        # A constant column still needs a non-empty bin so live values can be compared to it.
        value_range = (float(low) - 0.5, float(high) + 0.5) if low == high else (low, high)
    if not presorted:
        counts, edges = np.histogram(values, bins=bins, range=value_range)
    else:
        edges = np.histogram_bin_edges(values, bins=bins, range=value_range)
        # np.histogram's bins are [e_i, e_i+1) except the last, which includes its right edge.
        starts = np.searchsorted(values, edges, side="left")
        starts[-1] = np.searchsorted(values, edges[-1], side="right")
        counts = np.diff(starts)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def numeric_profile(series: pd.Series, bins: int, rows: np.ndarray | None = None) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    if rows is not None:
        values = values[rows]
    finite = np.sort(values[np.isfinite(values)])
    stats: dict[str, Any] = {
        "kind": "numeric",
        "count": len(values),
        "null_rate": float(np.isnan(values).mean()) if len(values) else 0.0,
    }
    if len(finite):
        stats.update(
            mean=float(finite.mean()),
            std=float(finite.std()),
            min=float(finite[0]),
            max=float(finite[-1]),
            quantiles={
                str(q): float(v)
                for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
            },
        )
    else:
        stats.update(mean=None, std=None, min=None, max=None, quantiles={})
    stats["histogram"] = histogram(finite, bins, presorted=True)
    # The monitor's mergeable sketch, from the same sorted values.
    stats["sketch"] = sketches.reference_numeric_sorted(finite, len(values) - len(finite))
    return stats


def categorical_profile(series: pd.Series, rows: np.ndarray | None = None) -> dict[str, Any]:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if rows is not None:
        codes = codes[rows]
    present = codes[codes >= 0]
    tally = np.bincount(present, minlength=len(uniques))
    first_seen = pd.unique(present)
    counts: dict[str, int] = {}
    # Values with the same text (1 and "1") are one category, as they are once serialised.
    for value, count in zip(uniques, tally, strict=True):
        if count:
            key = str(value)
            counts[key] = counts.get(key, 0) + int(count)
    total = max(len(present), 1)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "kind": "categorical",
        "count": len(codes),
        "null_rate": float((codes < 0).mean()) if len(codes) else 0.0,
        "distinct": len(ranked),
        "frequencies": {k: c / total for k, c in ranked[:MAX_CATEGORIES]},
        "other": sum(c for _, c in ranked[MAX_CATEGORIES:]) / total,
        # The monitor's mergeable sketch, from the same factorisation, its categories in the
        # order the rows first show them (ties at the category cap fold by that order).
        "sketch": sketches.reference_categorical_counts(
            np.asarray(uniques, dtype=object)[first_seen], tally[first_seen], int((codes < 0).sum())
        ),
    }


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def column_profile(
    series: pd.Series, bins: int, categorical: bool, rows: np.ndarray | None = None
) -> dict[str, Any]:
    if categorical or not _is_numeric(series):
        return categorical_profile(series, rows)
    return numeric_profile(series, bins, rows)


def sample_rows(
    frame: pd.DataFrame, size: int, seed: int, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """A seeded random sample of `rows` (positions; default all), as frame.sample draws it."""
    pool = np.arange(len(frame)) if rows is None else rows
    count = min(max(size, 0), len(pool))
    picked = pool[np.random.RandomState(seed).choice(len(pool), size=count, replace=False)]
    out = []
    for record in frame.iloc[picked].itertuples(index=False, name=None):
        out.append([_clip(jsonable(v)) for v in record])
    return {
        "size": len(out),
        "seed": seed,
        "columns": [str(c) for c in frame.columns],
        "rows": out,
    }


def _clip(value: Any) -> Any:
    return value[:MAX_TEXT] if isinstance(value, str) else value


def prediction_profile(
    task: str,
    predictions: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any] | None,
    bins: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {"task": task, "split": "test", "count": len(predictions)}
    if task == "regression":
        out.update(numeric_profile(pd.Series(predictions), bins))
        out["kind"] = "regression"
        out["sketch"] = sketches.reference_numeric(np.asarray(predictions, dtype="float64"))
        return out
    out["sketch"] = sketches.reference_categorical(np.asarray(predictions, dtype=object))
    labels = [
        str(c) for c in (classes if classes is not None else sorted(set(predictions.tolist())))
    ]
    counts = {label: 0 for label in labels}
    values, tallies = np.unique(np.asarray(predictions), return_counts=True)
    for value, tally in zip(values.tolist(), tallies.tolist(), strict=True):
        counts[str(value)] = counts.get(str(value), 0) + tally
    total = max(len(predictions), 1)
    out["kind"] = "classification"
    out["class_frequencies"] = {k: v / total for k, v in counts.items()}
    if proba is not None:
        out["probability_histograms"] = {
            label: histogram(proba[:, i], bins, (0.0, 1.0)) for i, label in enumerate(labels)
        }
    return out


def build_profile(
    frame: pd.DataFrame,
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    *,
    rows: np.ndarray | None = None,
    predictions: np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Profile of the training rows' feature and target columns plus test-split predictions.

    `rows` are the positions of the training split in `frame` (default: every row); taking
    them column by column avoids copying the whole split first.
    """
    from mlops_runtime.features.columns import feature_columns

    settings = config.get("profile", {})
    bins = int(settings.get("bins", 20))
    sample_size = int(settings.get("sample_size", 1000))
    seed = int(config["data"].get("split", {}).get("seed", 0))
    target = config["data"]["target"]
    categorical = set(config["features"].get("categorical", {}).get("columns", []))
    kinds = {name: rule["type"] for name, rule in contract.get("columns", {}).items()}
    columns = feature_columns(config)
    text_kinds = ("category", "str", "bool")

    def profile_column(name: str) -> dict[str, Any]:
        return column_profile(
            frame[name], bins, name in categorical or kinds.get(name) in text_kinds, rows
        )

    # Sorting, gathering and counting release the GIL: columns are profiled two at a time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        features = dict(zip(columns, pool.map(profile_column, columns), strict=True))
    target_categorical = config["model"]["task"] == "classification"
    return {
        "version": PROFILE_VERSION,
        "name": config.get("name"),
        "task": config["model"]["task"],
        "rows": len(frame) if rows is None else len(rows),
        "bins": bins,
        "features": features,
        "target": {
            "column": target,
            **column_profile(frame[target], bins, target_categorical, rows),
        },
        "predictions": prediction_profile(
            config["model"]["task"], predictions, proba, classes, bins
        ),
        # The test-split metrics: the monitor's baseline for the live metric (concept drift).
        "baseline_metrics": dict(sorted((metrics or {}).items())),
        "sample": sample_rows(frame[[*columns, target]], sample_size, seed, rows),
    }


def write_run_profile(profile: Mapping[str, Any], run_id: str, root: Path | None = None) -> Path:
    """The profile again under reports/reference/<run id>.json, with the run id inside."""
    folder = (Path.cwd() if root is None else root) / RUN_PROFILES
    return write_profile({**profile, "run_id": run_id}, folder / f"{run_id}.json")


def write_profile(profile: Mapping[str, Any], path: Path | None = None) -> Path:
    target = Path.cwd() / PROFILE_PATH if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        json.dumps(profile, separators=(",", ":"), allow_nan=False) + "\n", encoding="utf-8"
    )
    return target

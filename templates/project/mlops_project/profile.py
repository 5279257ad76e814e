"""The reference profile: what training data and predictions looked like, for drift monitoring.

The layout is documented in docs/reference-profile.md. Its size depends on the number of
columns, `bins` and `sample_size`, never on the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_project.report import jsonable

PROFILE_VERSION = 1
PROFILE_PATH = Path("reports") / "reference_profile.json"
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
MAX_CATEGORIES = 100  # the rest is folded into "__other__" so high-cardinality text stays small
MAX_TEXT = 200  # characters kept per text cell in the sample


def histogram(
    values: np.ndarray, bins: int, value_range: tuple[float, float] | None = None
) -> dict[str, list[Any]]:
    values = values[np.isfinite(values)]
    if value_range is None and len(values) and values.min() == values.max():
        # A constant column still needs a non-empty bin so live values can be compared to it.
        value_range = (float(values.min()) - 0.5, float(values.max()) + 0.5)
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def numeric_profile(series: pd.Series, bins: int) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[np.isfinite(values)]
    stats: dict[str, Any] = {
        "kind": "numeric",
        "count": len(values),
        "null_rate": _null_rate(series),
    }
    if len(finite):
        stats.update(
            mean=float(finite.mean()),
            std=float(finite.std()),
            min=float(finite.min()),
            max=float(finite.max()),
            quantiles={
                str(q): float(v)
                for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
            },
        )
    else:
        stats.update(mean=None, std=None, min=None, max=None, quantiles={})
    stats["histogram"] = histogram(finite, bins)
    return stats


def categorical_profile(series: pd.Series) -> dict[str, Any]:
    present = series.dropna().astype(str)
    shares = present.value_counts(normalize=True, sort=True)
    shares = shares.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = shares.iloc[:MAX_CATEGORIES]
    return {
        "kind": "categorical",
        "count": len(series),
        "null_rate": _null_rate(series),
        "distinct": len(shares),
        "frequencies": {str(k): float(v) for k, v in top.items()},
        "other": float(shares.iloc[MAX_CATEGORIES:].sum()),
    }


def _null_rate(series: pd.Series) -> float:
    return float(series.isna().mean()) if len(series) else 0.0


def _is_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def column_profile(series: pd.Series, bins: int, categorical: bool) -> dict[str, Any]:
    if categorical or not _is_numeric(series):
        return categorical_profile(series)
    return numeric_profile(series, bins)


def sample_rows(frame: pd.DataFrame, size: int, seed: int) -> dict[str, Any]:
    taken = frame.sample(n=min(size, len(frame)), random_state=seed) if size > 0 else frame.iloc[:0]
    rows = []
    for record in taken.itertuples(index=False, name=None):
        rows.append([_clip(jsonable(v)) for v in record])
    return {
        "size": len(rows),
        "seed": seed,
        "columns": [str(c) for c in frame.columns],
        "rows": rows,
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
        return out
    labels = [
        str(c) for c in (classes if classes is not None else sorted(set(predictions.tolist())))
    ]
    counts = {label: 0 for label in labels}
    for value in predictions.tolist():
        counts[str(value)] = counts.get(str(value), 0) + 1
    total = max(len(predictions), 1)
    out["kind"] = "classification"
    out["class_frequencies"] = {k: v / total for k, v in counts.items()}
    if proba is not None:
        out["probability_histograms"] = {
            label: histogram(proba[:, i], bins, (0.0, 1.0)) for i, label in enumerate(labels)
        }
    return out


def build_profile(
    train: pd.DataFrame,
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    *,
    predictions: np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Profile of the training split's feature and target columns plus test-split predictions."""
    from mlops_project.features import feature_columns

    settings = config.get("profile", {})
    bins = int(settings.get("bins", 20))
    sample_size = int(settings.get("sample_size", 1000))
    seed = int(config["data"].get("split", {}).get("seed", 0))
    target = config["data"]["target"]
    categorical = set(config["features"].get("categorical", {}).get("columns", []))
    kinds = {name: rule["type"] for name, rule in contract.get("columns", {}).items()}
    columns = feature_columns(config)
    text_kinds = ("category", "str", "bool")
    features = {
        name: column_profile(
            train[name], bins, name in categorical or kinds.get(name) in text_kinds
        )
        for name in columns
    }
    target_categorical = config["model"]["task"] == "classification"
    return {
        "version": PROFILE_VERSION,
        "name": config.get("name"),
        "task": config["model"]["task"],
        "rows": len(train),
        "bins": bins,
        "features": features,
        "target": {"column": target, **column_profile(train[target], bins, target_categorical)},
        "predictions": prediction_profile(
            config["model"]["task"], predictions, proba, classes, bins
        ),
        "sample": sample_rows(train[[*columns, target]], sample_size, seed),
    }


def write_profile(profile: Mapping[str, Any], path: Path | None = None) -> Path:
    target = Path.cwd() / PROFILE_PATH if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        json.dumps(profile, separators=(",", ":"), allow_nan=False) + "\n", encoding="utf-8"
    )
    return target

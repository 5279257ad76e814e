"""Late labels joined to the window's predictions: the live metric against the baseline.

The labels file (CSV or Parquet, named in the spec) holds the join key (by default
`request_id`: the id the server returns in its body and its X-Request-ID header, and logs),
the target under its contract name and, optionally, `row` (the position in a batch request;
0 when absent) and outcome columns for KPIs. It is read whole at every monitor run and joined
to the window's (request id, row) pairs; a pair labelled twice keeps its last label. A file
that is named but absent, unreadable or without the columns it needs is a problem of the
report, not a silent lack of labels. The metric is computed by the same functions as in
training (train/evaluation.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime.config import PerformanceConfig

LABELS_MISSING = "labels_missing"
LABELS_UNREADABLE = "labels_unreadable"
LABELS_INVALID = "labels_invalid"


def expected_columns(join_key: str, target: str | None) -> str:
    """What a labels file should hold, for the messages that say it does not."""
    key = f"a {join_key!r} column (the request id the server returns as `request_id` and in X-Request-ID)"
    wanted = f"{key} and the target column {target!r}" if target else key
    return f"{wanted}, optionally `row` (the position in a batch request)"


def labels_problem(status: str, message: str) -> dict[str, str]:
    return {"status": status, "message": message}


def check_labels_file(path: Path, join_key: str, target: str | None) -> dict[str, str] | None:
    """The problem of a named labels file that does not exist, or None."""
    if path.is_file():
        return None
    return labels_problem(
        LABELS_MISSING,
        f"labels file {path.resolve()} does not exist: it should hold one row per labelled "
        f"prediction, with {expected_columns(join_key, target)}",
    )


def read_labels(
    path: Path, join_key: str, target: str | None = None
) -> tuple[pd.DataFrame | None, dict[str, str] | None]:
    """(labels, None) or (None, the problem of the report saying why they cannot be used).
    `target`: the column the live metric needs, when it is monitored."""
    missing = check_labels_file(path, join_key, target)
    if missing is not None:
        return None, missing
    try:
        frame = (
            pd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".pq")
            else pd.read_csv(path)
        )
    except (OSError, ValueError) as exc:
        return None, labels_problem(
            LABELS_UNREADABLE, f"labels file {path.resolve()} cannot be read: {exc}"
        )
    absent = [c for c in (join_key, target) if c is not None and c not in frame.columns]
    if absent:
        return None, labels_problem(
            LABELS_INVALID,
            f"labels file {path.resolve()} has no {' or '.join(repr(c) for c in absent)} "
            f"column: it should hold {expected_columns(join_key, target)}",
        )
    frame = frame.rename(columns={join_key: "request_id"})
    frame["request_id"] = frame["request_id"].astype(str)
    frame["row"] = _positions(frame["row"]) if "row" in frame.columns else 0
    frame = frame.drop_duplicates(["request_id", "row"], keep="last")
    return frame, None


def _positions(column: pd.Series) -> pd.Series:
    """`row` as int64; a cell that is no position (blank, text, infinite, fractional, past
    int64) is row 0, as an absent column is, instead of stopping the monitor in the cast."""
    numbers = pd.to_numeric(column, errors="coerce").astype("float64")
    valid = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (numbers.abs() < 2.0**63)
    return numbers.where(valid, 0.0).astype("int64")


def join(pairs: pd.DataFrame | None, labels: pd.DataFrame | None) -> pd.DataFrame | None:
    if pairs is None or labels is None:
        return None
    return pairs.merge(labels, on=["request_id", "row"], how="inner")


def live_metric(
    joined: pd.DataFrame | None,
    *,
    target: str,
    task: str,
    settings: PerformanceConfig,
    baseline: Mapping[str, float],
    classes: list[str],
    labels_problem: str | None,
) -> dict[str, Any]:
    from mlops_runtime.train.evaluation import classification_metrics, regression_metrics

    metric = settings.metric
    out: dict[str, Any] = {
        "metric": metric,
        "min": settings.min,
        "max": settings.max,
        "min_samples": settings.min_samples,
        "baseline": baseline.get(metric),
        "labelled": 0 if joined is None else len(joined),
        "value": None,
    }
    if labels_problem is not None:
        return {**out, "status": "no_labels", "message": labels_problem}
    if joined is None or target not in joined.columns:
        return {**out, "status": "no_labels", "message": f"the labels carry no {target!r} column"}
    joined = joined[joined[target].notna()]
    out["labelled"] = len(joined)
    if len(joined) < out["min_samples"]:
        return {**out, "status": "insufficient_samples"}
    no_proba = "the prediction log holds no probabilities"  # why a metric has none, if so
    if task == "regression":
        y_true = pd.to_numeric(joined[target], errors="coerce").to_numpy(dtype="float64")
        y_pred = pd.to_numeric(joined["prediction"], errors="coerce").to_numpy(dtype="float64")
        metrics = regression_metrics(y_true, y_pred)
    else:
        from mlops_runtime.sketches import sketch_key

        y_true = joined[target].map(sketch_key).to_numpy(dtype=object)
        y_pred = joined["prediction"].map(sketch_key).to_numpy(dtype=object)
        proba_columns = [c for c in joined.columns if c.startswith("proba_")]
        proba = joined[proba_columns].to_numpy(dtype="float64") if proba_columns else None
        if proba is not None:
            if not classes:
                no_proba = "the reference profile names no classes (is it missing?)"
            elif len(proba_columns) != len(classes):
                no_proba = (
                    f"the log's {len(proba_columns)} probability columns do not match the "
                    f"reference's {len(classes)} classes"
                )
            elif np.isnan(proba).any():
                no_proba = "some logged predictions have no probabilities"
            else:
                no_proba = ""
            if no_proba:
                proba = None
        present = set(y_true) | set(y_pred)
        if not present <= set(classes):
            if classes and not no_proba:
                outside = sorted(present - set(classes))
                no_proba = f"labels or predictions outside the reference's classes: {outside}"
            classes = sorted(set(classes) | present)
            proba = None
        try:
            metrics = classification_metrics(y_true, y_pred, proba, classes)
        except ValueError as exc:  # e.g. one class only among the labels: no roc_auc
            return {**out, "status": "undefined", "message": str(exc)}
    value = metrics.get(metric)
    if value is None:
        return {
            **out,
            "status": "undefined",
            "message": f"{metric} needs probabilities: {no_proba}",
        }
    return {**out, "value": float(value), "status": "ok"}

"""Late labels joined to the window's predictions: the live metric against the baseline.

The labels file (CSV or Parquet, named in the spec) holds the join key (by default
`request_id`, the id the server returns and logs), the target under its contract name and,
optionally, `row` (the position in a batch request; 0 when absent) and outcome columns for
KPIs. The metric is computed by the same functions as in training (train/evaluation.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def read_labels(path: Path, join_key: str) -> tuple[pd.DataFrame | None, str | None]:
    """(labels, None) or (None, why they cannot be used)."""
    if not path.is_file():
        return None, f"no labels file at {path}"
    try:
        frame = (
            pd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".pq")
            else pd.read_csv(path)
        )
    except (OSError, ValueError) as exc:
        return None, f"labels file {path.name} cannot be read: {exc}"
    if join_key not in frame.columns:
        return None, f"labels file {path.name} has no join key column {join_key!r}"
    frame = frame.rename(columns={join_key: "request_id"})
    frame["request_id"] = frame["request_id"].astype(str)
    frame["row"] = frame["row"].astype("int64") if "row" in frame.columns else 0
    return frame, None


def join(pairs: pd.DataFrame | None, labels: pd.DataFrame | None) -> pd.DataFrame | None:
    if pairs is None or labels is None:
        return None
    return pairs.merge(labels, on=["request_id", "row"], how="inner")


def live_metric(
    joined: pd.DataFrame | None,
    *,
    target: str,
    task: str,
    settings: Mapping[str, Any],
    baseline: Mapping[str, float],
    classes: list[str],
    labels_problem: str | None,
) -> dict[str, Any]:
    from mlops_runtime.train.evaluation import classification_metrics, regression_metrics

    metric = settings["metric"]
    out: dict[str, Any] = {
        "metric": metric,
        "min": settings.get("min"),
        "max": settings.get("max"),
        "min_samples": int(settings.get("min_samples", 100)),
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
    if task == "regression":
        y_true = pd.to_numeric(joined[target], errors="coerce").to_numpy(dtype="float64")
        y_pred = pd.to_numeric(joined["prediction"], errors="coerce").to_numpy(dtype="float64")
        metrics = regression_metrics(y_true, y_pred)
    else:
        from mlops_runtime.monitor.sketches import category_text

        y_true = joined[target].map(category_text).to_numpy(dtype=object)
        y_pred = joined["prediction"].map(category_text).to_numpy(dtype=object)
        proba_columns = [c for c in joined.columns if c.startswith("proba_")]
        proba = joined[proba_columns].to_numpy(dtype="float64") if proba_columns else None
        if proba is not None and (len(proba_columns) != len(classes) or np.isnan(proba).any()):
            proba = None
        present = set(y_true) | set(y_pred)
        if not present <= set(classes):
            classes = sorted(set(classes) | present)
            proba = None
        try:
            metrics = classification_metrics(y_true, y_pred, proba, classes)
        except ValueError as exc:  # e.g. one class only among the labels: no roc_auc
            return {**out, "status": "undefined", "message": str(exc)}
    value = metrics.get(metric)
    if value is None:
        return {**out, "status": "undefined", "message": f"{metric} needs probabilities"}
    return {**out, "value": float(value), "status": "ok"}

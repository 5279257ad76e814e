"""Evaluation metrics and the model gate (absolute thresholds and deltas vs the champion)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: Sequence[Any]
) -> dict[str, float]:
    """f1 is binary f1 of the second class (sklearn's positive) or macro f1 for multiclass;
    roc_auc is binary or one-vs-rest macro. Probability metrics need predict_proba."""
    classes = list(classes)
    binary = len(classes) == 2
    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    if binary:
        out["f1"] = float(f1_score(y_true, y_pred, pos_label=classes[1], average="binary"))
    else:
        out["f1"] = float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
        )
    if proba is not None:
        if binary:
            out["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
        else:
            out["roc_auc"] = float(
                roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
            )
        out["log_loss"] = float(log_loss(y_true, proba, labels=classes))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def evaluate(pipeline: Any, x: Any, y: np.ndarray, task: str) -> dict[str, float]:
    predictions = pipeline.predict(x)
    if task == "regression":
        return regression_metrics(y, predictions)
    proba = pipeline.predict_proba(x) if hasattr(pipeline, "predict_proba") else None
    return classification_metrics(y, predictions, proba, pipeline.classes_)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["passed"]]


def _compare(actual: float | None, op: str, bound: float) -> bool:
    if op not in OPS:
        raise ValueError(f"unknown gate operator {op!r}; use one of {sorted(OPS)}")
    return actual is not None and not math.isnan(actual) and OPS[op](actual, bound)


def evaluate_absolute(
    metrics: Mapping[str, float], rules: Sequence[Mapping[str, Any]]
) -> GateResult:
    """Each rule {"metric", "op", "value"} holds when `metric op value`; a missing metric fails."""
    checks = []
    for rule in rules:
        actual = metrics.get(rule["metric"])
        checks.append(
            {
                "kind": "absolute",
                "metric": rule["metric"],
                "op": rule["op"],
                "value": rule["value"],
                "actual": actual,
                "passed": _compare(actual, rule["op"], float(rule["value"])),
            }
        )
    return GateResult(all(c["passed"] for c in checks), checks)


def evaluate_vs_champion(
    metrics: Mapping[str, float], champion: Mapping[str, float], rules: Sequence[Mapping[str, Any]]
) -> GateResult:
    """Each rule bounds the delta candidate - champion: `delta op value`."""
    checks = []
    for rule in rules:
        candidate = metrics.get(rule["metric"])
        incumbent = champion.get(rule["metric"])
        delta = None if candidate is None or incumbent is None else candidate - incumbent
        checks.append(
            {
                "kind": "vs_champion",
                "metric": rule["metric"],
                "op": rule["op"],
                "value": rule["value"],
                "candidate": candidate,
                "champion": incumbent,
                "actual": delta,
                "passed": _compare(delta, rule["op"], float(rule["value"])),
            }
        )
    return GateResult(all(c["passed"] for c in checks), checks)


def describe(result: GateResult) -> str:
    parts = []
    for check in result.checks:
        actual = "missing" if check["actual"] is None else f"{check['actual']:.4f}"
        label = check["metric"] if check["kind"] == "absolute" else f"{check['metric']} - champion"
        verdict = "ok" if check["passed"] else "FAILED"
        parts.append(f"{label} = {actual} {check['op']} {check['value']}: {verdict}")
    return "; ".join(parts) or "no rules"

"""The live metric from late labels: when it cannot be computed, the message says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_runtime.config import PerformanceConfig
from mlops_runtime.monitor.labels import live_metric

SETTINGS = PerformanceConfig(metric="roc_auc", min=0.9, max=None, min_samples=10)


def joined(n: int = 40, *, proba: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, n)
    frame = pd.DataFrame({"target": truth, "prediction": truth})
    if proba:
        p1 = np.clip(truth * 0.8 + rng.random(n) * 0.2, 0, 1)
        frame["proba_0"], frame["proba_1"] = 1 - p1, p1
    return frame


def metric(frame: pd.DataFrame, classes: list[str]) -> dict[str, object]:
    return live_metric(
        frame,
        target="target",
        task="binary",
        settings=SETTINGS,
        baseline={"roc_auc": 0.99},
        classes=classes,
        labels_problem=None,
    )


def test_with_the_reference_classes_roc_auc_is_computed() -> None:
    out = metric(joined(), ["0", "1"])
    assert out["status"] == "ok" and out["value"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("frame", "classes", "why"),
    [
        (joined(), [], "the reference profile names no classes (is it missing?)"),
        (joined(proba=False), ["0", "1"], "the prediction log holds no probabilities"),
        (
            joined(),
            ["0", "1", "2"],
            "the log's 2 probability columns do not match the reference's 3 classes",
        ),
    ],
    ids=["no-reference", "no-probabilities", "other-classes"],
)
def test_without_probabilities_the_message_says_why(
    frame: pd.DataFrame, classes: list[str], why: str
) -> None:
    out = metric(frame, classes)
    assert out["status"] == "undefined"
    assert out["message"] == f"roc_auc needs probabilities: {why}"

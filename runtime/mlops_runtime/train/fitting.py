"""Split, fit and score: the part of training that is the same at every level.

The level-0 script and the tracked train stage both call fit_and_evaluate, so a project gets
the same split, model and metrics whichever level it is built at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime.data import dropna_target, split_positions
from mlops_runtime.features.pipeline import build_pipeline, model_frame, target_array

# Classifiers whose predict() is the class with the highest predict_proba() (ties aside), so
# one pass over the test split gives both; for others (e.g. SVC's Platt scaling) the two differ.
PREDICT_IS_ARGMAX_PROBA = frozenset(
    {
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.GradientBoostingClassifier",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.tree.DecisionTreeClassifier",
        "sklearn.linear_model.LogisticRegression",
    }
)


@dataclass
class Fitted:
    pipeline: Any
    frame: pd.DataFrame  # the typed rows with a label; the splits are positions in it
    train_rows: np.ndarray
    test_rows: np.ndarray
    x_test: pd.DataFrame
    y_test: np.ndarray
    predictions: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    metrics: dict[str, float]


def predict_test(
    pipeline: Any, x_test: pd.DataFrame, config: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray | None, list[Any] | None]:
    """Predictions, class probabilities (classifiers that have them) and classes."""
    if config["model"]["task"] == "regression":
        return np.asarray(pipeline.predict(x_test)), None, None
    classes = list(pipeline.classes_)
    if not hasattr(pipeline, "predict_proba"):
        return np.asarray(pipeline.predict(x_test)), None, classes
    proba = np.asarray(pipeline.predict_proba(x_test))
    if config["model"]["estimator"] not in PREDICT_IS_ARGMAX_PROBA:
        return np.asarray(pipeline.predict(x_test)), proba, classes
    predictions = np.asarray(pipeline.classes_)[np.argmax(proba, axis=1)]
    # Where the two best classes tie, predict() may break the tie its own way (a raw score
    # > 0 against argmax of [0.5, 0.5]): those rows are asked of predict() itself.
    top_two = np.sort(proba, axis=1)[:, -2:]
    ties = np.flatnonzero(top_two[:, 0] == top_two[:, 1])
    if len(ties):
        predictions[ties] = pipeline.predict(x_test.iloc[ties])
    return predictions, proba, classes


def fit_and_evaluate(
    frame: pd.DataFrame,
    config: Mapping[str, Any],
    pipeline: Any | None = None,
    on_split: Callable[[Any, int, int], None] | None = None,
) -> Fitted:
    """Split, fit and score; `on_split(pipeline, train rows, test rows)` runs before the fit."""
    from mlops_runtime.train.evaluation import classification_metrics, regression_metrics

    frame, _ = dropna_target(frame, config["data"]["target"])
    train_rows, test_rows = split_positions(frame, config)
    pipeline = build_pipeline(config) if pipeline is None else pipeline
    if on_split is not None:
        on_split(pipeline, len(train_rows), len(test_rows))
    # Feature dtypes and labels once for all rows; each split is then a take of positions.
    features = model_frame(frame, config)
    labels = target_array(frame, config)
    pipeline.fit(features.take(train_rows), labels[train_rows])
    x_test, y_test = features.take(test_rows), labels[test_rows]
    predictions, proba, classes = predict_test(pipeline, x_test, config)
    metrics = (
        regression_metrics(y_test, predictions)
        if classes is None
        else classification_metrics(y_test, predictions, proba, classes)
    )
    return Fitted(
        pipeline, frame, train_rows, test_rows, x_test, y_test, predictions, proba, classes, metrics
    )

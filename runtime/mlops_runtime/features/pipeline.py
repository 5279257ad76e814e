"""One scikit-learn pipeline, fitted in training and shipped whole, so serving transforms exactly
as training did: Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from mlops_runtime.contract.rules import is_null
from mlops_runtime.features.columns import feature_columns

SCALERS: dict[str, type[BaseEstimator]] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}


def model_frame(frame: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """Feature columns in the plain dtypes sklearn handles everywhere.

    Nullable pandas types (Int64, boolean, string) become float64 / object with NaN, because
    imputers and encoders treat pd.NA inconsistently and MLflow signatures map these cleanly.
    """
    features = config["features"]
    out: dict[str, pd.Series] = {}
    categorical = set(features.get("categorical", {}).get("columns", []))
    for name in feature_columns(config):
        column = frame[name]
        if name in categorical or not _numeric_like(column):
            out[name] = _text_column(column)
        else:
            out[name] = pd.Series(
                column.to_numpy(dtype="float64", na_value=np.nan), index=frame.index
            )
    return pd.DataFrame(out, index=frame.index)


def _text_column(column: pd.Series) -> pd.Series:
    """Object column of str with NaN for nulls, converting each distinct value once."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = [v if isinstance(v, str) else str(v) for v in uniques]
    table = np.array([*texts, np.nan], dtype=object)
    values = table[np.where(codes < 0, len(texts), codes)]
    # factorize counts only pd.NA/None/NaN as missing; the contract's other null spellings too.
    nulls = np.array([is_null(v) for v in table[:-1]] + [True], dtype=bool)
    values[nulls[np.where(codes < 0, len(texts), codes)]] = np.nan
    return pd.Series(values, index=column.index, dtype=object, name=column.name)


def _numeric_like(column: pd.Series) -> bool:
    return bool(
        pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
    )


def target_array(frame: pd.DataFrame, config: Mapping[str, Any]) -> np.ndarray:
    """Labels as numpy: float for regression; int, bool or str classes for classification."""
    column = frame[config["data"]["target"]]
    labels: np.ndarray
    if config["model"]["task"] == "regression":
        labels = column.to_numpy(dtype="float64", na_value=np.nan)
    elif pd.api.types.is_bool_dtype(column.dtype):
        labels = column.to_numpy(dtype=bool)
    elif pd.api.types.is_integer_dtype(column.dtype):
        labels = column.to_numpy(dtype="int64")
    elif pd.api.types.is_float_dtype(column.dtype):
        labels = column.to_numpy(dtype="float64")
    else:
        labels = column.astype(object).to_numpy()
    return labels


def load_estimator_class(dotted: str) -> type[BaseEstimator]:
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name:
        raise ValueError(
            f"estimator must be a dotted path like sklearn.linear_model.Ridge, got {dotted!r}"
        )
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not inspect.isclass(cls):
        raise ValueError(f"{dotted!r} is not a class")
    return cls


def build_estimator(config: Mapping[str, Any]) -> BaseEstimator:
    model = config["model"]
    cls = load_estimator_class(model["estimator"])
    params = dict(model.get("params") or {})
    # An unseeded estimator would make two trainings on the same data disagree.
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = config["data"].get("split", {}).get("seed", 0)
    return cls(**params)


def build_preprocessor(config: Mapping[str, Any]) -> ColumnTransformer:
    features = config["features"]
    transformers: list[tuple[str, Any, list[str]]] = []
    numeric = features.get("numeric", {})
    if numeric.get("columns"):
        steps: list[tuple[str, Any]] = []
        if numeric.get("impute", "median") != "none":
            steps.append(("impute", SimpleImputer(strategy=numeric.get("impute", "median"))))
        if numeric.get("scale", "standard") != "none":
            steps.append(("scale", SCALERS[numeric.get("scale", "standard")]()))
        transformers.append(
            ("numeric", Pipeline(steps) if steps else "passthrough", list(numeric["columns"]))
        )
    categorical = features.get("categorical", {})
    if categorical.get("columns"):
        steps = []
        if categorical.get("impute", "most_frequent") != "none":
            steps.append(
                ("impute", SimpleImputer(strategy=categorical.get("impute", "most_frequent")))
            )
        if categorical.get("encode", "onehot") == "onehot":
            # Categories unseen in training encode as all zeros instead of failing a request.
            steps.append(("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)))
        else:
            steps.append(
                (
                    "encode",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        encoded_missing_value=-1,
                    ),
                )
            )
        transformers.append(("categorical", Pipeline(steps), list(categorical["columns"])))
    passthrough = list(features.get("passthrough", []))
    if passthrough:
        transformers.append(("passthrough", "passthrough", passthrough))
    # Dense output: several estimators (HistGradientBoosting*) reject sparse input.
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def build_pipeline(config: Mapping[str, Any]) -> Pipeline:
    return Pipeline(
        [("preprocess", build_preprocessor(config)), ("model", build_estimator(config))]
    )

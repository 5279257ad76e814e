"""Feature pipeline construction and the metrics / gate arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, RobustScaler

from mlops_runtime.features.pipeline import (
    build_pipeline,
    feature_columns,
    load_estimator_class,
    model_frame,
)
from mlops_runtime.train.evaluation import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    classification_metrics,
    evaluate_absolute,
    evaluate_vs_champion,
    regression_metrics,
)


def small_config(**features):
    config = {
        "data": {"target": "y", "split": {"seed": 3}},
        "features": {
            "numeric": {"columns": ["n"], "impute": "median", "scale": "standard"},
            "categorical": {"columns": ["c"], "impute": "most_frequent", "encode": "onehot"},
            "passthrough": ["p"],
        },
        "model": {
            "task": "classification",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {},
        },
    }
    config["features"].update(features)
    return config


FRAME = pd.DataFrame(
    {
        "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        "c": pd.array(["a", "b", None, "a", "b", "a"], dtype="string"),
        "p": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
        "y": [0, 1, 0, 1, 0, 1],
    }
)


def test_model_frame_uses_plain_dtypes():
    x = model_frame(FRAME, small_config())
    assert list(x.columns) == feature_columns(small_config()) == ["n", "c", "p"]
    assert x["n"].dtype == np.float64 and math.isnan(x["n"][1])
    assert x["c"].dtype == object and x["c"].tolist()[:2] == ["a", "b"] and math.isnan(x["c"][2])


def test_pipeline_fits_with_nulls_and_ignores_unknown_categories():
    config = small_config()
    pipeline = build_pipeline(config).fit(model_frame(FRAME, config), FRAME["y"])
    unseen = pd.DataFrame({"n": [2.0], "c": ["never-seen"], "p": [1.0]}).astype({"c": object})
    assert pipeline.predict_proba(unseen).shape == (1, 2)
    encoder = (
        pipeline.named_steps["preprocess"].named_transformers_["categorical"].named_steps["encode"]
    )
    assert isinstance(encoder, OneHotEncoder) and encoder.handle_unknown == "ignore"


def test_pipeline_options_map_to_transformers():
    config = small_config(
        numeric={"columns": ["n"], "impute": "none", "scale": "robust"},
        categorical={"columns": ["c"], "impute": "none", "encode": "ordinal"},
    )
    preprocess = build_pipeline(config).named_steps["preprocess"]
    assert isinstance(preprocess, ColumnTransformer)
    transformers = {name: t for name, t, _ in preprocess.transformers}
    assert [type(s) for _, s in transformers["numeric"].steps] == [RobustScaler]
    assert [type(s) for _, s in transformers["categorical"].steps] == [OrdinalEncoder]
    assert transformers["passthrough"] == "passthrough"
    config["features"]["numeric"]["scale"] = "none"
    assert build_pipeline(config).named_steps["preprocess"].transformers[0][1] == "passthrough"


def test_estimator_is_imported_by_dotted_path_and_seeded():
    config = small_config()
    config["model"] = {"task": "regression", "estimator": "sklearn.ensemble.RandomForestRegressor",
                       "params": {"n_estimators": 3}}  # fmt: skip
    model = build_pipeline(config)[-1]
    assert type(model).__name__ == "RandomForestRegressor"
    assert model.n_estimators == 3 and model.random_state == 3
    config["model"]["params"]["random_state"] = 11
    assert build_pipeline(config)[-1].random_state == 11


@pytest.mark.parametrize(
    "dotted", ["LogisticRegression", "sklearn.linear_model.Nope", "sklearn.nope.X"]
)
def test_bad_estimator_paths_raise(dotted):
    with pytest.raises((ValueError, ImportError)):
        load_estimator_class(dotted)


def test_higher_is_better_covers_every_metric():
    assert set(HIGHER_IS_BETTER) == set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    assert (
        not HIGHER_IS_BETTER["rmse"]
        and not HIGHER_IS_BETTER["log_loss"]
        and HIGHER_IS_BETTER["roc_auc"]
    )


def test_binary_metrics_use_the_second_class_as_positive():
    y = np.array(["no", "yes", "yes", "no"], dtype=object)
    pred = np.array(["no", "yes", "no", "no"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    m = classification_metrics(y, pred, proba, ["no", "yes"])
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == 1.0
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    y = np.array([0, 1, 2, 2])
    pred = np.array([0, 1, 1, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.5, 0.4], [0.1, 0.2, 0.7]])
    m = classification_metrics(y, pred, proba, [0, 1, 2])
    assert m["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert m["roc_auc"] == pytest.approx(1.0)
    assert set(classification_metrics(y, pred, None, [0, 1, 2])) == {"accuracy", "f1"}


def test_regression_metrics():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert m["r2"] == pytest.approx(1 - 4 / 2)


@pytest.mark.parametrize(
    ("op", "value", "passed"),
    [
        (">=", 0.8, True),
        (">", 0.8, False),
        ("<=", 0.8, True),
        ("<", 0.8, False),
        (">=", 0.81, False),
    ],
)
def test_absolute_gate_operators(op, value, passed):
    result = evaluate_absolute({"roc_auc": 0.8}, [{"metric": "roc_auc", "op": op, "value": value}])
    assert result.passed is passed
    assert result.checks[0]["actual"] == 0.8


def test_absolute_gate_fails_on_missing_metric_and_unknown_operator():
    assert evaluate_absolute({}, [{"metric": "roc_auc", "op": ">=", "value": 0}]).passed is False
    with pytest.raises(ValueError, match="operator"):
        evaluate_absolute({"r2": 1.0}, [{"metric": "r2", "op": "==", "value": 1}])
    assert evaluate_absolute({"r2": 0.1}, []).passed is True


def test_vs_champion_bounds_the_delta():
    rules = [
        {"metric": "roc_auc", "op": ">=", "value": -0.01},
        {"metric": "rmse", "op": "<=", "value": 0.0},
    ]
    ok = evaluate_vs_champion({"roc_auc": 0.895, "rmse": 1.0}, {"roc_auc": 0.9, "rmse": 1.5}, rules)
    assert ok.passed and ok.checks[0]["actual"] == pytest.approx(-0.005)
    worse = evaluate_vs_champion(
        {"roc_auc": 0.85, "rmse": 1.0}, {"roc_auc": 0.9, "rmse": 0.5}, rules
    )
    assert not worse.passed and [c["metric"] for c in worse.failures()] == ["roc_auc", "rmse"]
    assert not evaluate_vs_champion({"roc_auc": 0.9}, {}, rules[:1]).passed

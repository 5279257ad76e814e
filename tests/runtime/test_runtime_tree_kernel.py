"""The vectorised HistGradientBoosting kernel gives scikit-learn's numbers exactly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)

from mlops_runtime.serve.tree_kernel import (
    MAX_ROWS,
    PARALLEL_ROWS,
    HistGradientBoostingKernel,
    compile_estimator,
)


def with_nulls(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = x.astype(np.float64).copy()
    x[rng.random(x.shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize(
    ("loader", "model"),
    [
        (load_breast_cancer, HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        (load_wine, HistGradientBoostingClassifier(max_iter=20, random_state=0)),
        (load_diabetes, HistGradientBoostingRegressor(max_iter=30, random_state=0)),
    ],
    ids=["binary", "multiclass", "regression"],
)
def test_kernel_matches_sklearn_exactly_with_missing_values(loader, model) -> None:
    x, y = loader(return_X_y=True)
    x = with_nulls(x, 1)
    model.fit(x, y)
    kernel = compile_estimator(model)
    assert isinstance(kernel, HistGradientBoostingKernel)
    probe = with_nulls(loader(return_X_y=True)[0], 2)
    for start in range(0, len(probe), MAX_ROWS):
        rows = probe[start : start + MAX_ROWS]
        assert np.array_equal(kernel.predict(rows), model.predict(rows))
        if hasattr(model, "predict_proba"):
            assert np.array_equal(kernel.predict_proba(rows), model.predict_proba(rows))
    assert np.array_equal(kernel.predict(probe), model.predict(probe))  # the large-batch path
    # Big batches run on every CPU: still exactly the estimator's numbers.
    big = np.tile(probe, (PARALLEL_ROWS // len(probe) + 1, 1))
    assert len(big) >= PARALLEL_ROWS
    kernel.threads = 2
    assert np.array_equal(kernel.predict(big), model.predict(big))
    if hasattr(model, "predict_proba"):
        assert np.array_equal(kernel.predict_proba(big), model.predict_proba(big))


def test_other_estimators_are_left_alone() -> None:
    x, y = load_wine(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    assert compile_estimator(forest) is forest


def test_native_categorical_splits_are_not_compiled() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.integers(0, 4, 300), rng.random(300)])
    y = (x[:, 0] == 2) ^ (x[:, 1] > 0.5)
    model = HistGradientBoostingClassifier(
        max_iter=10, categorical_features=[0], random_state=0
    ).fit(x, y)
    assert compile_estimator(model) is model

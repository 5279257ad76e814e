"""Known estimators by dotted path, with their task, checked without importing scikit-learn."""

from __future__ import annotations

from typing import Literal

Task = Literal["classification", "regression"]

KNOWN_ESTIMATORS: dict[str, Task] = {
    "sklearn.ensemble.ExtraTreesClassifier": "classification",
    "sklearn.ensemble.ExtraTreesRegressor": "regression",
    "sklearn.ensemble.GradientBoostingClassifier": "classification",
    "sklearn.ensemble.GradientBoostingRegressor": "regression",
    "sklearn.ensemble.HistGradientBoostingClassifier": "classification",
    "sklearn.ensemble.HistGradientBoostingRegressor": "regression",
    "sklearn.ensemble.RandomForestClassifier": "classification",
    "sklearn.ensemble.RandomForestRegressor": "regression",
    "sklearn.linear_model.ElasticNet": "regression",
    "sklearn.linear_model.Lasso": "regression",
    "sklearn.linear_model.LinearRegression": "regression",
    "sklearn.linear_model.LogisticRegression": "classification",
    "sklearn.linear_model.Ridge": "regression",
    "sklearn.linear_model.RidgeClassifier": "classification",
    "sklearn.linear_model.SGDClassifier": "classification",
    "sklearn.linear_model.SGDRegressor": "regression",
    "sklearn.neighbors.KNeighborsClassifier": "classification",
    "sklearn.neighbors.KNeighborsRegressor": "regression",
    "sklearn.svm.SVC": "classification",
    "sklearn.svm.SVR": "regression",
    "sklearn.tree.DecisionTreeClassifier": "classification",
    "sklearn.tree.DecisionTreeRegressor": "regression",
}

DEFAULT_ESTIMATOR: dict[Task, str] = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}

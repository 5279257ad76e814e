"""Fixtures for the unit tests of the `mlops_runtime` library.

CONFIG/CONTRACT dicts for the four example datasets are built here, with small models so the
suite stays fast; `write_project` lays them out as a generated project's config.json and
contract.json.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mlops_runtime

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "specs" / "data"

# No network from MLflow during tests (usage telemetry is on by default in MLflow 3).
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
os.environ.update(QUIET_ENV)

DATASETS = ("breast_cancer", "diabetes", "wine", "penguins")

BREAST_CANCER_FEATURES = [
    f"{prefix}_{name}"
    for prefix in ("mean",)
    for name in (
        "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
        "concave_points", "symmetry", "fractal_dimension",
    )
] + [
    f"{name}_error"
    for name in (
        "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
        "concave_points", "symmetry", "fractal_dimension",
    )
] + [
    f"worst_{name}"
    for name in (
        "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
        "concave_points", "symmetry", "fractal_dimension",
    )
]  # fmt: skip
WINE_FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
    "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315_of_diluted_wines", "proline",
]  # fmt: skip


def col(kind: str, **rule: Any) -> dict[str, Any]:
    base = {"type": kind, "nullable": False, "max_null_fraction": 0.0, "min": None, "max": None,
            "values": None, "unique": False}  # fmt: skip
    base.update(rule)
    return base


def _base_config(
    name: str, target: str, task: str, estimator: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name.replace("_", "-"),
        "level": 1,
        "spec_sha256": "5" * 64,
        "compiler_version": mlops_runtime.__version__,
        "stages": ["train", "lineage", "serve"],
        "training": {"tracking": True},
        "data": {
            "path": str(DATA_DIR / f"{name}.csv"),
            "path_env": "MLOPS_TRAIN_DATA",
            "target": target,
            "split": {"test_size": 0.25, "seed": 42, "stratify": task == "classification"},
        },
        "features": {
            "numeric": {"columns": [], "impute": "median", "scale": "standard"},
            "categorical": {"columns": [], "impute": "most_frequent", "encode": "onehot"},
            "passthrough": [],
        },
        "model": {"task": task, "estimator": estimator, "params": params},
        "gate": {"absolute": [], "vs_champion": [], "promote": "auto"},
        "tracking": {
            "uri": "sqlite:///mlruns.db",
            "experiment": name,
            "registered_model": name.replace("_", "-"),
        },
        "profile": {"sample_size": 100, "bins": 10},
    }


def breast_cancer() -> tuple[dict[str, Any], dict[str, Any]]:
    config = _base_config(
        "breast_cancer",
        "malignant",
        "classification",
        "sklearn.linear_model.LogisticRegression",
        {"max_iter": 300},
    )
    config["features"]["numeric"]["columns"] = list(BREAST_CANCER_FEATURES)
    config["gate"]["absolute"] = [{"metric": "roc_auc", "op": ">=", "value": 0.9}]
    config["gate"]["vs_champion"] = [{"metric": "roc_auc", "op": ">=", "value": -0.01}]
    columns = {c: col("float", min=0.0) for c in BREAST_CANCER_FEATURES}
    columns["malignant"] = col("int", values=[0, 1])
    return config, {"min_rows": 100, "extra_columns": "forbid", "columns": columns}


def diabetes() -> tuple[dict[str, Any], dict[str, Any]]:
    config = _base_config(
        "diabetes", "progression", "regression", "sklearn.linear_model.Ridge", {"alpha": 1.0}
    )
    config["features"]["numeric"]["columns"] = [
        "age",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
    ]
    config["features"]["categorical"] = {"columns": ["sex"], "impute": "none", "encode": "onehot"}
    config["gate"]["absolute"] = [{"metric": "r2", "op": ">", "value": 0.2}]
    config["gate"]["vs_champion"] = [{"metric": "rmse", "op": "<=", "value": 1.0}]
    columns = {
        "age": col("int", min=0, max=120),
        "sex": col("category", values=["1", "2"]),
        "bmi": col("float", min=10, max=60),
        "bp": col("float", min=40, max=200),
        **{s: col("float", min=0) for s in ("s1", "s2", "s3", "s4", "s5", "s6")},
        "progression": col("float", min=0, max=400),
    }
    return config, {"min_rows": 100, "extra_columns": "ignore", "columns": columns}


def wine() -> tuple[dict[str, Any], dict[str, Any]]:
    config = _base_config(
        "wine",
        "cultivar",
        "classification",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_iter": 30, "learning_rate": 0.2},
    )
    config["features"]["numeric"] = {
        "columns": list(WINE_FEATURES),
        "impute": "none",
        "scale": "none",
    }
    config["gate"]["absolute"] = [{"metric": "accuracy", "op": ">=", "value": 0.8}]
    columns = {c: col("float", min=0.0) for c in WINE_FEATURES}
    columns["magnesium"] = col("int", min=50, max=200)
    columns["proline"] = col("int", min=100, max=2000)
    columns["cultivar"] = col("int", values=[0, 1, 2])
    return config, {"min_rows": 100, "extra_columns": "forbid", "columns": columns}


def penguins() -> tuple[dict[str, Any], dict[str, Any]]:
    config = _base_config(
        "penguins",
        "species",
        "classification",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 15, "max_depth": 5},
    )
    config["features"]["numeric"]["columns"] = [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
    ]
    config["features"]["categorical"]["columns"] = ["island", "sex"]
    config["features"]["passthrough"] = ["year"]
    config["gate"]["absolute"] = [{"metric": "f1", "op": ">=", "value": 0.8}]
    nullable = {"nullable": True, "max_null_fraction": 0.05}
    columns = {
        "species": col("category", values=["Adelie", "Chinstrap", "Gentoo"]),
        "island": col("category", values=["Biscoe", "Dream", "Torgersen"]),
        "bill_length_mm": col("float", min=20, max=80, **nullable),
        "bill_depth_mm": col("float", min=5, max=30, **nullable),
        "flipper_length_mm": col("int", min=100, max=300, **nullable),
        "body_mass_g": col("int", min=1000, max=10000, **nullable),
        "sex": col("category", values=["female", "male"], **nullable),
        "year": col("int", min=2000, max=2100),
    }
    return config, {"min_rows": 100, "extra_columns": "forbid", "columns": columns}


BUILDERS: dict[str, Callable[[], tuple[dict[str, Any], dict[str, Any]]]] = {
    "breast_cancer": breast_cancer,
    "diabetes": diabetes,
    "wine": wine,
    "penguins": penguins,
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: end-to-end runs with real MLflow (still run in CI)")


@pytest.fixture
def dataset_config() -> Callable[[str], tuple[dict[str, Any], dict[str, Any]]]:
    """Factory: dataset name -> fresh (CONFIG, CONTRACT) dicts, safe to mutate."""

    def make(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return copy.deepcopy(BUILDERS[name]())

    return make


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stages read these; a value leaking in from the shell would redirect tests to real stores.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_TRAIN_DATA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite store; copying it skips the migrations per test."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlruns.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Path:
    """A generated-project-like working directory with a ready SQLite store, as the cwd."""
    shutil.copyfile(empty_store, tmp_path / "mlruns.db")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_project(
    root: Path, config: dict[str, Any], contract: dict[str, Any], level0: bool = False
) -> Path:
    """Lay out a project as `mlops build` would: config.json and contract.json."""
    config = copy.deepcopy(config)
    if level0:
        config["level"] = 0
        config["stages"] = ["train", "serve"]
        config["training"] = {"tracking": False}
        config.setdefault("serving", {})["model_source"] = "file"
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (root / "contract.json").write_text(json.dumps(contract), encoding="utf-8")
    return root


@pytest.fixture
def project_factory(tmp_path: Path, empty_store: Path) -> Iterator[Callable[..., Path]]:
    def make(config: dict[str, Any], contract: dict[str, Any], level0: bool = False) -> Path:
        root = tmp_path / "project"
        write_project(root, config, contract, level0)
        if not level0:
            shutil.copyfile(empty_store, root / "mlruns.db")
        return root

    yield make


@pytest.fixture
def sub_env() -> Callable[..., dict[str, str]]:
    """Environment for stage subprocesses: no inherited tracking/data overrides, no telemetry."""

    def make(**extra: str) -> dict[str, str]:
        skip = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_TRAIN_DATA", "PYTHONPATH")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env.update(QUIET_ENV)
        env.update(extra)
        return env

    return make

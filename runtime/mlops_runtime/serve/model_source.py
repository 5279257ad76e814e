"""Where the served model comes from: the local model file or a registry alias.

A `LoadedModel` is immutable once built: the app swaps whole objects when a new version appears,
so a request that started on one version finishes on it. MLflow is imported only by
`RegistrySource`, so a project without tracking (level 0) never needs it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlops_runtime.features.pipeline import feature_columns
from mlops_runtime.serve.fast_predict import CompiledPredictor, PipelinePredictor, build_predictor

LOCAL_MODEL_PATH = Path("model") / "model.joblib"


@dataclass(frozen=True)
class ModelRef:
    """Identity of a model version, cheap to look up and compare."""

    name: str
    version: str
    run_id: str | None
    uri: str


@dataclass(frozen=True)
class LoadedModel:
    ref: ModelRef
    predictor: PipelinePredictor | CompiledPredictor
    classes: list[Any] | None
    known_categories: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.ref.version


class ModelSource(Protocol):
    def lookup(self, alias: str) -> ModelRef | None: ...

    def load(self, ref: ModelRef) -> Any: ...


def feature_split(
    config: Mapping[str, Any], contract: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Numeric and categorical model inputs, decided as `features.model_frame` decides them."""
    categorical = set(config["features"].get("categorical", {}).get("columns", []))
    columns = contract.get("columns", {})
    numeric_out, categorical_out = [], []
    for name in feature_columns(config):
        kind = columns.get(name, {}).get("type", "float")
        if name in categorical or kind in ("category", "str"):
            categorical_out.append(name)
        else:
            numeric_out.append(name)
    return numeric_out, categorical_out


def known_categories(pipeline: Any) -> dict[str, frozenset[str]]:
    """Training categories per column, read from the fitted encoders."""
    out: dict[str, frozenset[str]] = {}
    preprocess = getattr(pipeline, "steps", [(None, None)])[0][1]
    for _, transformer, columns in getattr(preprocess, "transformers_", []):
        for _, step in getattr(transformer, "steps", [(None, transformer)]):
            categories = getattr(step, "categories_", None)
            if categories is None or isinstance(categories, str):
                continue
            for column, values in zip(columns, categories, strict=False):
                out[str(column)] = frozenset(v for v in values if isinstance(v, str))
    return out


def prepare(
    ref: ModelRef, pipeline: Any, config: Mapping[str, Any], contract: Mapping[str, Any]
) -> LoadedModel:
    numeric, categorical = feature_split(config, contract)
    predictor = build_predictor(pipeline, numeric, categorical, feature_columns(config))
    classes = predictor.classes
    return LoadedModel(
        ref=ref,
        predictor=predictor,
        classes=None if classes is None else np.asarray(classes).tolist(),
        known_categories=known_categories(pipeline),
    )


class LocalSource:
    """Level 0: `model/model.joblib` as train_plain.py writes it; version = content hash."""

    def __init__(self, config: Mapping[str, Any], path: Path | None = None):
        self.name = str(config.get("name"))
        self.path = path or Path(os.environ.get("MLOPS_MODEL_PATH", str(LOCAL_MODEL_PATH)))
        self._stat: tuple[int, int] | None = None
        self._ref: ModelRef | None = None

    def lookup(self, alias: str) -> ModelRef | None:
        del alias  # a local file has no aliases: it is always the champion
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        if key != self._stat or self._ref is None:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
            self._ref = ModelRef(self.name, f"local-{digest}", None, str(self.path))
            self._stat = key
        return self._ref

    def load(self, ref: ModelRef) -> Any:
        import joblib

        return joblib.load(ref.uri)


class RegistrySource:
    """Level >= 1: `models:/<registered_model>@<alias>` on the project's tracking store."""

    def __init__(self, config: Mapping[str, Any]):
        # MLflow 3 refuses to unpickle (even skops) models without this; telemetry stays off.
        os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlops_runtime.tracking.store import connect

        self.client = connect(config)
        self.name = config.get("tracking", {}).get("registered_model") or str(config["name"])

    def lookup(self, alias: str) -> ModelRef | None:
        from mlops_runtime.tracking.registry import alias_version

        version = alias_version(self.client, self.name, alias)
        if version is None:
            return None
        return ModelRef(
            self.name,
            str(version.version),
            version.run_id,
            f"models:/{self.name}/{version.version}",
        )

    def load(self, ref: ModelRef) -> Any:
        import mlflow.sklearn

        # By version, not alias: the alias may have moved since `lookup`.
        return mlflow.sklearn.load_model(ref.uri)


def make_source(config: Mapping[str, Any]) -> LocalSource | RegistrySource:
    """The level table decides (serving.model_source): the local file where training is
    untracked, the registry where it registers versions."""
    kind = config.get("serving", {}).get("model_source", "registry")
    if kind == "file":
        return LocalSource(config)
    if kind == "registry":
        return RegistrySource(config)
    raise ValueError(f"serving.model_source must be 'file' or 'registry', not {kind!r}")

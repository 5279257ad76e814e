"""Where the served model comes from: the local model file or a registry alias.

A `LoadedModel` is immutable once built: the app swaps whole objects when a new version appears,
so a request that started on one version finishes on it. MLflow is imported only by
`RegistrySource`, so a project without tracking (level 0) never needs it.

Loading a model file can run code, so nothing is deserialised before its bytes match the
sha256 recorded when it was trained, and a model is restored with skops, whose types must lie
in the packages the spec's estimator allows: a registered model with exactly the types
recorded when it was logged, a level-0 file with the types it names. Pickle is read only where
the spec opted in (`model.serialization: pickle`). MLFLOW_ALLOW_PICKLE_DESERIALIZATION is never set: it would allow every MLflow loader in
the process to unpickle whatever it is given.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_runtime.features.columns import feature_columns, feature_split
from mlops_runtime.serve import labels
from mlops_runtime.serve.fast_predict import CompiledPredictor, PipelinePredictor, build_predictor
from mlops_runtime.tracking.store import PICKLE, ModelLoadRefused, foreign_types

if TYPE_CHECKING:
    from mlops_runtime.tracking.store import ModelFiles, Serialization

# Written beside the model by train/plain.py, in `sha256sum` format.
DIGEST_SUFFIX = ".sha256"
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


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
    # Predictions in the target's type (labels.py): 1, not the "1" training read.
    answers = labels.answers(classes, labels.label_kind(config, contract))
    predictor.answer_with(answers)
    shown = answers if answers is not None else classes
    return LoadedModel(
        ref=ref,
        predictor=predictor,
        classes=None if shown is None else np.asarray(shown).tolist(),
        known_categories=known_categories(pipeline),
    )


class LocalSource:
    """Level 0: `model/model.skops` as train/plain.py writes it; version = content hash.

    The file is loaded only if its sha256 matches `model.skops.sha256`, written beside it by
    training: that catches a file truncated, half-written or replaced without its digest. It
    cannot stop someone who can write to the folder, who could rewrite the digest too, so the
    file is restored with skops and only types of the packages the estimator allows: a
    replaced file can make a wrong model, not run code. Where the spec opted in to pickle
    (`model/model.joblib`), the digest is the only check, and loading runs what the file names.
    """

    def __init__(self, config: Mapping[str, Any], path: Path | None = None):
        from mlops_runtime.tracking.local_versions import model_file
        from mlops_runtime.tracking.store import allowed_roots, serialization_of

        self.name = str(config.get("name"))
        self.serialization = serialization_of(config)
        estimator = (config.get("model") or {}).get("estimator") or "sklearn"
        self.allowed_roots = allowed_roots(str(estimator))
        default = str(model_file(config))
        self.path = path or Path(os.environ.get("MLOPS_MODEL_PATH", default))
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

    def missing(self, alias: str) -> str:
        """What `lookup` found nothing of, for people."""
        del alias
        return f"no model file {self.path.resolve()} (nothing trained yet)"

    def load(self, ref: ModelRef) -> Any:
        path = Path(ref.uri)
        # Read once: the bytes checked are the bytes loaded, whatever happens to the file.
        data = path.read_bytes()
        expected = recorded_digest(digest_path(path))
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ModelLoadRefused(
                f"{path}: sha256 mismatch, the file is not the one training wrote "
                f"(expected {expected} from {digest_path(path)}, found {actual}); not loaded"
            )
        if self.serialization == PICKLE:
            import joblib

            return joblib.load(io.BytesIO(data))
        return load_local_skops(data, self.allowed_roots, str(path))


def load_local_skops(data: bytes, roots: Sequence[str], label: str) -> Any:
    """A level-0 skops file: no logged list of types to hold it to, so every type it names
    must lie in `roots` (the same packages a registered model's list is checked against)."""
    import zipfile

    import skops.io

    try:
        named = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ModelLoadRefused(
            f"{label} is not a skops file ({type(exc).__name__}: {exc}); not loaded (a joblib "
            "file needs model.serialization: pickle in the spec)"
        ) from None
    foreign = foreign_types(named, roots)
    if foreign:
        raise ModelLoadRefused(
            f"{label} names types outside {sorted(roots)}: {foreign}; not loaded"
        )
    return skops.io.loads(data, trusted=named)


def digest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + DIGEST_SUFFIX)


def recorded_digest(path: Path) -> str:
    """The hex digest of a `sha256sum`-style line; refuses when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadRefused(
            f"{path} is missing, so the model file beside it cannot be verified; not loaded "
            "(train again to write both)"
        ) from None
    fields = text.split()
    digest = fields[0].lower() if fields else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ModelLoadRefused(f"{path} holds no sha256 digest; not loaded")
    return digest


class RegistrySource:
    """Level >= 1: `models:/<registered_model>@<alias>` on the project's tracking store.

    A version is loaded from its own files, not through `mlflow.sklearn.load_model`: MLflow
    gates every sklearn format, skops included, behind MLFLOW_ALLOW_PICKLE_DESERIALIZATION,
    because it takes skops' trusted types from the model's own MLmodel file. Here that file
    and the model file are first checked against the `mlops.model_sha256` tag the train stage
    set when it registered the version, and the trusted types must lie in the packages the
    spec's estimator allows, so the switch is never needed.
    """

    def __init__(self, config: Mapping[str, Any]):
        from mlops_runtime.tracking.store import allowed_roots, connect, serialization_of

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        self.client = connect(config)
        self.uri = str(self.client.tracking_uri)
        self.name = config.get("tracking", {}).get("registered_model") or str(config["name"])
        self.serialization = serialization_of(config)
        self.allowed_roots = allowed_roots(str(config["model"]["estimator"]))

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

    def missing(self, alias: str) -> str:
        """What `lookup` found nothing of, for people."""
        return (
            f"no version of model {self.name!r} has the alias {alias!r} in the registry "
            f"{self.uri} (nothing trained yet)"
        )

    def load(self, ref: ModelRef) -> Any:
        from mlops_runtime.tracking.store import (
            MODEL_SHA256_TAG,
            SERIALIZATION_TAG,
            fetch_model_files,
        )

        # By version, not alias: the alias may have moved since `lookup`. Tags are read now,
        # not at lookup, so a digest set or corrected since is the one checked.
        version = self.client.get_model_version(ref.name, ref.version)
        tags = dict(version.tags or {})
        label = f"model {ref.name!r} version {ref.version}"
        expected = tags.get(MODEL_SHA256_TAG)
        if not expected:
            raise ModelLoadRefused(
                f"{label} has no {MODEL_SHA256_TAG} tag, so its artifact cannot be verified; "
                "not loaded (register it again with `python -m mlops_runtime train`)"
            )
        root = self.client.get_model_version_download_uri(ref.name, ref.version)
        files = fetch_model_files(self.client, root)
        actual = files.sha256
        if actual != expected:
            raise ModelLoadRefused(
                f"{label}: sha256 mismatch, the artifact at {root} is not the one registered "
                f"(tag {MODEL_SHA256_TAG}={expected}, artifact {actual}); not loaded"
            )
        recorded = tags.get(SERIALIZATION_TAG)
        if recorded is not None and recorded != files.serialization:
            raise ModelLoadRefused(
                f"{label} was registered as {recorded} but its artifact is "
                f"{files.serialization}; not loaded"
            )
        return deserialize(files, self.serialization, self.allowed_roots, label)


def deserialize(
    files: ModelFiles, allowed: Serialization, roots: Sequence[str], label: str = "model"
) -> Any:
    """Restore verified model files: skops with the recorded trusted types, pickle only when
    `allowed` is "pickle" (the spec's opt-in)."""
    if files.serialization == PICKLE:
        if allowed != PICKLE:
            raise ModelLoadRefused(
                f"{label} is serialised with {files.format}, which runs arbitrary code when "
                "loaded; not loaded (set model.serialization: pickle in the spec to allow it)"
            )
        if os.environ.get(PICKLE_SWITCH, "").strip().lower() in ("false", "0"):
            # An operator who switched MLflow's unpickling off meant it for this process too.
            raise ModelLoadRefused(f"{label} is pickled and {PICKLE_SWITCH} is false; not loaded")
        if files.format == "cloudpickle":
            import cloudpickle

            return cloudpickle.loads(files.data)
        return pickle.loads(files.data)
    return load_skops(files, roots, label)


def load_skops(files: ModelFiles, roots: Sequence[str], label: str = "model") -> Any:
    """skops.io with exactly the types listed when the model was logged.

    The list lives in the (hash-checked) MLmodel file; each type must also belong to a package
    the logging side allows (sklearn, numpy, scipy, the estimator's own), so a list naming
    anything else is refused even if it were registered.
    """
    import skops.io

    trusted = files.flavor.get("skops_trusted_types") or []
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise ModelLoadRefused(f"{label}: skops_trusted_types in MLmodel is not a list of names")
    foreign = foreign_types(trusted, roots)
    if foreign:
        raise ModelLoadRefused(
            f"{label} trusts types outside {sorted(roots)}: {foreign}; not loaded"
        )
    return skops.io.loads(files.data, trusted=trusted)


def make_source(config: Mapping[str, Any]) -> LocalSource | RegistrySource:
    """The level table decides (serving.model_source): the local file where training is
    untracked, the registry where it registers versions."""
    kind = config.get("serving", {}).get("model_source", "registry")
    if kind == "file":
        return LocalSource(config)
    if kind == "registry":
        return RegistrySource(config)
    raise ValueError(f"serving.model_source must be 'file' or 'registry', not {kind!r}")

"""MLflow tracking: where runs go, what each run records, how the model is serialised.

MLflow is imported inside the functions that call it: the train stage resolves its store and
parameters here before its tracking worker (which does the MLflow work) is ready.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
ARTIFACT_DIR = "mlruns"
TRACKED_PACKAGES = (
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "pyarrow",
    "pandera",
    "mlflow",
    "skops",
)
# Roots whose classes may be restored from a skops model file; anything else must be declared.
TRUSTED_ROOTS = ("sklearn", "numpy", "scipy")
MAX_PARAM_LENGTH = 500

Serialization = Literal["skops", "pickle"]
SKOPS: Serialization = "skops"
PICKLE: Serialization = "pickle"
# Model-version tags written at registration and checked before a server loads the version.
MODEL_SHA256_TAG = "mlops.model_sha256"
SERIALIZATION_TAG = "mlops.serialization"
MLMODEL_FILE = "MLmodel"
# MLflow's sklearn flavor formats, by the spec setting each belongs to.
FLAVOR_FORMATS: dict[str, Serialization] = {
    "skops": SKOPS,
    "pickle": PICKLE,
    "cloudpickle": PICKLE,
}


class ModelLoadRefused(Exception):
    """A model that must not be loaded: unverifiable, altered since it was trained, or of a
    refused format. Raised before anything is deserialised."""


def resolve_tracking_uri(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> str:
    """MLFLOW_TRACKING_URI (the variable every MLflow tool honours) wins over the spec."""
    env = os.environ if environ is None else environ
    return (
        env.get("MLFLOW_TRACKING_URI")
        or config.get("tracking", {}).get("uri")
        or DEFAULT_TRACKING_URI
    )


def absolute_uri(uri: str, cwd: Path | None = None) -> str:
    """Pin a relative SQLite path to the cwd (the project root).

    MLflow caches one store per URI string, so a relative path would keep pointing at the first
    folder it was opened from if the process later works elsewhere.
    """
    prefix = "sqlite:///"
    if (
        uri.startswith(prefix)
        and not uri[len(prefix) :].startswith("/")
        and uri[len(prefix) :] != ":memory:"
    ):
        return prefix + str(((cwd or Path.cwd()) / uri[len(prefix) :]).resolve())
    return uri


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file", "sqlite")


def connect(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, uri: str | None = None
) -> MlflowClient:
    """A client on the store `uri` (default: as resolve_tracking_uri finds it), also made the
    default of the fluent mlflow.* calls."""
    import mlflow
    from mlflow.tracking import MlflowClient

    # Training data and model details stay on this machine unless the team opts in:
    # MLflow's usage telemetry is off unless MLFLOW_DISABLE_TELEMETRY is set otherwise.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = uri or absolute_uri(resolve_tracking_uri(config, environ))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(
    client: MlflowClient, config: Mapping[str, Any], cwd: Path | None = None
) -> str:
    """Get or create the experiment; with a local store its artifacts live in ./mlruns/.

    Without an explicit location MLflow would put artifacts wherever the process happened to
    start; pinning it to the project folder keeps runs, models and the SQLite file together.
    """
    from mlflow.exceptions import MlflowException

    tracking = config.get("tracking", {})
    name = tracking.get("experiment") or config["name"]
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if is_local(client.tracking_uri):
        location = ((cwd or Path.cwd()) / ARTIFACT_DIR).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD of the enclosing git repository, or None outside one (or without git)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def environment_tags() -> dict[str, str]:
    tags = {"mlops.python": platform.python_version()}
    tags.update({f"mlops.pkg.{name}": version for name, version in package_versions().items()})
    return tags


def loggable_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Every resolved estimator parameter as text (MLflow params are strings with a size cap)."""
    return {
        str(k): _shorten(repr(v) if not isinstance(v, (str, int, float, bool)) else str(v))
        for k, v in params.items()
    }


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def trusted_types(model: Any, extra_roots: Iterable[str] = ()) -> list[str]:
    """The exact types skops may restore for this model, checked against an allow-list.

    skops refuses unknown types on load; rather than trusting everything we list precisely
    the types this pipeline contains, and refuse to save if one falls outside the libraries
    we expect (sklearn, numpy, scipy, plus the estimator's own package).
    """
    import skops.io

    return trusted_types_of(skops.io.dumps(model), extra_roots)


def trusted_types_of(data: bytes, extra_roots: Iterable[str] = ()) -> list[str]:
    """trusted_types of a model already serialised by skops."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=data)
    roots = set(TRUSTED_ROOTS) | set(extra_roots)
    foreign = foreign_types(untrusted, roots)
    if foreign:
        raise ValueError(f"model contains types outside {sorted(roots)}: {foreign}")
    return sorted(untrusted)


def foreign_types(names: Iterable[str], roots: Iterable[str]) -> list[str]:
    """The type names not in one of the packages `roots`, sorted."""
    allowed = set(roots)
    return sorted(name for name in names if name.split(".")[0] not in allowed)


def model_requirements(serialization: Serialization = SKOPS) -> list[str]:
    """Pinned requirements recorded with the model, given explicitly so MLflow does not spawn a
    process to infer them."""
    names = ["mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"]
    if serialization == PICKLE:
        # A cloudpickle file loads only with the library that wrote it.
        names.append("cloudpickle")
    versions = package_versions(names)
    return [f"{name}=={version}" for name, version in versions.items()]


def serialization_of(config: Mapping[str, Any]) -> Serialization:
    """The spec's `model.serialization`; skops when absent (configs built before the setting)."""
    value = (config.get("model") or {}).get("serialization") or SKOPS
    if value == SKOPS:
        return SKOPS
    if value == PICKLE:
        return PICKLE
    raise ValueError(f"model.serialization must be 'skops' or 'pickle', not {value!r}")


def allowed_roots(estimator_path: str) -> tuple[str, ...]:
    """Packages whose types a model of this estimator may contain."""
    return (*TRUSTED_ROOTS, estimator_path.split(".")[0])


def log_model(
    model: Any, example: Any, estimator_path: str, serialization: Serialization = SKOPS
) -> Any:
    """Log the fitted pipeline with signature and input example.

    skops unless the spec opted in to pickle: MLflow's cloudpickle format, which can hold what
    skops cannot (functions and classes not defined at a module's top level) and runs
    arbitrary code when loaded.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example))
    if serialization == PICKLE:
        fmt: dict[str, Any] = {
            "serialization_format": mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE
        }
    else:
        fmt = {
            "serialization_format": mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            "skops_trusted_types": trusted_types(model, [estimator_path.split(".")[0]]),
        }
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=model_requirements(serialization),
        **fmt,
    )


@dataclass(frozen=True)
class ModelFiles:
    """The files a loader of one logged sklearn model reads, each read once into memory.

    Hashing and loading the same bytes means nothing can swap a file between the check and
    the load.
    """

    contents: dict[str, bytes]
    flavor: dict[str, Any]

    @property
    def data_name(self) -> str:
        return str(self.flavor["pickled_model"])

    @property
    def data(self) -> bytes:
        return self.contents[self.data_name]

    @property
    def format(self) -> str:
        return str(self.flavor.get("serialization_format", "pickle"))

    @property
    def serialization(self) -> Serialization:
        try:
            return FLAVOR_FORMATS[self.format]
        except KeyError:
            raise ModelLoadRefused(
                f"unknown sklearn serialization format {self.format!r} in {MLMODEL_FILE}"
            ) from None

    @property
    def sha256(self) -> str:
        return files_sha256(self.contents)


def files_sha256(contents: Mapping[str, bytes]) -> str:
    """One digest over several files: each file's name and sha256, in name order.

    Names are part of the digest so that the same bytes under other names (MLmodel pointing
    at another data file) do not match.
    """
    manifest = hashlib.sha256()
    for name in sorted(contents):
        manifest.update(f"{name}\0{hashlib.sha256(contents[name]).hexdigest()}\n".encode())
    return manifest.hexdigest()


def fetch_model_files(client: MlflowClient, artifact_root: str) -> ModelFiles:
    """Download MLmodel and the model data file it names from `artifact_root` (a logged
    model's artifact location) into a private temporary folder, and read them.

    These two are exactly what loading reads: MLmodel holds the format and skops' trusted
    types, the data file the model. Other files in the folder (environment files, examples,
    the registry's own `registered_model_meta`) do not affect what is loaded, and some are
    written after registration, so they are not hashed.
    """
    import mlflow.artifacts
    import yaml

    root = artifact_root.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:

        def read(name: str) -> bytes:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{root}/{name}",
                dst_path=str(Path(tmp) / "files"),
                tracking_uri=client.tracking_uri,
            )
            return Path(local).read_bytes()

        mlmodel = read(MLMODEL_FILE)
        # safe_load builds plain data only, so reading the not yet verified file is harmless.
        parsed = yaml.safe_load(mlmodel)
        flavors = parsed.get("flavors") if isinstance(parsed, dict) else None
        flavor = flavors.get("sklearn") if isinstance(flavors, dict) else None
        if not isinstance(flavor, dict) or not isinstance(flavor.get("pickled_model"), str):
            raise ModelLoadRefused(
                f"{root}/{MLMODEL_FILE} has no sklearn flavor naming the model file"
            )
        name = flavor["pickled_model"]
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or name in ("", MLMODEL_FILE):
            raise ModelLoadRefused(f"{MLMODEL_FILE} names an unusable model file: {name!r}")
        return ModelFiles({MLMODEL_FILE: mlmodel, name: read(name)}, dict(flavor))

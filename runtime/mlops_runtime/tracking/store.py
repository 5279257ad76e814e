"""MLflow tracking: where runs go, what each run records, how the model is serialised.

MLflow is imported inside the functions that call it: the train stage resolves its store and
parameters here before its tracking worker (which does the MLflow work) is ready.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
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

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    roots = set(TRUSTED_ROOTS) | set(extra_roots)
    foreign = sorted(t for t in untrusted if t.split(".")[0] not in roots)
    if foreign:
        raise ValueError(f"model contains types outside {sorted(roots)}: {foreign}")
    return sorted(untrusted)


def model_requirements() -> list[str]:
    """Pinned requirements recorded with the model, given explicitly so MLflow does not spawn a
    process to infer them."""
    versions = package_versions(("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops"))
    return [f"{name}=={version}" for name, version in versions.items()]


def log_model(model: Any, example: Any, estimator_path: str) -> Any:
    """Log the fitted pipeline with signature and input example, serialised with skops."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example))
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted_types(model, [estimator_path.split(".")[0]]),
        pip_requirements=model_requirements(),
    )

"""Model registry: versions, their lineage tags, and the champion/challenger aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
METRIC_TAG_PREFIX = "mlops.metric."


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind `alias`, or None when the model or alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_version(client: MlflowClient, name: str, ref: str) -> ModelVersion:
    """`ref` is a version number or an alias; raises LookupError when nothing matches."""
    if ref.isdigit():
        try:
            return client.get_model_version(name, ref)
        except MlflowException as exc:
            raise LookupError(f"model {name!r} has no version {ref}") from exc
    found = alias_version(client, name, ref)
    if found is None:
        raise LookupError(f"model {name!r} has no version with alias {ref!r}")
    return found


def version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """Metrics of a version: its lineage tags first, its run as a fallback."""
    tags = version.tags or {}
    metrics = {
        k[len(METRIC_TAG_PREFIX) :]: float(v)
        for k, v in tags.items()
        if k.startswith(METRIC_TAG_PREFIX)
    }
    if not metrics and version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except MlflowException:
            metrics = {}
    return metrics


def choose_alias(has_champion: bool, promote: str, beats_champion: bool) -> str:
    """First passing model becomes champion; later ones replace it only under `auto` and only
    if the vs-champion gate passes; otherwise they wait as challenger."""
    if not has_champion:
        return CHAMPION
    if promote == "auto" and beats_champion:
        return CHAMPION
    return CHALLENGER


def metric_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    return {f"{METRIC_TAG_PREFIX}{k}": repr(float(v)) for k, v in metrics.items()}


def register(model_uri: str, name: str, tags: Mapping[str, Any]) -> ModelVersion:
    # register_model also links the MLflow 3 logged model to the version.
    return mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})


def set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, version)
    # A version promoted to champion is no longer the one waiting as challenger.
    if alias == CHAMPION:
        challenger = alias_version(client, name, CHALLENGER)
        if challenger is not None and str(challenger.version) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER)

"""The model a score run uses, found and loaded by the server's own code: the registry alias
(or a version by number), or the level-0 model file, each hash-checked before loading."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_runtime.serve.model_source import (
    LoadedModel,
    LocalSource,
    ModelRef,
    make_source,
    prepare,
)
from mlops_runtime.tracking.store import ModelLoadRefused

ALIASES = ("champion", "challenger")


class ModelMissing(Exception):
    """No model to score with, said for people: nothing was written."""


@dataclass(frozen=True)
class Found:
    """The version a choice names, looked up but not loaded yet."""

    source: Any
    ref: ModelRef
    arm: str  # the alias, or `version-N`, that its rows are logged under


def resolve(
    config: Mapping[str, Any], contract: Mapping[str, Any], choice: str
) -> tuple[LoadedModel, str]:
    """The loaded model and the arm it is logged under (the alias, or `version-N`)."""
    found = find(config, choice)
    return load(found, config, contract), found.arm


def find(config: Mapping[str, Any], choice: str) -> Found:
    """The version `choice` names, from the registry (or the level-0 model file): quick, so a
    wrong choice is said before anything slow starts."""
    if choice not in ALIASES and not choice.isdigit():
        raise ModelMissing(
            f"--model must be champion, challenger or a version number, not {choice!r}"
        )
    source = make_source(config)
    if isinstance(source, LocalSource) and choice != "champion":
        raise ModelMissing(
            f"--model {choice}: this project keeps one model file ({source.path}), its "
            "champion; versions and a challenger need a registry (level 1 and above)"
        )
    if choice in ALIASES:
        ref = source.lookup(choice)
        if ref is None:
            raise ModelMissing(source.missing(choice))
        return Found(source, ref, choice)
    return Found(source, _version(source, choice), f"version-{choice}")


def load(found: Found, config: Mapping[str, Any], contract: Mapping[str, Any]) -> LoadedModel:
    """The version loaded (after its hash check) and prepared as the server prepares it."""
    try:
        pipeline = found.source.load(found.ref)
    except ModelLoadRefused as exc:
        raise ModelMissing(str(exc)) from None
    return prepare(found.ref, pipeline, config, contract)


def _version(source: Any, number: str) -> ModelRef:
    from mlflow.exceptions import MlflowException

    try:
        version = source.client.get_model_version(source.name, number)
    except MlflowException:
        raise ModelMissing(
            f"model {source.name!r} has no version {number} in the registry {source.uri}"
        ) from None
    return ModelRef(
        source.name, str(version.version), version.run_id, f"models:/{source.name}/{number}"
    )

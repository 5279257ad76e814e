"""Compute a plan: the artifacts the spec's level emits and every value templates print."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlops_compiler import __version__
from mlops_compiler.load import LoadedSpec
from mlops_compiler.plan.artifacts import Artifact, Plan
from mlops_compiler.plan.levels import COMPONENTS, SERVE
from mlops_compiler.spec.model import Features, Spec
from mlops_compiler.spec.rules import CATEGORICAL_TYPES, task_of
from mlops_compiler.spec.scalars import parse_duration, parse_threshold

DATA_PATH_ENV = "MLOPS_TRAIN_DATA"


def relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def make_plan(spec: Spec, loaded: LoadedSpec, out_root: Path, level: int | None = None) -> Plan:
    level = spec.level if level is None else level
    out_dir = out_root / spec.name
    artifacts: list[Artifact] = []
    commands: dict[str, tuple[str, ...]] = {}
    requirements: set[str] = set()
    components = [c for c in COMPONENTS if c.emitted_at(level)]
    for component in components:
        for emit in component.files:
            artifacts.append(
                Artifact(emit.path, emit.template, component.name, component.min_level)
            )
        commands.update(dict(component.commands))
        requirements.update(component.requirements)
    spec_sha = hashlib.sha256(loaded.raw).hexdigest()
    config = _config(spec, loaded, out_dir, level, spec_sha)
    context = {
        "name": spec.name,
        "description": spec.description,
        "level": level,
        "tags": dict(sorted(spec.tags.items())),
        "config": config,
        "contract": _contract(spec),
        "requirements": sorted(requirements, key=str.lower),
        "commands": dict(sorted(commands.items())),
        "components": [(c.name, c.summary) for c in components],
        "data_path_env": DATA_PATH_ENV,
        "port": config["serving"]["port"],
        "serve_command": list(SERVE),
    }
    return Plan(
        name=spec.name,
        level=level,
        spec_path=loaded.path,
        spec_ref=relative(loaded.path, out_dir),
        spec_sha256=spec_sha,
        out_dir=out_dir,
        artifacts=tuple(sorted(artifacts, key=lambda a: a.path)),
        commands=MappingProxyType(dict(sorted(commands.items()))),
        context=MappingProxyType(context),
    )


def default_features(spec: Spec) -> Features:
    """Every non-target contract column, grouped by its type."""
    numeric: list[str] = []
    categorical: list[str] = []
    for name, col in spec.data.contract.columns.items():
        if name == spec.data.target:
            continue
        (categorical if col.type in CATEGORICAL_TYPES - {"bool"} else numeric).append(name)
    return Features.model_validate(
        {"numeric": {"columns": numeric}, "categorical": {"columns": categorical}}
    )


def _config(spec: Spec, loaded: LoadedSpec, out_dir: Path, level: int, sha: str) -> dict[str, Any]:
    task = task_of(spec)
    features = spec.features or default_features(spec)
    stratify = spec.data.split.stratify
    gate = spec.model.gate
    return {
        "name": spec.name,
        "level": level,
        "spec_sha256": sha,
        "compiler_version": __version__,
        "data": {
            "path": relative(loaded.path.parent / spec.data.train, out_dir),
            "path_env": DATA_PATH_ENV,
            "target": spec.data.target,
            "split": {
                "test_size": spec.data.split.test_size,
                "seed": spec.data.split.seed,
                "stratify": task == "classification" if stratify is None else stratify,
            },
        },
        "features": features.model_dump(mode="json"),
        "model": {
            "task": task,
            "estimator": spec.model.estimator,
            "params": dict(spec.model.params),
        },
        "gate": {
            "absolute": [_threshold(m, t) for m, t in sorted(gate.metrics.items())],
            "vs_champion": [_threshold(m, t) for m, t in sorted(gate.vs_champion.items())],
            "promote": gate.promote,
        },
        "tracking": {
            "uri": spec.tracking.uri,
            "experiment": spec.tracking.experiment or spec.name,
            "registered_model": spec.name,
        },
        "profile": spec.profile.model_dump(mode="json"),
        "serving": _serving(spec, level),
    }


def _serving(spec: Spec, level: int) -> dict[str, Any]:
    serving = spec.serving
    ab = serving.ab_test
    return {
        "host": "127.0.0.1",
        "port": 8080,
        "model_alias": "champion",
        "batching": serving.batching.model_dump(mode="json"),
        # A/B needs two registered versions, which only level 2 and above deploy.
        "ab_test": ab.model_dump(mode="json") if ab is not None and level >= 2 else None,
        "reload_interval_s": parse_duration(serving.reload_interval),
        "max_body_bytes": serving.max_body_bytes,
        "unknown_categories": serving.unknown_categories,
        "prediction_log": serving.prediction_log.model_dump(mode="json"),
        "workers": serving.workers,
    }


def _threshold(metric: str, text: str) -> dict[str, Any]:
    t = parse_threshold(text)
    return {"metric": metric, "op": t.op, "value": t.value}


def _as_text(value: str | int | float | bool) -> str:
    """Category values as the text a CSV cell holds: `values: [0, 1]` means "0" and "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def _contract(spec: Spec) -> dict[str, Any]:
    contract = spec.data.contract
    columns = {}
    for name, col in contract.columns.items():
        columns[name] = {
            "type": col.type,
            "nullable": col.nullable,
            "max_null_fraction": (
                col.max_null_fraction
                if col.max_null_fraction is not None
                else (1.0 if col.nullable else 0.0)
            ),
            "min": col.min,
            "max": col.max,
            "values": [_as_text(v) for v in col.values] if col.values is not None else None,
            "unique": col.unique,
        }
    return {
        "min_rows": contract.min_rows,
        "extra_columns": contract.extra_columns,
        "columns": columns,
    }

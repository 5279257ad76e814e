"""Compute a plan: the artifacts the spec's level emits and every value templates print."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from mlops_compiler import __version__
from mlops_compiler.errors import Diagnostic
from mlops_compiler.load.yaml_positions import LoadedSpec
from mlops_compiler.plan.alerting import alerting_context
from mlops_compiler.plan.artifacts import Artifact, Plan
from mlops_compiler.plan.ci import ci_context
from mlops_compiler.plan.deploy import deploy_context, image_config
from mlops_compiler.plan.example_requests import example_bodies, example_files, example_record
from mlops_compiler.plan.feature_store import feast_context, feature_store_config
from mlops_compiler.plan.levels import (
    COMPONENTS,
    DECLARED,
    PENDING_SECTIONS,
    REPOSITORY,
    RUNTIME,
    STAGE_ORDER,
    Component,
    Condition,
    Emit,
    stage_command,
)
from mlops_compiler.plan.rollback import rollback_config
from mlops_compiler.spec.model import Features, Spec
from mlops_compiler.spec.rules import CATEGORICAL_TYPES, declares_columns, task_of
from mlops_compiler.spec.scalars import parse_duration, parse_threshold

DATA_PATH_ENV = "MLOPS_TRAIN_DATA"


def relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def make_plan(spec: Spec, loaded: LoadedSpec, out_root: Path, level: int | None = None) -> Plan:
    level = spec.level if level is None else level
    out_dir = out_root / spec.name
    components = [c for c in COMPONENTS if c.emitted_at(level) and _matches(spec, c.when)]
    repo_root = repository_root(out_root)
    artifacts = [
        Artifact(
            _artifact_path(emit, spec.name, out_dir, repo_root), emit.template, c.name, c.min_level
        )
        for c in components
        for emit in c.files
        if _matches(spec, emit.when)
    ]
    consumed = {section for c in components for section in c.consumes}
    stages = sorted({s for c in components for s in c.stages}, key=STAGE_ORDER.index)
    if "features.store" in consumed:
        # Scoring reads every feature from its input; the server completes these rows from the
        # online store, so a feature-store project scores through it (`predict --file`).
        stages = [s for s in stages if s != "score"]
    commands = {stage: stage_command(stage) for stage in stages}
    spec_sha = hashlib.sha256(loaded.raw).hexdigest()
    config = _config(spec, loaded, out_dir, level, spec_sha, consumed)
    if "features.store" in consumed:
        config["feature_store"] = feature_store_config(spec, loaded.path.parent, out_dir)
    config["stages"] = stages
    config["serving"]["example_requests"] = example_files(spec.name)
    examples = example_bodies(spec, example_record(spec, config.get("feature_store")))
    if "image" in stages:
        # The image stage tags `<repository>:<model version>` (CI passes the version it
        # registered), so the image a deployment runs names the model it serves.
        config["image"] = image_config(spec)
    for component in components:
        for dotted, value in component.settings:
            _set(config, dotted, value)
    context = {
        "name": spec.name,
        "description": spec.description,
        "level": level,
        "tags": dict(sorted(spec.tags.items())),
        "config": config,
        "contract": _contract(spec),
        "runtime": _runtime_requirement(components),
        "requirements": sorted({r for c in components for r in c.requirements}, key=str.lower),
        "commands": commands,
        "components": [(c.name, c.summary) for c in components],
        "data_path_env": DATA_PATH_ENV,
        "port": config["serving"]["port"],
        "examples": examples,
        "alerting": (
            alerting_context(spec.name, _alerted(config)) if "alerts" in consumed else None
        ),
        "deploy": (
            deploy_context(spec, config, commands, "batch" in consumed)
            if "deploy" in consumed
            else None
        ),
        "feast": (
            feast_context(spec, config["feature_store"]) if "feature_store" in config else None
        ),
        "ci": (
            ci_context(spec, loaded, out_dir, repo_root, config, commands)
            if "ci" in consumed
            else None
        ),
    }
    return Plan(
        name=spec.name,
        level=level,
        spec_path=loaded.path,
        spec_ref=relative(loaded.path, out_dir),
        spec_sha256=spec_sha,
        out_dir=out_dir,
        artifacts=tuple(sorted(artifacts, key=lambda a: a.path)),
        commands=MappingProxyType(commands),
        context=MappingProxyType(context),
        warnings=tuple(_unemitted(spec, loaded, level, consumed)),
        repository_root=repo_root,
    )


def _alerted(config: dict[str, Any]) -> dict[str, Any]:
    """What the alerting rules watch: the monitor's checks and the feature views' freshness."""
    views = [v["name"] for v in (config.get("feature_store") or {}).get("views", ())]
    return {**config["monitor"], "feature_views": views} if views else config["monitor"]


def repository_root(out_root: Path) -> Path:
    """Where repository files go: the nearest folder holding `.git` above the output root,
    else the folder the output root is in (the folder `mlops build` runs from)."""
    start = out_root.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start.parent


def _artifact_path(emit: Emit, name: str, out_dir: Path, repo_root: Path) -> str:
    """Relative to the project folder; a repository file climbs out of it with `..`."""
    if emit.scope != REPOSITORY:
        return emit.path
    target = repo_root / emit.path.format(name=name)
    return Path(os.path.relpath(target, out_dir.resolve())).as_posix()


def _runtime_requirement(components: list[Component]) -> str:
    extras = sorted({e for c in components for e in c.extras})
    return (
        f"{RUNTIME}[{','.join(extras)}]=={__version__}" if extras else f"{RUNTIME}=={__version__}"
    )


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, key = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[key] = value


def _declared(spec: BaseModel, dotted: str) -> bool:
    """Whether the user wrote this section (defaults filled in by the schema do not count)."""
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, BaseModel) or part not in node.model_fields_set:
            return False
        node = getattr(node, part)
    return node is not None and node != []


def _value(spec: BaseModel, dotted: str) -> Any:
    node: Any = spec
    for part in dotted.split("."):
        node = getattr(node, part, None)
    return node


def _matches(spec: Spec, conditions: tuple[Condition, ...]) -> bool:
    return all(
        _declared(spec, dotted) if expected == DECLARED else _value(spec, dotted) == expected
        for dotted, expected in conditions
    )


def _unemitted(spec: Spec, loaded: LoadedSpec, level: int, consumed: set[str]) -> list[Diagnostic]:
    """A warning for each declared section the chosen level does not turn into output."""
    out = []
    warned: set[str] = set()
    for component in COMPONENTS:
        for section in component.consumes:
            if section in warned:
                continue  # several components consume it (kubernetes or compose): say it once
            # In its level range a component left out by its own conditions (kserve: false)
            # was the spec's choice, not the level's.
            if (
                section not in consumed
                and not component.emitted_at(level)
                and _declared(spec, section)
            ):
                warned.add(section)
                out.append(
                    (
                        section,
                        f"declared, but level {level} does not emit it "
                        f"({component.name}: levels {component.min_level}-{component.max_level})",
                    )
                )
    for section in PENDING_SECTIONS:
        if _declared(spec, section):
            out.append(
                (section, f"declared, but no level of mlops-compiler {__version__} emits it yet")
            )
    return sorted(
        loaded.diagnostic(tuple(s.split(".")), f"warning: {m}", key=True, with_snippet=False)
        for s, m in out
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


def _config(
    spec: Spec, loaded: LoadedSpec, out_dir: Path, level: int, sha: str, consumed: set[str]
) -> dict[str, Any]:
    task = task_of(spec)
    features = spec.features if declares_columns(spec) else default_features(spec)
    assert features is not None
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
        "features": features.model_dump(mode="json", exclude={"store"}),
        "model": {
            "task": task,
            "estimator": spec.model.estimator,
            "params": dict(spec.model.params),
            "serialization": spec.model.serialization,
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
        "serving": _serving(spec, consumed),
        "monitor": _monitor(spec, loaded, out_dir, consumed),
        "retrain": _retrain(spec, loaded, out_dir),
        "rollback": rollback_config(spec, automatic="rollback.when" in consumed),
        # Receivers by the name of the variable holding their URL, never the URL itself.
        "alerts": (
            [a.model_dump(mode="json") for a in spec.alerts] if "alerts" in consumed else []
        ),
        "alerting": {"cooldown_s": parse_duration(spec.monitors.alert_cooldown)},
    }


def _retrain(spec: Spec, loaded: LoadedSpec, out_dir: Path) -> dict[str, Any]:
    """When the monitor retrains; the level's settings add `enabled`."""
    r = spec.retrain
    return {
        "enabled": False,
        "on": sorted(r.on),
        "cooldown_s": parse_duration(r.cooldown),
        "windows": r.windows.model_dump(mode="json"),
        "data": None if r.data is None else relative(loaded.path.parent / r.data, out_dir),
        "audit_log": "reports/monitor/retrain-audit.jsonl",
    }


def _monitor(spec: Spec, loaded: LoadedSpec, out_dir: Path, consumed: set[str]) -> dict[str, Any]:
    """What the monitor stage checks; the level's settings add `reference`."""
    m = spec.monitors
    labels = m.labels

    def emitted(section: str, value: BaseModel | None) -> dict[str, Any] | None:
        if value is None or f"monitors.{section}" not in consumed:
            return None
        return value.model_dump(mode="json", by_alias=True)

    drift = emitted("drift", m.drift)
    if drift is not None:
        drift["columns"] = dict(sorted(drift["columns"].items()))
    return {
        "schedule": m.schedule,
        "window": {"duration_s": parse_duration(m.window), "records": m.window_records},
        "min_rows": m.min_rows,
        "drift": drift,
        "labels": (
            None
            if labels is None
            else {
                "path": relative(loaded.path.parent / labels.file, out_dir),
                "join_key": labels.join_key,
            }
        ),
        "performance": emitted("performance", m.performance),
        "latency": emitted("latency", m.latency),
        "error_rate": emitted("error_rate", m.error_rate),
        # Classes as text, the way predictions are compared (`class: 1` counts "1").
        "kpis": [
            {**k.model_dump(mode="json", by_alias=True), "class": _as_text(k.class_)}
            if k.class_ is not None
            else k.model_dump(mode="json", by_alias=True)
            for k in m.kpis
        ],
        "reports_dir": "reports/monitor",
        "textfile": "reports/monitor/mlops_monitor.prom",
    }


def _serving(spec: Spec, consumed: set[str]) -> dict[str, Any]:
    serving = spec.serving
    ab = serving.ab_test
    return {
        "host": "127.0.0.1",
        "port": 8080,
        "model_alias": "champion",
        "batching": serving.batching.model_dump(mode="json"),
        "ab_test": (
            ab.model_dump(mode="json") if ab is not None and "serving.ab_test" in consumed else None
        ),
        "reload_interval_s": parse_duration(serving.reload_interval),
        "max_body_bytes": serving.max_body_bytes,
        # One setting for the server's limits, so config.json says them on one line.
        "limits": {
            "header_s": parse_duration(serving.timeouts.header),
            "body_s": parse_duration(serving.timeouts.body),
            "model_s": parse_duration(serving.timeouts.model),
            "drain_s": parse_duration(serving.timeouts.drain),
            "unready_after_failures": serving.unready_after_failures,
        },
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
    """The contract as the spec states it: fields left at their defaults are left out (the
    runtime's contract rules fill them in), so contract.json reads a column to a line."""
    contract = spec.data.contract
    columns: dict[str, dict[str, Any]] = {}
    for name, col in contract.columns.items():
        rule: dict[str, Any] = {"type": col.type}
        if col.nullable:
            rule["nullable"] = True
        if col.max_null_fraction is not None:
            rule["max_null_fraction"] = col.max_null_fraction
        for bound in ("min", "max"):
            value = getattr(col, bound)
            if value is not None:
                # An int column's bounds read as ints: `min: 0`, not `0.0`.
                integral = col.type == "int" and float(value).is_integer()
                rule[bound] = int(value) if integral else value
        if col.values is not None:
            rule["values"] = [_as_text(v) for v in col.values]
        if col.unique:
            rule["unique"] = True
        columns[name] = rule
    return {
        "min_rows": contract.min_rows,
        "extra_columns": contract.extra_columns,
        "columns": columns,
    }

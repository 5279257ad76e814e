"""Training stage (level >= 1): python -m mlops_project.train

load -> data-contract gate -> split -> fit -> metrics -> model gate -> log run -> register.

Exit codes (also in docs/runtime-exit-codes.md):
    0  trained and registered (as champion or challenger)
    1  unexpected error (a traceback is printed)
    2  configuration error (e.g. the estimator cannot be imported)
    3  data contract failed: reports/contract_report.json says why; nothing was written to
       the tracking server or the registry, aliases are untouched
    4  model gate failed: the run is logged and tagged mlops.gate=failed; no version registered

Tracking goes to $MLFLOW_TRACKING_URI if set, else CONFIG["tracking"]["uri"]; the data file is
$<CONFIG["data"]["path_env"]> if set, else CONFIG["data"]["path"].
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_project.data import (
    dropna_target,
    file_sha256,
    load_table,
    resolve_data_path,
    split_frame,
)
from mlops_project.features import build_pipeline, model_frame, target_array
from mlops_project.metrics import GateResult, describe, evaluate_absolute, evaluate_vs_champion
from mlops_project.report import ContractViolation

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_CONTRACT = 3
EXIT_GATE = 4


@dataclass
class Fitted:
    pipeline: Any
    train: pd.DataFrame
    test: pd.DataFrame
    x_test: pd.DataFrame
    y_test: np.ndarray
    predictions: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    metrics: dict[str, float]


@dataclass
class TrainResult:
    exit_code: int
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    version: str | None = None
    alias: str | None = None
    gate: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None
    message: str = ""


def load_validated(
    config: Mapping[str, Any], contract: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, Path, dict[str, Any]]:
    """Read and gate the data; raises ContractViolation (report already written)."""
    from mlops_project.contract_gate import validate_frame

    path = resolve_data_path(config, environ)
    raw = load_table(path, contract)
    typed, report = validate_frame(raw, contract, source=str(path))
    return typed, path, report


def fit_and_evaluate(
    frame: pd.DataFrame, config: Mapping[str, Any], pipeline: Any | None = None
) -> Fitted:
    from mlops_project.metrics import classification_metrics, regression_metrics

    frame, _ = dropna_target(frame, config["data"]["target"])
    train, test = split_frame(frame, config)
    pipeline = build_pipeline(config) if pipeline is None else pipeline
    pipeline.fit(model_frame(train, config), target_array(train, config))
    x_test = model_frame(test, config)
    y_test = target_array(test, config)
    predictions = np.asarray(pipeline.predict(x_test))
    if config["model"]["task"] == "regression":
        return Fitted(
            pipeline,
            train,
            test,
            x_test,
            y_test,
            predictions,
            None,
            None,
            regression_metrics(y_test, predictions),
        )
    classes = list(pipeline.classes_)
    proba = pipeline.predict_proba(x_test) if hasattr(pipeline, "predict_proba") else None
    metrics = classification_metrics(y_test, predictions, proba, classes)
    return Fitted(pipeline, train, test, x_test, y_test, predictions, proba, classes, metrics)


def lineage_tags(
    config: Mapping[str, Any], data_path: Path, data_sha: str, rows: int
) -> dict[str, str]:
    from mlops_project.tracking import git_commit

    split = config["data"].get("split", {})
    tags = {
        "mlops.name": str(config.get("name")),
        "mlops.level": str(config.get("level")),
        "mlops.data_path": str(data_path),
        "mlops.data_sha256": data_sha,
        "mlops.data_rows": str(rows),
        "mlops.spec_sha256": str(config.get("spec_sha256", "")),
        "mlops.compiler_version": str(config.get("compiler_version", "")),
        "mlops.estimator": config["model"]["estimator"],
        "mlops.seed": str(split.get("seed", 0)),
    }
    commit = git_commit()
    if commit:
        tags["mlops.git_commit"] = commit
    return tags


def run_training(
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> TrainResult:
    """The whole stage; returns a result with the exit code instead of exiting."""
    try:
        pipeline = build_pipeline(config)
    except (ImportError, ValueError, TypeError, KeyError) as exc:
        return TrainResult(EXIT_CONFIG, message=f"configuration error: {type(exc).__name__}: {exc}")
    try:
        frame, data_path, contract_report = load_validated(config, contract, environ)
    except ContractViolation as violation:
        # Nothing below runs: no MLflow call has been made, so the registry is untouched.
        return TrainResult(EXIT_CONTRACT, report_path=violation.report_path, message=str(violation))
    fitted = fit_and_evaluate(frame, config, pipeline)
    gate = evaluate_absolute(fitted.metrics, config.get("gate", {}).get("absolute", []))
    data_sha = file_sha256(data_path)
    tags = lineage_tags(config, data_path, data_sha, len(frame))
    return _track_and_register(config, contract, fitted, gate, tags, contract_report, environ)


def _track_and_register(
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    fitted: Fitted,
    gate: GateResult,
    tags: dict[str, str],
    contract_report: dict[str, Any],
    environ: Mapping[str, str] | None,
) -> TrainResult:
    import mlflow

    from mlops_project.profile import build_profile, write_profile
    from mlops_project.registry import (
        CHAMPION,
        alias_version,
        choose_alias,
        metric_tags,
        register,
        set_alias,
        version_metrics,
    )
    from mlops_project.tracking import (
        connect,
        ensure_experiment,
        environment_tags,
        log_model,
        loggable_params,
    )

    client = connect(config, environ)
    experiment_id = ensure_experiment(client, config)
    name = config["tracking"].get("registered_model") or config["name"]
    profile = build_profile(
        fitted.train,
        config,
        contract,
        predictions=fitted.predictions,
        proba=fitted.proba,
        classes=fitted.classes,
    )
    profile_path = write_profile(profile)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        run_id = run.info.run_id
        mlflow.set_tags({**tags, **environment_tags()})
        mlflow.log_params(loggable_params(fitted.pipeline[-1].get_params()))
        split = config["data"].get("split", {})
        mlflow.log_params(
            {
                "mlops.test_size": str(split.get("test_size", 0.2)),
                "mlops.stratify": str(split.get("stratify", False)),
                "mlops.train_rows": str(len(fitted.train)),
                "mlops.test_rows": str(len(fitted.test)),
            }
        )
        mlflow.log_metrics(fitted.metrics)
        mlflow.log_dict(contract_report, "reports/contract_report.json")
        mlflow.log_artifact(str(profile_path), artifact_path="reports")
        if not gate.passed:
            mlflow.log_dict({"absolute": gate.checks}, "reports/gate.json")
            mlflow.set_tag("mlops.gate", "failed")
            return TrainResult(
                EXIT_GATE,
                fitted.metrics,
                run_id,
                gate=gate.checks,
                message=f"model gate failed: {describe(gate)}",
            )
        mlflow.set_tag("mlops.gate", "passed")
        info = log_model(fitted.pipeline, fitted.x_test.head(5), config["model"]["estimator"])
        champion = alias_version(client, name, CHAMPION)
        vs_checks: list[dict[str, Any]] = []
        beats = False
        if champion is not None:
            vs = evaluate_vs_champion(
                fitted.metrics,
                version_metrics(client, champion),
                config.get("gate", {}).get("vs_champion", []),
            )
            vs_checks, beats = vs.checks, vs.passed
        mlflow.log_dict({"absolute": gate.checks, "vs_champion": vs_checks}, "reports/gate.json")
        alias = choose_alias(
            champion is not None, config.get("gate", {}).get("promote", "manual"), beats
        )
        version_tags = {**tags, "mlops.run_id": run_id, **metric_tags(fitted.metrics)}
        version = register(info.model_uri, name, version_tags)
        set_alias(client, name, alias, str(version.version))
        mlflow.set_tags({"mlops.registered_version": str(version.version), "mlops.alias": alias})
    return TrainResult(
        EXIT_OK, fitted.metrics, run_id, str(version.version), alias, gate.checks + vs_checks
    )


def summary(result: TrainResult, config: Mapping[str, Any]) -> str:
    metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()))
    name = config.get("tracking", {}).get("registered_model") or config.get("name")
    if result.exit_code == EXIT_OK:
        head = f"{name}: registered version {result.version} as {result.alias}"
    elif result.exit_code == EXIT_CONTRACT:
        return f"{name}: {result.message}\nreport: {result.report_path}"
    else:
        head = f"{name}: {result.message}"
    lines = [head]
    if metrics:
        lines.append(f"  metrics: {metrics}")
    if result.run_id:
        lines.append(f"  run: {result.run_id}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    del argv  # the stage takes no arguments; everything comes from CONFIG and the environment
    from mlops_project.config import CONFIG
    from mlops_project.contract import CONTRACT

    result = run_training(CONFIG, CONTRACT)
    stream = sys.stdout if result.exit_code == EXIT_OK else sys.stderr
    print(summary(result, CONFIG), file=stream)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Training script of a level-0 project: python -m mlops_runtime.train.stage

Fits the pipeline, prints test metrics and saves it to model/model.skops, with its sha256 in
model/model.skops.sha256 (`sha256sum` format) that the server checks before loading it. skops,
as at every level: the server restores only types of the packages the estimator allows, so a
replaced model file cannot run code. A spec that opted in to `model.serialization: pickle`
gets model/model.joblib instead, loaded with pickle. The trained file is also kept in
model/versions/ for `rollback` (tracking/local_versions.py), and the change of model is a line
of the serving history. No tracking, no registry, no contract gate: imports neither MLflow
nor pandera.

Exit codes: 0 trained and saved; 2 configuration error, or no data file at the path
(`error: training data not found: PATH`); 3 the data file cannot be read or is empty
(reports/contract_report.json says why); 130 / 143 stopped by SIGINT / SIGTERM (nothing
installed, the half-written file removed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.contract.coercion import coerce_frame
from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.data import DataNotFound, file_sha256, load_table, require_data
from mlops_runtime.project import Project, Stopped, stop_on_signals
from mlops_runtime.tracking.store import PICKLE, allowed_roots, serialization_of, trusted_types_of
from mlops_runtime.train.fitting import fit_and_evaluate

DIGEST_SUFFIX = ".sha256"  # serve/model_source.py reads it under the same name
EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_DATA = 3


def train(
    config: Mapping[str, Any],
    contract: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    model_path: Path | None = None,
) -> tuple[dict[str, float], Path]:
    """Fit, score on the held-out split, save; returns (metrics, path of the saved model)."""
    raw = load_table(require_data(config, environ), contract)
    # Without a contract pandas' own inference types the columns.
    frame = coerce_frame(raw, contract)[0] if contract else raw
    fitted = fit_and_evaluate(frame, config)
    if model_path is None:
        from mlops_runtime.tracking.local_versions import model_file

        model_path = Path.cwd() / model_file(config)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    save(fitted.pipeline, model_path, config)
    write_digest(model_path)
    return fitted.metrics, model_path


def save(pipeline: Any, path: Path, config: Mapping[str, Any]) -> None:
    """skops, refusing a pipeline with types the server would refuse; joblib for pickle."""
    if serialization_of(config) == PICKLE:
        import joblib

        joblib.dump(pipeline, path)
        return
    import skops.io

    estimator = str(config["model"]["estimator"])
    data = skops.io.dumps(pipeline)  # once: the bytes checked are the bytes saved
    try:
        trusted_types_of(data, allowed_roots(estimator))
    except ValueError as foreign:
        raise ValueError(f"{foreign}; set model.serialization: pickle to save it") from None
    path.write_bytes(data)


def write_digest(model_path: Path) -> Path:
    """Record the model file's sha256 beside it, for the server to check before unpickling.

    It guards against a model file that is truncated, half-written or swapped for another, not
    against someone who can write to the folder (they can rewrite the digest too): at level 0
    the file and the digest both come from the user's own training run. The digest is replaced
    in one rename, so a server never reads half of it.
    """
    digest_path = model_path.with_name(model_path.name + DIGEST_SUFFIX)
    partial = digest_path.with_name(digest_path.name + ".tmp")
    partial.write_text(f"{file_sha256(model_path)}  {model_path.name}\n", encoding="utf-8")
    os.replace(partial, digest_path)
    return digest_path


def main(argv: list[str], project: Project) -> int:
    del argv
    from mlops_runtime.tracking import local_versions
    from mlops_runtime.tracking import serving_history as history

    suffix = local_versions.model_suffix(project.config)
    fresh = project.root / local_versions.VERSIONS_DIR / f".training-{os.getpid()}{suffix}"
    name = project.config.get("name")
    try:
        with stop_on_signals():
            try:
                metrics, fresh = train(project.config, project.contract, model_path=fresh)
            except Stopped:
                for partial in (fresh, fresh.with_name(fresh.name + DIGEST_SUFFIX)):
                    with contextlib.suppress(OSError):
                        partial.unlink()
                raise
            change = local_versions.keep_trained(
                project.root, project.config, fresh, why={"trained": metrics}, by=history.actor()
            )
    except Stopped as stop:
        print(f"{name}: training stopped by {stop.name}: nothing installed", file=sys.stderr)
        return stop.exit_code
    except DataNotFound as missing:
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_CONFIG
    except ContractViolation as violation:
        print(violation, file=sys.stderr)
        return EXIT_DATA
    except (ImportError, ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    path = project.root / local_versions.model_file(project.config)
    print(f"{name}: saved {path} ({change.entry['to']})")
    print("  metrics: " + " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    return EXIT_OK

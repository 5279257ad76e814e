"""From a window's summary to the report: every check, its verdict and the violations.

Severity: an `alert` means the model or its traffic needs action now (dataset drift, live
metric under its bound, latency or error rate over theirs, a KPI out of bounds); a `warning`
is worth a look (one feature drifted, prediction drift, data-quality rates, a check that
could not be evaluated). The report's status is the worst of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime.config import DriftConfig, KpiConfig, MonitorConfig, ProjectConfig
from mlops_runtime.monitor import drift
from mlops_runtime.monitor.window_summary import WindowSummary
from mlops_runtime.monitor_report import REPORT_SCHEMA, REPORT_VERSION, MonitorReport, read_report
from mlops_runtime.timestamps import iso_seconds


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else iso_seconds(epoch)


class Violations(list[dict[str, Any]]):
    def add(
        self,
        check: str,
        feature: str | None,
        observed: Any,
        threshold: Any,
        severity: str,
        description: str,
    ) -> None:
        self.append(
            {
                "check": check,
                "feature": feature,
                "observed": observed,
                "threshold": threshold,
                "severity": severity,
                "description": description,
            }
        )


def _drift(
    summary: WindowSummary, settings: DriftConfig | None, violations: Violations
) -> dict[str, Any] | None:
    reference = summary.reference
    if settings is None or reference is None:
        return None
    rows = int(reference.get("rows", 0))
    sample = reference.get("sample") or {}
    sample_columns = list(sample.get("columns", []))
    sample_rows = sample.get("rows", [])
    per_column = settings.columns
    features: dict[str, Any] = {}
    for name in summary.features:
        ref = ((reference.get("features") or {}).get(name) or {}).get("sketch")
        if ref is None:
            features[name] = {"status": "missing_reference", "drifted": False}
            continue
        current = summary.sketches.get(name)
        if current is None:
            quality = summary.quality.get(name)
            status = "missing_column" if quality is None or quality.missing else "empty"
            features[name] = {"status": status, "drifted": False, "kind": ref.get("kind")}
            continue
        override = per_column.get(name)
        ref_sample = None
        if name in sample_columns and ref.get("kind") == "numeric":
            i = sample_columns.index(name)
            ref_sample = pd.to_numeric(
                pd.Series([r[i] for r in sample_rows]), errors="coerce"
            ).to_numpy(dtype="float64")
        verdict = drift.column_drift(
            ref,
            current,
            method=(override.method if override else None) or settings.method,
            # A column's own entry sets its threshold, even to none (the method's default).
            threshold=override.threshold if override is not None else settings.threshold,
            reference_rows=rows,
            reference_sample=ref_sample,
            current_values=summary.current_values(name),
        )
        verdict["kind"] = ref.get("kind")
        verdict["reference"] = _chart(ref)
        verdict["current"] = _chart(current)
        features[name] = verdict
        if verdict["drifted"]:
            violations.add(
                "data_drift",
                name,
                verdict["score"],
                verdict["threshold"],
                "warning",
                f"{name} drifted: {verdict['method']} {verdict['score']:.4g} against "
                f"{verdict['threshold']:g}",
            )
    dataset = drift.dataset_drift(features, float(settings.drift_share))
    if dataset["drifted"]:
        violations.add(
            "dataset_drift",
            None,
            dataset["share"],
            dataset["drift_share"],
            "alert",
            f"{dataset['drifted_columns']} of {dataset['columns']} features drifted",
        )
    return {"status": "ok", "dataset": dataset, "features": features}


def _chart(sketch: Mapping[str, Any]) -> dict[str, Any]:
    if sketch.get("kind") == "numeric":
        return {"edges": sketch.get("edges", []), "counts": sketch.get("counts", [])}
    return {"counts": dict(sketch.get("counts", {}))}


def _predictions(
    summary: WindowSummary, task: str, with_reference: bool, violations: Violations
) -> dict[str, Any]:
    reference = (summary.reference or {}).get("predictions") or {}
    if task == "regression":
        values = np.concatenate(summary.predicted_values) if summary.predicted_values else None
        levels = ("0.05", "0.25", "0.5", "0.75", "0.95")
        out: dict[str, Any] = {
            "kind": "regression",
            "quantiles": (
                {
                    q: float(v)
                    for q, v in zip(
                        levels, np.quantile(values, [float(q) for q in levels]), strict=True
                    )
                }
                if values is not None and len(values)
                else {}
            ),
            "mean": float(values.mean()) if values is not None and len(values) else None,
            "reference_quantiles": {
                q: reference.get("quantiles", {}).get(q)
                for q in levels
                if q in reference.get("quantiles", {})
            },
        }
    else:
        total = sum(summary.classes.values())
        out = {
            "kind": "classification",
            "class_shares": {k: v / total for k, v in sorted(summary.classes.items())}
            if total
            else {},
            "reference_class_shares": dict(reference.get("class_frequencies", {})),
        }
    ref_sketch = reference.get("sketch")
    if with_reference and ref_sketch is not None and summary.prediction_sketch is not None:
        verdict = drift.column_drift(
            ref_sketch,
            summary.prediction_sketch,
            method="jensenshannon" if task != "regression" else "wasserstein",
            reference_rows=int(reference.get("count", 0)),
        )
        out["drift"] = verdict
        if verdict["drifted"]:
            violations.add(
                "prediction_drift",
                None,
                verdict["score"],
                verdict["threshold"],
                "warning",
                f"the distribution of predictions drifted ({verdict['method']})",
            )
    return out


def _quality(summary: WindowSummary, violations: Violations) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    count = 0
    for name in summary.features:
        q = summary.quality.get(name)
        rule = summary.contract.get("columns", {}).get(name, {})
        if q is None or q.missing:
            if summary.rows:
                violations.add(
                    "missing_column", name, None, None, "warning", f"{name} is not in the log"
                )
                count += 1
            columns[name] = {"rows": 0, "status": "missing_column"}
            continue
        null_rate = q.nulls / q.rows if q.rows else 0.0
        allowed = rule.get("max_null_fraction")
        if allowed is None:
            allowed = 1.0 if rule.get("nullable") else 0.0
        out_of_range = q.below_min + q.above_max
        unseen = sum(q.unseen.values())
        columns[name] = {
            "rows": q.rows,
            "null_rate": null_rate,
            "max_null_fraction": allowed,
            "out_of_range": out_of_range,
            "unseen_categories": unseen,
            "unseen_values": dict(q.unseen.most_common(10)),
            "status": "all_null" if q.rows and q.nulls == q.rows else "ok",
        }
        if q.rows and null_rate > allowed:
            violations.add(
                "null_rate",
                name,
                null_rate,
                allowed,
                "warning",
                f"{name}: {null_rate:.2%} nulls, the contract allows {allowed:.2%}",
            )
            count += 1
        if out_of_range:
            violations.add(
                "out_of_range",
                name,
                out_of_range,
                0,
                "warning",
                f"{name}: {out_of_range} values outside the contract's bounds",
            )
            count += 1
        if unseen:
            shown = ", ".join(list(q.unseen)[:5])
            violations.add(
                "unseen_categories",
                name,
                unseen,
                0,
                "warning",
                f"{name}: {unseen} values not in the contract ({shown})",
            )
            count += 1
    return {"columns": columns, "violations": count}


def _traffic(
    summary: WindowSummary, monitor: MonitorConfig, violations: Violations
) -> dict[str, Any]:
    # The error rate is the model's: server errors (5xx) among the requests it was asked to
    # answer. Client errors (4xx: unreadable, too large, refused by the contract) are counted
    # apart, so a flood of bad requests neither raises it (nor rolls a good model back) nor
    # dilutes it.
    judged = summary.requests + summary.errors
    total = judged + summary.client_errors
    error_rate = summary.errors / judged if judged else 0.0
    client_error_rate = summary.client_errors / total if total else 0.0
    latency = summary.latency_percentiles()
    bound = monitor.latency.p99_ms if monitor.latency is not None else None
    if bound is not None and latency is not None and latency["p99"] > float(bound):
        violations.add(
            "latency_p99",
            None,
            latency["p99"],
            float(bound),
            "alert",
            f"p99 latency {latency['p99']:.1f} ms is over {float(bound):g} ms",
        )
    limit = monitor.error_rate.max if monitor.error_rate is not None else None
    if limit is not None and judged and error_rate > float(limit):
        apart = (
            f"; {summary.client_errors} client errors (4xx) not counted"
            if summary.client_errors
            else ""
        )
        violations.add(
            "error_rate",
            None,
            error_rate,
            float(limit),
            "alert",
            f"{summary.errors} of {judged} requests failed with a server error "
            f"({error_rate:.2%}){apart}",
        )
    return {
        "requests": total,
        "rows": summary.rows,
        "errors": summary.errors,
        "error_rate": error_rate,
        "client_errors": summary.client_errors,
        "client_error_rate": client_error_rate,
        "latency_ms": latency,
    }


def kpi_verdicts(
    kpis: Sequence[KpiConfig],
    summary: WindowSummary,
    outcomes: pd.DataFrame | None,
    violations: Violations,
) -> list[dict[str, Any]]:
    out = []
    total = sum(summary.classes.values())
    for kpi in kpis:
        kind = kpi.kind
        value: float | None = None
        if kind == "prediction_share" and total:
            value = summary.classes.get(str(kpi.class_), 0) / total
        elif kind == "prediction_mean" and summary.predicted_values:
            values = np.concatenate(summary.predicted_values)
            value = float(values.mean()) if len(values) else None
        elif kind.startswith("outcome_") and outcomes is not None and kpi.column in outcomes:
            column = pd.to_numeric(outcomes[kpi.column], errors="coerce").dropna()
            if len(column):
                value = float(column.mean() if kind == "outcome_mean" else column.sum())
        low, high = kpi.min, kpi.max
        status = "no_data" if value is None else "ok"
        if value is not None and (
            (low is not None and value < low) or (high is not None and value > high)
        ):
            status = "violated"
            bound = low if low is not None and value < low else high
            violations.add(
                "kpi",
                None,
                value,
                bound,
                "alert",
                f"KPI {kpi.name} = {value:.4g} is outside [{low}, {high}]",
            )
        out.append(
            {
                "name": kpi.name,
                "kind": kind,
                "value": value,
                "min": low,
                "max": high,
                "status": status,
            }
        )
    return out


def build_monitor_report(
    config: ProjectConfig,
    summary: WindowSummary,
    *,
    window: Mapping[str, Any],
    reference_status: Mapping[str, Any],
    performance: Mapping[str, Any] | None,
    outcomes: pd.DataFrame | None,
    problems: list[dict[str, Any]],
    violations: Violations,
    now: float,
) -> MonitorReport:
    """The typed report of one window: every check judged, its violations and its status.
    The sections are built as the JSON they are written as (a drift verdict's keys depend on
    what was measured), then read once into the report's types."""
    # The compiler writes every monitor setting, defaults included (spec/model.py holds them).
    monitor = config.monitor
    task = config.model.task
    enough = summary.rows >= monitor.min_rows
    drift_settings = monitor.drift if monitor.reference else None
    drift_section: dict[str, Any] | None
    if drift_settings is not None and summary.reference is not None and not enough:
        drift_section = {
            "status": "insufficient_rows",
            "rows": summary.rows,
            "min_rows": monitor.min_rows,
        }
    else:
        drift_section = _drift(summary, drift_settings, violations)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "version": REPORT_VERSION,
        "name": config.name,
        "generated_at": iso(now),
        "window": {
            **window,
            "start": iso(window.get("start_epoch")),
            "end": iso(window.get("end_epoch")),
            "rows": summary.rows,
            "requests": summary.requests + summary.errors + summary.client_errors,
            "files": summary.partitions,
        },
        "model": {
            "name": config.tracking.registered_model,
            "versions": dict(sorted(summary.versions.items())),
            "run_ids": dict(sorted(summary.runs.items())),
        },
        "reference": dict(reference_status),
        "traffic": _traffic(summary, monitor, violations),
        "predictions": _predictions(summary, task, monitor.reference and enough, violations),
        "drift": drift_section,
        "data_quality": _quality(summary, violations),
        "performance": performance,
        "kpis": kpi_verdicts(monitor.kpis, summary, outcomes, violations),
        "violations": list(violations),
        "problems": problems,
    }
    for key in ("start_epoch", "end_epoch"):
        report["window"].pop(key, None)
    report["status"] = None
    report["exit_code"] = None
    return read_report(report).judged()

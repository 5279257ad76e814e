"""The report as Prometheus gauges, in the text format node-exporter's textfile collector
reads (`--collector.textfile.directory` pointed at the project's reports/monitor/).

A textfile rather than a push: the monitor is a batch job, the collector keeps the last
values between runs, and no Pushgateway has to run. The monitor stage replaces the file
atomically, so the collector never reads half of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mlops_runtime.monitor_report import (
    Drift,
    FeatureFreshness,
    MonitorReport,
    Performance,
    Traffic,
    ViewFreshness,
    read_report,
)

STATUS_VALUES = {"ok": 0, "warning": 1, "alert": 2}

HELP = {
    "mlops_monitor_status": "Monitor verdict: 0 ok, 1 warning, 2 alert.",
    "mlops_monitor_last_run_timestamp_seconds": "When the monitor last ran.",
    "mlops_monitor_window_rows": "Predictions in the monitored window.",
    "mlops_monitor_drift_score": "Drift score per feature (p-value or distance, see method).",
    "mlops_monitor_drift_threshold": "Drift threshold per feature.",
    "mlops_monitor_feature_drifted": "1 when the feature drifted.",
    "mlops_monitor_drifted_share": "Share of features that drifted.",
    "mlops_monitor_dataset_drift": "1 when the share of drifted features reached drift_share.",
    "mlops_monitor_prediction_drifted": "1 when the distribution of predictions drifted.",
    "mlops_monitor_metric": "Live model metric on labelled predictions.",
    "mlops_monitor_metric_baseline": "The metric on the training test split.",
    "mlops_monitor_kpi": "Business KPI value.",
    "mlops_monitor_kpi_ok": "1 when the KPI is within its bounds.",
    "mlops_monitor_latency_p99_seconds": "p99 request latency in the window.",
    "mlops_monitor_error_rate": "Share of prediction requests that failed with a server error (5xx) in the window, client errors excluded.",
    "mlops_monitor_client_error_rate": "Share of prediction requests refused as client errors (4xx) in the window.",
    "mlops_monitor_null_rate": "Share of nulls per feature in the window.",
    "mlops_monitor_violations": "Violations in the last report, by check.",
    "mlops_monitor_rollback_trigger_fired": "1 when the rollback trigger fired for the version.",
    "mlops_monitor_feature_age_seconds": "Age of the feature view's newest online value at the run.",
    "mlops_monitor_feature_newest_timestamp_seconds": "Event time of the view's newest online value.",
    "mlops_monitor_feature_max_age_seconds": "The view's freshness bound (max_age).",
    "mlops_monitor_feature_fresh": "1 when the view's newest online value is within its bound.",
}


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _series(report: MonitorReport, now: float) -> Iterator[tuple[str, dict[str, str], float]]:
    yield "mlops_monitor_status", {}, STATUS_VALUES.get(str(report.status), 2)
    yield "mlops_monitor_last_run_timestamp_seconds", {}, now
    yield "mlops_monitor_window_rows", {}, float(report.window_rows)
    drift = report.drift or Drift()
    for feature, verdict in sorted(drift.features.items()):
        if verdict.score is None:
            continue
        labels = {"feature": feature, "method": str(verdict.method)}
        yield "mlops_monitor_drift_score", labels, float(verdict.score)
        yield "mlops_monitor_drift_threshold", labels, float(verdict.threshold or 0.0)
        yield "mlops_monitor_feature_drifted", {"feature": feature}, float(bool(verdict.drifted))
    dataset = drift.dataset
    if dataset:
        yield "mlops_monitor_drifted_share", {}, float(dataset.share or 0.0)
        yield "mlops_monitor_dataset_drift", {}, float(bool(dataset.drifted))
    prediction_drift = report.predictions.drift if report.predictions else None
    if prediction_drift and prediction_drift.score is not None:
        yield "mlops_monitor_prediction_drifted", {}, float(bool(prediction_drift.drifted))
    performance = report.performance or Performance()
    if performance.value is not None:
        labels = {"metric": str(performance.metric)}
        yield "mlops_monitor_metric", labels, float(performance.value)
    if performance.baseline is not None:
        labels = {"metric": str(performance.metric)}
        yield "mlops_monitor_metric_baseline", labels, float(performance.baseline)
    for kpi in report.kpis:
        if kpi.value is not None:
            yield "mlops_monitor_kpi", {"kpi": str(kpi.name)}, float(kpi.value)
            yield "mlops_monitor_kpi_ok", {"kpi": str(kpi.name)}, float(kpi.status == "ok")
    traffic = report.traffic or Traffic()
    latency = traffic.latency_ms or {}
    if latency.get("p99") is not None:
        yield "mlops_monitor_latency_p99_seconds", {}, float(latency["p99"]) / 1000.0
    yield "mlops_monitor_error_rate", {}, float(traffic.error_rate or 0.0)
    yield "mlops_monitor_client_error_rate", {}, float(traffic.client_error_rate or 0.0)
    columns = report.data_quality.columns if report.data_quality else {}
    for feature, quality in sorted(columns.items()):
        if quality.null_rate is not None:
            yield "mlops_monitor_null_rate", {"feature": feature}, float(quality.null_rate)
    checks: dict[str, int] = {}
    for violation in report.violations:
        checks[str(violation.check)] = checks.get(str(violation.check), 0) + 1
    for check, count in sorted(checks.items()):
        yield "mlops_monitor_violations", {"check": check}, float(count)
    yield from _freshness(report.feature_freshness or FeatureFreshness())
    arms = report.rollback.arms if report.rollback else {}
    for arm, judged in sorted(arms.items()):
        for trigger in judged.judged:
            labels = {"arm": arm, "version": str(judged.version), "trigger": str(trigger.trigger)}
            yield "mlops_monitor_rollback_trigger_fired", labels, float(bool(trigger.fired))


def _freshness(section: FeatureFreshness) -> Iterator[tuple[str, dict[str, str], float]]:
    views = sorted(section.views.items())
    # Each family's lines together, as the text format wants them, however many views.
    families: tuple[tuple[str, Callable[[ViewFreshness], float | None]], ...] = (
        ("mlops_monitor_feature_age_seconds", lambda v: v.age_s),
        # The event time as well as the age: the textfile keeps its values until the next
        # run, and `time() - mlops_monitor_feature_newest_timestamp_seconds` stays right.
        ("mlops_monitor_feature_newest_timestamp_seconds", lambda v: v.newest_epoch),
        ("mlops_monitor_feature_max_age_seconds", lambda v: v.max_age_s),
    )
    for name, value_of in families:
        for view, verdict in views:
            value = value_of(verdict)
            if value is not None:
                yield name, {"view": view}, float(value)
    for view, verdict in views:
        if verdict.status in ("ok", "violated", "not_materialised"):
            yield "mlops_monitor_feature_fresh", {"view": view}, float(verdict.status == "ok")


def render(report: MonitorReport | Mapping[str, Any], now: float) -> str:
    report = read_report(report)
    model = str(report.name)
    lines: list[str] = []
    seen: set[str] = set()
    for name, labels, value in _series(report, now):
        if name not in seen:
            seen.add(name)
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        text = ",".join(f'{k}="{_label(v)}"' for k, v in {"model": model, **labels}.items())
        lines.append(f"{name}{{{text}}} {value!r}")
    return "\n".join(lines) + "\n"

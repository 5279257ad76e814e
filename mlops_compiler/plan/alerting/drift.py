"""Drift (`monitors.drift`): the window's data and predictions against the reference profile."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_compiler.plan.alerting.promql import number
from mlops_compiler.plan.alerting.table import (
    MONITOR_FOR,
    Alert,
    Facts,
    Monitor,
    Panel,
    declared,
    gauge,
    setting,
)


def _share(name: str, monitor: Monitor) -> Iterable[Facts]:
    yield {"share": number(monitor["drift"]["drift_share"])}


ALERTS = (
    Alert(
        name="MlopsDatasetDrift",
        when=declared("drift"),
        facts=_share,
        expr="mlops_monitor_dataset_drift{model} == 1",
        for_=MONITOR_FOR,
        severity="warning",
        summary="Dataset drift on {name}",
        description=(
            "The share of drifted features of {name} reached its dataset-drift bound ({share}) "
            "in the last window (mlops_monitor_dataset_drift = {$value:%.0f})."
        ),
        runbook=(
            "At least drift_share of the features drifted. Compare the reference and current "
            "distributions in dashboard.html; if the new population is the real one, retrain "
            "on fresh data."
        ),
        firing=gauge("mlops_monitor_dataset_drift", "1x{samples}"),
        quiet=gauge("mlops_monitor_dataset_drift", "0x{samples}"),
        value="1",
    ),
    Alert(
        name="MlopsFeatureDrift",
        when=declared("drift"),
        expr="mlops_monitor_feature_drifted{model} == 1",
        for_=MONITOR_FOR,
        # One feature drifting is common and often harmless; the dataset verdict and the
        # metric are what warn and page.
        severity="info",
        summary="Feature {$labels.feature} of {name} drifted",
        description=(
            "Feature {$labels.feature} of {name} drifted from the reference profile in the "
            "last window (mlops_monitor_feature_drifted = {$value:%.0f}); the dashboard's "
            "drift panel shows its score against the threshold."
        ),
        runbook=(
            "One feature's distribution moved. Check the upstream source of that column (a "
            "schema or unit change) before retraining."
        ),
        firing=gauge("mlops_monitor_feature_drifted", "1x{samples}", feature="example_feature"),
        quiet=gauge("mlops_monitor_feature_drifted", "0x{samples}", feature="example_feature"),
        value="1",
    ),
    Alert(
        name="MlopsPredictionDrift",
        when=declared("drift"),
        expr="mlops_monitor_prediction_drifted{model} == 1",
        for_=MONITOR_FOR,
        severity="warning",
        summary="Prediction drift on {name}",
        description=(
            "The distribution of the predictions of {name} moved away from the reference's in "
            "the last window (mlops_monitor_prediction_drifted = {$value:%.0f})."
        ),
        runbook=(
            "The distribution of predictions moved. Look for input drift first; if inputs are "
            "stable, the model is seeing a different mix of cases."
        ),
        firing=gauge("mlops_monitor_prediction_drifted", "1x{samples}"),
        quiet=gauge("mlops_monitor_prediction_drifted", "0x{samples}"),
        value="1",
    ),
)

PANELS = (
    Panel(
        title="Drift score per feature",
        description="Each feature's drift score and the threshold its method compares it with.",
        targets=[
            ("mlops_monitor_drift_score{model}", "{{feature}} ({{method}})"),
            ("mlops_monitor_drift_threshold{model}", "{{feature}} threshold"),
        ],
        unit="short",
        when=declared("drift"),
    ),
    Panel(
        title="Drifted feature share",
        description="Share of drifted features; the line is the dataset-drift bound.",
        targets=[("mlops_monitor_drifted_share{model}", "drifted share")],
        unit="percentunit",
        when=declared("drift"),
        threshold=setting("drift", "drift_share"),
    ),
)

"""Feature store freshness (the spec's feature views): each view's newest online value is
within its max_age."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_compiler.plan.alerting.table import MONITOR_FOR, Alert, Facts, Monitor, declared, gauge


def _first_view(name: str, monitor: Monitor) -> Iterable[Facts]:
    # One rule for every view, told apart by the series' own `view` label: the test case
    # needs a single view to stand for them all.
    yield {"view": str(monitor["feature_views"][0])}


ALERTS = (
    Alert(
        name="MlopsFeatureStale",
        when=declared("feature_views"),
        facts=_first_view,
        expr="mlops_monitor_feature_fresh{model} == 0",
        for_=MONITOR_FOR,
        severity="critical",
        summary="Feature view {$labels.view} of {name} is stale",
        description=(
            "The newest online value of feature view {$labels.view} of {name} is older than "
            "its max_age, or the view was never materialised (mlops_monitor_feature_fresh = "
            "{$value:%.0f}); the report's feature_freshness holds its age and bound."
        ),
        runbook=(
            "A feature view's newest online value is older than its max_age, or the view was "
            "never materialised: requests are answered from old features. Run python -m "
            "mlops_runtime features-materialize and check the view's source."
        ),
        firing=gauge("mlops_monitor_feature_fresh", "0x{samples}", view="{view}"),
        quiet=gauge("mlops_monitor_feature_fresh", "1x{samples}", view="{view}"),
        value="0",
    ),
)

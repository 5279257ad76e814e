"""The monitor's own health: it runs on schedule and its last verdict is not `alert`. Always
emitted, whatever checks the monitor declares."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_compiler.plan.alerting.promql import duration
from mlops_compiler.plan.alerting.table import (
    EVAL_MINUTES,
    MONITOR_FOR,
    STALE_FOR,
    Alert,
    Facts,
    Monitor,
    Panel,
    gauge,
)

_DEFAULT_WINDOW_S = 3600  # a window counted in records has no duration: assume hourly runs


def stale_bound(monitor: Monitor) -> int:
    window_s = (monitor.get("window") or {}).get("duration_s") or _DEFAULT_WINDOW_S
    return max(3 * int(window_s), 3600)


def _staleness(name: str, monitor: Monitor) -> Iterable[Facts]:
    bound = stale_bound(monitor)
    # promtool's clock starts at 0: a run stamped before it is already too old, and a stamp
    # that keeps up with the clock is never old.
    before = bound + 60
    yield {
        "bound": str(bound),
        "bound_text": duration(bound),
        "stamped": str(-before),
        "age": str(EVAL_MINUTES * 60 + before),
    }


ALERTS = (
    Alert(
        name="MlopsMonitorStale",
        facts=_staleness,
        expr="time() - mlops_monitor_last_run_timestamp_seconds{model} > {bound}",
        for_=STALE_FOR,
        severity="warning",
        summary="The monitor of {name} has not run for over {bound_text}",
        description=(
            "The last monitor run of {name} finished {$value:%.0f} s ago, more than {bound} s "
            "(three windows): drift, performance and KPI alerts see nothing new until it runs "
            "again. Check the scheduler and the monitor stage's log."
        ),
        runbook=(
            "The monitor stage has not run on schedule. Check the scheduler (CronJob, CI "
            "schedule) and the last run's output; run python -m mlops_runtime monitor by hand."
        ),
        firing=gauge("mlops_monitor_last_run_timestamp_seconds", "{stamped}x{samples}"),
        quiet=gauge("mlops_monitor_last_run_timestamp_seconds", "0+60x{samples}"),
        value="{age}",
    ),
    Alert(
        name="MlopsMonitorFailing",
        expr="mlops_monitor_status{model} == 2",
        for_=MONITOR_FOR,
        severity="critical",
        summary="The monitor of {name} reports an alert",
        description=(
            "mlops_monitor_status of {name} is {$value:%.0f} (2 = alert): at least one check of "
            "the last monitor run failed; the run's report in reports/monitor/ says which."
        ),
        runbook=(
            "The last monitor report has an alert-severity violation. Open "
            "reports/monitor/latest.json (or dashboard.html): its violations say which check "
            "failed."
        ),
        firing=gauge("mlops_monitor_status", "2x{samples}"),
        quiet=gauge("mlops_monitor_status", "1x{samples}"),  # a warning is not a failure
        value="2",
    ),
)

# The monitor's verdicts by name and colour, the same scale as the status gauge.
_STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "ok", "color": "green", "index": 0},
            "1": {"text": "warning", "color": "orange", "index": 1},
            "2": {"text": "alert", "color": "red", "index": 2},
        },
    }
]


PANELS = (
    Panel(
        title="Monitor status",
        description="0 ok, 1 warning, 2 alert: the worst verdict of the last monitor run.",
        targets=[("mlops_monitor_status{model}", "status")],
        unit="none",
        size=(8, 4),
        threshold=lambda monitor: 2,
        kind="stat",
        mappings=_STATUS_MAPPINGS,
    ),
    Panel(
        title="Since the last monitor run",
        description="MlopsMonitorStale fires above the red step.",
        targets=[("time() - mlops_monitor_last_run_timestamp_seconds{model}", "age")],
        unit="s",
        size=(8, 4),
        threshold=stale_bound,
        kind="stat",
    ),
    Panel(
        title="Rows in the last window",
        description="Prediction log rows the last monitor run looked at.",
        targets=[("mlops_monitor_window_rows{model}", "rows")],
        unit="short",
        size=(8, 4),
        kind="stat",
    ),
)

NULL_RATE = Panel(
    title="Null rate per feature",
    description="Share of missing values per feature in the last window.",
    targets=[("mlops_monitor_null_rate{model}", "{{feature}}")],
    unit="percentunit",
)

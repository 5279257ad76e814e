"""Model performance (`monitors.performance`): the live metric on late labels against its
declared bound, `min` for a higher-is-better metric, `max` for a lower-is-better one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from mlops_compiler.plan.alerting.promql import bound, matcher, number
from mlops_compiler.plan.alerting.table import (
    MONITOR_FOR,
    Alert,
    Facts,
    Monitor,
    Panel,
    declared,
    declares,
    gauge,
)


def _crossing(key: str, op: str, word: str) -> Callable[[str, Monitor], Iterable[Facts]]:
    def facts(name: str, monitor: Monitor) -> Iterable[Facts]:
        performance = monitor["performance"]
        metric = str(performance["metric"])
        limit = bound(performance[key])
        # Just across the bound fires; exactly on it does not (the comparison is strict).
        step = max(abs(limit) * 0.1, 0.01)
        crossed = limit - step if op == "<" else limit + step
        yield {
            "metric": metric,
            "selector": matcher({"model": name, "metric": metric}),
            "op": op,
            "word": word,
            "limit": number(limit),
            "crossed": number(crossed),
        }

    return facts


_LOW = Alert(
    name="MlopsModelMetricLow",
    when=declares("performance", "min"),
    facts=_crossing("min", "<", "below"),
    expr="mlops_monitor_metric{selector} {op} {limit}",
    for_=MONITOR_FOR,
    severity="critical",
    summary="{metric} of {name} {word} {limit}",
    description=(
        "Live {metric} of {name} is {$value:%.3f}, {word} its bound {limit}, on the labelled "
        "predictions of the last window."
    ),
    runbook=(
        "The live metric on labelled predictions passed its bound. Compare with the baseline "
        "in the report; roll back to the previous model or retrain."
    ),
    firing=gauge("mlops_monitor_metric", "{crossed}x{samples}", metric="{metric}"),
    quiet=gauge("mlops_monitor_metric", "{limit}x{samples}", metric="{metric}"),
    value="{crossed}",
)
ALERTS = (
    _LOW,
    replace(
        _LOW,
        name="MlopsModelMetricHigh",
        when=declares("performance", "max"),
        facts=_crossing("max", ">", "above"),
        runbook=(
            "The live error metric passed its bound. Compare with the baseline in the report; "
            "roll back to the previous model or retrain."
        ),
    ),
)


def _declared_bound(monitor: Monitor) -> float | None:
    performance = monitor["performance"]
    low: float | None = performance.get("min")
    return low if low is not None else performance.get("max")


PANELS = (
    Panel(
        title="Live metric vs baseline",
        description="The metric on late labels against the champion's training baseline.",
        targets=[
            ("mlops_monitor_metric{model}", "{{metric}} live"),
            ("mlops_monitor_metric_baseline{model}", "{{metric}} baseline"),
        ],
        unit="short",
        when=declared("performance"),
        threshold=_declared_bound,
    ),
)

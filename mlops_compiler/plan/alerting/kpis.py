"""Business KPIs (`monitors.kpis`): each KPI inside its declared bounds."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_compiler.plan.alerting.promql import matcher, number
from mlops_compiler.plan.alerting.table import (
    MONITOR_FOR,
    Alert,
    Facts,
    Monitor,
    Panel,
    declared,
    gauge,
)


def _bounds_text(low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"min {number(low)}")
    if high is not None:
        parts.append(f"max {number(high)}")
    return ", ".join(parts)


def _each_kpi(name: str, monitor: Monitor) -> Iterable[Facts]:
    for kpi in sorted(monitor["kpis"], key=lambda k: str(k["name"])):
        yield {
            "kpi": str(kpi["name"]),
            "selector": matcher({"model": name, "kpi": str(kpi["name"])}),
            "bounds": _bounds_text(kpi.get("min"), kpi.get("max")),
        }


ALERTS = (
    # One rule per KPI, all named MlopsKpiOutOfBounds and told apart by their `kpi` label:
    # routes, silences and the runbook entry stay the same whatever a KPI is called, and no
    # KPI name has to be turned into an alert name.
    Alert(
        name="MlopsKpiOutOfBounds",
        when=declared("kpis"),
        facts=_each_kpi,
        expr="mlops_monitor_kpi_ok{selector} == 0",
        labels={"kpi": "{kpi}"},
        for_=MONITOR_FOR,
        severity="warning",
        summary="KPI {$labels.kpi} of {name} out of bounds",
        description=(
            "KPI {$labels.kpi} of {name} left its bounds ({bounds}) in the last window "
            "(mlops_monitor_kpi_ok = {$value:%.0f}); the dashboard's KPI panel shows its value."
        ),
        runbook=(
            "A business KPI left its bounds. The report's kpis hold the value and bounds; "
            "check whether the model or the business changed."
        ),
        firing=gauge("mlops_monitor_kpi_ok", "0x{samples}", kpi="{kpi}"),
        quiet=gauge("mlops_monitor_kpi_ok", "1x{samples}", kpi="{kpi}"),
        value="0",
    ),
)

PANELS = (
    Panel(
        title="KPIs",
        description="Each declared KPI over the monitor's windows.",
        targets=[("mlops_monitor_kpi{model}", "{{kpi}}")],
        unit="short",
        when=declared("kpis"),
    ),
)

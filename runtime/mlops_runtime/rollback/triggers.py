"""The rollback policy's triggers, judged on the window of one serving version.

Each trigger of config.json's rollback.triggers reads one value of that version's monitor
report (the live metric from late labels, the error rate of server errors, the p99 latency,
the share of drifted features, a KPI) with the number of samples behind it. It *fires* in a window when
the value is past its bound on at least `min_samples` samples, and *decides* when it fired in
`k` of the last `n` windows judged for that version (Argo Rollouts' failureLimit, Flagger's
threshold). Before a new champion has served `grace_samples` labelled predictions (served
predictions when the spec has no labels), triggers are judged and reported but decide
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops_runtime.config import RollbackTrigger
from mlops_runtime.monitor_report import (
    Grace,
    MonitorReport,
    Performance,
    Traffic,
    TriggerJudgement,
    read_report,
)


def label(trigger: RollbackTrigger) -> str:
    """How a trigger reads in reports and the history: `performance < 0.9`, `kpi share > 0.6`."""
    on = trigger.on
    name = trigger.metric if on == "performance" else trigger.kpi
    head = f"{on} {name}" if name else on
    bounds = []
    if trigger.min is not None:
        bounds.append(f"< {trigger.min:g}")
    if trigger.max is not None:
        bounds.append(f"{'>=' if on == 'drift' else '>'} {trigger.max:g}")
    return f"{head} {' or '.join(bounds)}".strip()


def observe(
    report: MonitorReport | Mapping[str, Any], trigger: RollbackTrigger
) -> tuple[float | None, int]:
    """(value, samples) of the trigger's quantity in one version's report."""
    report = read_report(report)
    on = trigger.on
    traffic = report.traffic or Traffic()
    rows = report.window_rows
    if on == "performance":
        perf = report.performance or Performance()
        return perf.value, int(perf.labelled or 0)
    requests = int(traffic.requests or 0)
    client_errors = int(traffic.client_errors or 0)
    if on == "error_rate":
        # Server errors among the requests the model was asked to answer: client errors
        # (4xx) are the callers', and a flood of them must not roll a good model back.
        return traffic.error_rate, requests - client_errors
    if on == "latency":
        latency = traffic.latency_ms or {}
        served = requests - client_errors - int(traffic.errors or 0)
        return latency.get("p99"), served
    if on == "drift":
        drift = report.drift
        ok = drift is not None and drift.status == "ok" and drift.dataset is not None
        return (drift.dataset.share if ok and drift and drift.dataset else None), rows
    if on == "kpi":
        for kpi in report.kpis:
            if kpi.name == trigger.kpi:
                return kpi.value, rows
        return None, 0
    raise ValueError(f"unknown rollback trigger {on!r}")


def past_bound(value: float, trigger: RollbackTrigger) -> bool:
    low, high = trigger.min, trigger.max
    if low is not None and value < float(low):
        return True
    if high is None:
        return False
    # The dataset drifts when the drifted share reaches its bound, as the monitor's own check.
    return value >= float(high) if trigger.on == "drift" else value > float(high)


def grace(report: MonitorReport | Mapping[str, Any], needed: int, labelled: bool) -> Grace:
    report = read_report(report)
    if labelled:
        have = int((report.performance.labelled if report.performance else None) or 0)
    else:
        have = report.window_rows
    return Grace(
        counted="labelled" if labelled else "served",
        samples=have,
        needed=needed,
        over=have >= needed,
    )


def judge(
    report: MonitorReport | Mapping[str, Any],
    triggers: Sequence[RollbackTrigger],
    earlier: Sequence[Sequence[TriggerJudgement]],
) -> list[TriggerJudgement]:
    """Every trigger on this window; `earlier`: the same version's past judgements, oldest
    first (each a list like the one returned here)."""
    report = read_report(report)
    out = []
    for trigger in triggers:
        value, samples = observe(report, trigger)
        needed = trigger.min_samples
        fired = value is not None and samples >= needed and past_bound(float(value), trigger)
        k, n = trigger.k, trigger.n
        name = label(trigger)
        recent = list(earlier)[-(n - 1) :] if n > 1 else []
        count = sum(1 for past in recent if any(j.trigger == name and j.fired for j in past))
        count += 1 if fired else 0
        out.append(
            TriggerJudgement(
                trigger=name,
                on=trigger.on,
                value=value,
                samples=samples,
                min_samples=needed,
                fired=fired,
                fired_in=count,
                k=k,
                n=n,
                decides=fired and count >= k,
            )
        )
    return out

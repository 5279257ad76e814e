"""The `rollback` key of config.json: the policy, with every trigger resolved in full so the
runtime reads bounds, sample counts and windows instead of falling back on defaults."""

from __future__ import annotations

from typing import Any

from mlops_compiler.spec.metrics import HIGHER_IS_BETTER
from mlops_compiler.spec.model import RollbackTrigger, Spec
from mlops_compiler.spec.triggers import as_trigger

HISTORY = "reports/serving-history.jsonl"
# What a drift trigger without a bound compares with when monitors.drift is not declared:
# the schema's default drift_share.
DEFAULT_DRIFT_SHARE = 0.5


def rollback_config(spec: Spec, automatic: bool) -> dict[str, Any]:
    """The level's settings set `automatic`; triggers are listed only where they act."""
    r = spec.rollback
    return {
        "keep_versions": r.keep_versions,
        "automatic": False,
        "grace_samples": r.grace_samples,
        "history": HISTORY,
        "triggers": [_resolved(spec, as_trigger(t)) for t in r.when] if automatic else [],
    }


def _resolved(spec: Spec, trigger: RollbackTrigger) -> dict[str, Any]:
    monitors = spec.monitors
    windows = trigger.windows or spec.rollback.windows
    metric: str | None = None
    low, high = trigger.min, trigger.max
    if trigger.on == "performance":
        perf = monitors.performance
        assert perf is not None  # the rules require it
        metric = perf.metric
        if HIGHER_IS_BETTER[metric]:
            low, high = (perf.min if low is None else low), None
        else:
            low, high = None, (perf.max if high is None else high)
    elif trigger.on == "error_rate" and high is None:
        assert monitors.error_rate is not None  # the rules require a bound
        high = monitors.error_rate.max
    elif trigger.on == "latency" and high is None:
        assert monitors.latency is not None  # the rules require a bound
        high = monitors.latency.p99_ms
    elif trigger.on == "drift" and high is None:
        high = DEFAULT_DRIFT_SHARE if monitors.drift is None else monitors.drift.drift_share
    elif trigger.on == "kpi":
        kpi = next(k for k in monitors.kpis if k.name == trigger.kpi)
        low = kpi.min if low is None else low
        high = kpi.max if high is None else high
    return {
        "on": trigger.on,
        "metric": metric,
        "min": low,
        "max": high,
        "kpi": trigger.kpi if trigger.on == "kpi" else None,
        "min_samples": trigger.min_samples or spec.rollback.min_samples,
        "k": windows.k,
        "n": windows.n,
    }

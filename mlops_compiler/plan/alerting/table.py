"""What a row of an alert family's table says: an alert with the test scenario that proves it,
or a dashboard panel, each with the predicate that decides whether a spec gets it.

Text fields are `str.format` templates over the project's vocabulary (promql.vocabulary:
`{name}`, `{model}`, `{job}`, the live selectors), `{samples}` and the row's own facts; in
annotations `{$value:<printf verb>}` and `{$labels.<label>}` are left for Prometheus to expand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Monitor = Mapping[str, Any]
Facts = Mapping[str, str]
Predicate = Callable[[Monitor], bool]

# The window a firing case's condition has held for when it is evaluated: past every `for:`
# (15m at most) with room for rate() and increase() to see two samples.
EVAL_MINUTES = 30
SAMPLES = 40  # one a minute, beyond the evaluation time so no series goes stale before it
# Ten minutes of 5xx or slow requests over a 5m rate: a deploy or a cold start's first slow
# requests do not page, a real regression pages within a quarter of an hour.
LIVE_FOR = "10m"
# The monitor's gauges only change when a run ends, so a few scrapes of the same value is
# confirmation enough; waiting for a second run would delay every page by a whole schedule.
MONITOR_FOR = "5m"
# The staleness bound already allows three windows; the extra time covers a long run whose
# timestamp is only written when it finishes.
STALE_FOR = "15m"


def always(monitor: Monitor) -> bool:
    return True


def declared(section: str) -> Predicate:
    """The monitor declares `section` (a check, the KPIs, the feature views)."""
    return lambda monitor: bool(monitor.get(section))


def declares(section: str, key: str) -> Predicate:
    """`section` is declared with a value for `key` (a bound)."""
    return lambda monitor: bool(monitor.get(section)) and monitor[section].get(key) is not None


def setting(section: str, key: str) -> Callable[[Monitor], Any]:
    """`section`'s `key` as declared, None when either is missing."""
    return lambda monitor: (monitor.get(section) or {}).get(key)


def once(name: str, monitor: Monitor) -> Iterable[Facts]:
    return ({},)


@dataclass(frozen=True)
class Series:
    """An input series of a test case: metric, label templates, values in promtool's
    notation (a template too)."""

    metric: str
    labels: Mapping[str, str]
    values: str


def gauge(metric: str, values: str, /, **labels: str) -> list[Series]:
    """A test case's one input series: a monitor gauge of the project's model."""
    return [Series(metric, {"model": "{name}", **labels}, values)]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook: str  # what to check first when it fires (the generated README's runbook)
    # The test cases' input series: crossing the bound from the start, and staying inside it.
    firing: Sequence[Series]
    quiet: Sequence[Series]
    value: str  # the firing case's $value at the evaluation time
    when: Predicate = always
    # The facts of each rule of the alert, from the project's name and monitor section: one
    # rule per mapping (several for the KPIs, which share one alert name).
    facts: Callable[[str, Monitor], Iterable[Facts]] = once
    labels: Mapping[str, str] = field(default_factory=dict)  # beyond severity and model
    # The alert carries the labels of its one firing series; an expression that aggregates
    # (sum, histogram_quantile) carries none.
    carries_labels: bool = True

    def __post_init__(self) -> None:
        if self.carries_labels and len(self.firing) != 1:
            raise ValueError(f"{self.name} carries the labels of one firing series, not several")


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: Sequence[tuple[str, str]]  # (query template, legend as Grafana reads it)
    unit: str
    size: tuple[int, int] = (12, 8)  # width of 24 columns, height
    when: Predicate = always
    # The bound the alert compares with, drawn on the panel (red step, dashed line).
    threshold: Callable[[Monitor], float | None] = lambda monitor: None
    kind: str = "timeseries"
    mappings: Sequence[Mapping[str, Any]] = ()

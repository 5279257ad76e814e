"""The monitor's report, typed: `mlops-monitor-report`, schema version 1.

The monitor builds it (monitor/checks.py), the rollback and retraining add their sections,
and it is written once, as reports/monitor/report-<time>.json and latest.json, by
`to_json`. The dashboard, the Prometheus textfile, the webhook alerts and the rollback
triggers read its attributes. Past reports are read back with `from_json`, which accepts
every report this runtime ever wrote: reports before the schema had a version, and before
the traffic counted client errors, the reference named its model version, or the feature
freshness, gates, rollback and retraining sections existed, read with those attributes None.

`schema_version` is the JSON key `version` (every report since the first holds
`"schema": "mlops-monitor-report", "version": 1`); a change that an older reader would
misread bumps it. Every attribute may be None (or empty) in a report read from a file: a
section with nothing to say (level 0 has no drift, a missing reference, no labels yet) is null.
Sections whose keys depend on what was measured (a drift verdict, the live metric, a feature
view's freshness) keep the keys they were built with, so a report written, read and written
again is the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_runtime.json_records import OMIT_NONE, Record, json_key

REPORT_SCHEMA = "mlops-monitor-report"
REPORT_VERSION = 1
# The monitor's exit code for each status (docs/runtime-exit-codes.md).
EXIT_CODES = {"ok": 0, "warning": 1, "alert": 3}


@dataclass(frozen=True)
class Violation(Record):
    check: str | None = None
    feature: str | None = None
    observed: Any = None
    threshold: Any = None
    severity: str | None = None  # "warning" | "alert"
    description: str | None = None


@dataclass(frozen=True)
class Problem(Record):
    """Input the monitor could not use (an empty window, a corrupt log, a missing reference)."""

    status: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Window(Record):
    kind: str | None = None  # "duration" | "records"
    duration_s: float | None = None
    records: int | None = None
    start: str | None = None  # ISO 8601 UTC
    end: str | None = None
    rows: int | None = None
    requests: int | None = None
    files: int | None = None


@dataclass(frozen=True)
class ServedModel(Record):
    name: str | None = None
    versions: Mapping[str, int] = field(default_factory=dict)  # rows served per version
    run_ids: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReferenceStatus(Record):
    status: str | None = None  # "ok" | "missing" | "unsupported" | "unreadable" | "not_used"
    path: str | None = None
    version: int | None = None  # the profile's format, not a model's
    run_id: str | None = None
    served_run_id: str | None = None
    rows: int | None = None
    model_version: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Traffic(Record):
    requests: int | None = None
    rows: int | None = None
    errors: int | None = None  # server errors (5xx)
    error_rate: float | None = None
    client_errors: int | None = None  # refused requests (4xx)
    client_error_rate: float | None = None
    latency_ms: Mapping[str, float] | None = None  # p50, p90, p95, p99, max


@dataclass(frozen=True)
class DriftVerdict(Record):
    """One column's (or the predictions') drift: drift.column_drift's verdict."""

    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    score_kind: str | None = None  # "p_value" (drifts below) | "distance" (drifts from)
    status: str | None = None
    kind: str | None = None  # "numeric" | "categorical"
    # The two distributions the dashboard draws: {"edges", "counts"} or {"counts": {...}}.
    reference: Mapping[str, Any] | None = None
    current: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DatasetDrift(Record):
    drifted_columns: int | None = None
    columns: int | None = None
    share: float | None = None
    drift_share: float | None = None
    drifted: bool | None = None


@dataclass(frozen=True)
class Drift(Record):
    status: str | None = None  # "ok" | "insufficient_rows"
    dataset: DatasetDrift | None = None
    features: Mapping[str, DriftVerdict] = field(default_factory=dict)
    rows: int | None = None  # with "insufficient_rows"
    min_rows: int | None = None


@dataclass(frozen=True)
class Predictions(Record):
    kind: str | None = None  # "classification" | "regression"
    class_shares: Mapping[str, float] | None = None
    reference_class_shares: Mapping[str, float] | None = None
    quantiles: Mapping[str, float] | None = None
    mean: float | None = None
    reference_quantiles: Mapping[str, float | None] | None = None
    drift: DriftVerdict | None = None


@dataclass(frozen=True)
class ColumnQuality(Record):
    rows: int | None = None
    null_rate: float | None = None
    max_null_fraction: float | None = None
    out_of_range: int | None = None
    unseen_categories: int | None = None
    unseen_values: Mapping[str, int] | None = None
    status: str | None = None


@dataclass(frozen=True)
class DataQuality(Record):
    columns: Mapping[str, ColumnQuality] = field(default_factory=dict)
    violations: int | None = None


@dataclass(frozen=True)
class Performance(Record):
    """The live metric on late labels (monitor/labels.py)."""

    metric: str | None = None
    min: float | None = None
    max: float | None = None
    min_samples: int | None = None
    baseline: float | None = None
    labelled: int | None = None
    value: float | None = None
    status: str | None = None  # "ok" | "no_labels" | "insufficient_samples" | "undefined"
    message: str | None = None


@dataclass(frozen=True)
class Kpi(Record):
    name: str | None = None
    kind: str | None = None
    value: float | None = None
    min: float | None = None
    max: float | None = None
    status: str | None = None  # "ok" | "violated" | "no_data"


@dataclass(frozen=True)
class OnlineStore(Record):
    type: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ViewFreshness(Record):
    newest: str | None = None
    newest_epoch: float | None = None
    age_s: float | None = None
    max_age_s: float | None = None
    source: str | None = None
    basis: str | None = None
    read_from: str | None = None
    status: str | None = None  # "ok" | "violated" | "not_materialised" | "unknown"


@dataclass(frozen=True)
class FeatureFreshness(Record):
    checked_at: str | None = None
    checked_at_epoch: float | None = None
    status: str | None = None  # "ok" | "violated" | "unavailable"
    message: str | None = None
    online_store: OnlineStore | None = None
    views: Mapping[str, ViewFreshness] = field(default_factory=dict)
    stale_views: list[str] | None = None


@dataclass(frozen=True)
class Grace(Record):
    counted: str | None = None  # "labelled" | "served"
    samples: int | None = None
    needed: int | None = None
    over: bool | None = None


@dataclass(frozen=True)
class TriggerJudgement(Record):
    trigger: str | None = None  # its label: `performance roc_auc < 0.9`
    on: str | None = None
    value: float | None = None
    samples: int | None = None
    min_samples: int | None = None
    fired: bool | None = None
    fired_in: int | None = None
    k: int | None = None
    n: int | None = None
    decides: bool | None = None


@dataclass(frozen=True)
class ArmJudgement(Record):
    version: str | None = None
    since: str | None = None
    since_epoch: float | None = None
    rows: int | None = None
    grace: Grace | None = None
    judged: list[TriggerJudgement] = field(default_factory=list)


@dataclass(frozen=True)
class RollbackAction(Record):
    """What the rollback did: the serving history's entry (its other keys kept as read)."""

    arm: str | None = None
    changed: bool | None = None
    event: str | None = None
    from_version: str | None = field(default=None, metadata=json_key("from"))
    to_version: str | None = field(default=None, metadata=json_key("to"))
    why: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RollbackSection(Record):
    arms: Mapping[str, ArmJudgement] = field(default_factory=dict)
    actions: list[RollbackAction] = field(default_factory=list)


@dataclass(frozen=True)
class MonitorReport(Record):
    schema: str | None = None
    schema_version: int | None = field(default=None, metadata=json_key("version"))
    name: str | None = None
    generated_at: str | None = None
    window: Window | None = None
    model: ServedModel | None = None
    reference: ReferenceStatus | None = None
    traffic: Traffic | None = None
    predictions: Predictions | None = None
    drift: Drift | None = None
    data_quality: DataQuality | None = None
    performance: Performance | None = None
    kpis: list[Kpi] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    status: str | None = None  # "ok" | "warning" | "alert"
    exit_code: int | None = None
    # Sections added by later steps of the monitor, absent when they did not run.
    feature_freshness: FeatureFreshness | None = field(default=None, metadata=OMIT_NONE)
    gates: Mapping[str, Any] | None = field(default=None, metadata=OMIT_NONE)
    rollback: RollbackSection | None = field(default=None, metadata=OMIT_NONE)
    retraining: Mapping[str, Any] | None = field(default=None, metadata=OMIT_NONE)

    def judged(self) -> MonitorReport:
        """The report with its status and exit code recomputed from its violations and
        problems (after a step added some)."""
        status = status_of(self.violations, self.problems)
        return self.replace(status=status, exit_code=EXIT_CODES[status])

    def with_problem(self, problem: Problem) -> MonitorReport:
        return self.replace(problems=[*self.problems, problem]).judged()

    def with_violations(self, violations: Sequence[Violation]) -> MonitorReport:
        return self.replace(violations=[*self.violations, *violations]).judged()

    @property
    def window_rows(self) -> int:
        return int((self.window.rows if self.window else None) or 0)

    @property
    def served_versions(self) -> Mapping[str, int]:
        return self.model.versions if self.model is not None else {}


def status_of(violations: Sequence[Violation], problems: Sequence[Problem]) -> str:
    """The worst verdict: an alert-severity violation alerts, anything else warns."""
    if any(v.severity == "alert" for v in violations):
        return "alert"
    if violations or problems:
        return "warning"
    return "ok"


def read_report(data: object) -> MonitorReport:
    """A report as read from a file (any version; see the module's docstring)."""
    return data if isinstance(data, MonitorReport) else MonitorReport.from_json(data)

"""Level-3 alerting files computed from config.json's `monitor` section: Prometheus alert
rules, their `promtool test rules` unit tests, a Grafana dashboard and its file-provisioning
config (see docs/monitoring-alerting.md).

Every function is pure and returns plain dicts and lists, laid out the same way on every
build. The templates print them whole through `yaml_document` / `json_document`, never as
Jinja text, so the Prometheus templates in annotations (`{{ $value }}`) reach the files as
written. What comes from the spec is escaped here for the two languages it lands in: PromQL
string literals (label matchers) and Go templates (alert labels and annotations, which
Prometheus expands).

Each alert is declared once with the scenario that proves it, so the rule tests cover every
alert of the rules file by construction: a firing case whose exact labels and expanded
annotations are computed from the same parts as the rule's templates, and a quiet case.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RULES_FILE = "alert-rules.yml"
# Where alert annotations point when no runbook URL is configured: the runbook section of
# the generated project's README, one heading per alert name (`README.md#<alertname>`, the
# anchor GitHub and GitLab give a heading). A `runbook_base` key in the monitor section (an
# absolute URL) replaces it, as `<runbook_base>/<AlertName>`.
RUNBOOK_BASE = "README.md#"

# What to look at first when an alert fires: the generated README's runbook.
RUNBOOK = {
    "MlopsMonitorStale": "The monitor stage has not run on schedule. Check the scheduler (CronJob, CI schedule) and the last run's output; run python -m mlops_runtime monitor by hand.",
    "MlopsMonitorFailing": "The last monitor report has an alert-severity violation. Open reports/monitor/latest.json (or dashboard.html): its violations say which check failed.",
    "MlopsPredictionLogDropping": "The server drops prediction-log lines (queue full or disk error): monitoring sees less than was served. Check free disk space and serving.prediction_log.",
    "MlopsDatasetDrift": "At least drift_share of the features drifted. Compare the reference and current distributions in dashboard.html; if the new population is the real one, retrain on fresh data.",
    "MlopsFeatureDrift": "One feature's distribution moved. Check the upstream source of that column (a schema or unit change) before retraining.",
    "MlopsPredictionDrift": "The distribution of predictions moved. Look for input drift first; if inputs are stable, the model is seeing a different mix of cases.",
    "MlopsModelMetricLow": "The live metric on labelled predictions passed its bound. Compare with the baseline in the report; roll back to the previous model or retrain.",
    "MlopsModelMetricHigh": "The live error metric passed its bound. Compare with the baseline in the report; roll back to the previous model or retrain.",
    "MlopsLatencyP99High": "p99 latency of the serving app is over its bound. Check CPU saturation, batch sizes and serving.workers; scale out if load grew.",
    "MlopsErrorRateHigh": "The serving app answers 5xx. Its log carries each failed request id with a traceback.",
    "MlopsFeatureStale": "A feature view's newest online value is older than its max_age, or the view was never materialised: requests are answered from old features. Run python -m mlops_runtime features-materialize and check the view's source.",
    "MlopsKpiOutOfBounds": "A business KPI left its bounds. The report's kpis hold the value and bounds; check whether the model or the business changed.",
}
# Grafana reads the dashboard JSON from here (the provisioning file's provider path).
DASHBOARDS_DIR = "/etc/grafana/dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
GRAFANA_SCHEMA_VERSION = 39

# The window a firing case's condition has held for when it is evaluated: past every `for:`
# below (15m at most) with room for rate() and increase() to see two samples.
_EVAL_MINUTES = 30
_SAMPLES = 40  # one a minute, beyond the evaluation time so no series goes stale before it
# Ten minutes of 5xx or slow requests over a 5m rate: a deploy or a cold start's first slow
# requests do not page, a real regression pages within a quarter of an hour.
_LIVE_FOR = "10m"
# The monitor's gauges only change when a run ends, so a few scrapes of the same value is
# confirmation enough; waiting for a second run would delay every page by a whole schedule.
_MONITOR_FOR = "5m"
# The staleness bound already allows three windows; the extra time covers a long run whose
# timestamp is only written when it finishes.
_STALE_FOR = "15m"
_DEFAULT_WINDOW_S = 3600  # a window counted in records has no duration: assume hourly runs


# -- escaping --------------------------------------------------------------------------------


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal: nothing in `value` can end the label matcher."""
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _matcher(**labels: str) -> str:
    return "{" + ",".join(f"{k}={promql_string(v)}" for k, v in labels.items()) + "}"


# The endpoint labels of the server's prediction requests (the runtime's
# _PREDICTION_ENDPOINTS: /predict, /invocations, /v2/models/{name}/infer). The live error rate
# and latency are the predictions', as the monitor's are: the scrapes of /metrics and the
# probes of /ready, /ping and /health are not predictions, and a not-ready server's 503s to
# its probes must not page (nor its fast 200s dilute a real error rate or p99).
PREDICTION_ENDPOINTS = "/predict|/invocations|/v2/models/.+/infer"


def _predictions(name: str, status: str) -> str:
    """The selector of the prediction requests of job `name` whose status matches `status`
    (a label matcher's operator and value, e.g. `=~"5.."`)."""
    return (
        "{job=" + promql_string(name) + ",endpoint=~" + promql_string(PREDICTION_ENDPOINTS)
        + ",status" + status + "}"
    )  # fmt: skip


def _server_errors(name: str) -> str:
    return _predictions(name, '=~"5.."')


def _answered(name: str) -> str:
    """The error rate's denominator: prediction requests less client errors (4xx), as the
    monitor's error_rate: a flood of bad requests neither raises nor dilutes it."""
    return _predictions(name, '!~"4.."')


def _served(name: str) -> str:
    """The latency's requests: answered predictions (a 4xx or 5xx says nothing of how long
    the model takes, and a not-ready server's 503s are fast)."""
    return _predictions(name, '="200"')


def template_literal(text: str) -> str:
    """Text for a Prometheus (Go) template that expands to itself: only `{{` opens an action,
    so each one is printed by an action of its own."""
    return text.replace("{{", '{{ "{{" }}')


def _bound(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"alert bound {value!r} is not a finite number")
    return float(value)


def _number(value: float) -> str:
    """A number as PromQL, the series notation and readers of the annotations write it."""
    value = _bound(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- annotation text: one source for the rule's template and the test's expansion ------------


@dataclass(frozen=True)
class _Value:
    """`$value` formatted by printf; Go and Python round these verbs alike."""

    verb: str


@dataclass(frozen=True)
class _Label:
    """A label of the alerting series, e.g. the drifted feature."""

    name: str


_Part = str | _Value | _Label


def _template(parts: Sequence[_Part]) -> str:
    out = []
    for part in parts:
        if isinstance(part, _Value):
            out.append(f'{{{{ $value | printf "{part.verb}" }}}}')
        elif isinstance(part, _Label):
            out.append(f"{{{{ $labels.{part.name} }}}}")
        else:
            out.append(template_literal(part))
    return "".join(out)


def _expanded(parts: Sequence[_Part], value: float, labels: Mapping[str, str]) -> str:
    out = []
    for part in parts:
        if isinstance(part, _Value):
            out.append(part.verb % value)
        elif isinstance(part, _Label):
            out.append(labels[part.name])
        else:
            out.append(part)
    return "".join(out)


@dataclass(frozen=True)
class _Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: Sequence[_Part]
    description: Sequence[_Part]
    # Input series of the test cases, as (series notation, values in promtool's notation).
    firing: Sequence[tuple[str, str]]
    quiet: Sequence[tuple[str, str]]
    # The firing case's $value at the evaluation time and the labels its series carry.
    value: float
    series_labels: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # beyond severity and model


def _stale_bound(monitor: Mapping[str, Any]) -> int:
    window_s = (monitor.get("window") or {}).get("duration_s") or _DEFAULT_WINDOW_S
    return max(3 * int(window_s), 3600)


def _bounds_text(low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"min {_number(low)}")
    if high is not None:
        parts.append(f"max {_number(high)}")
    return ", ".join(parts)


def _alerts(name: str, monitor: Mapping[str, Any]) -> list[_Alert]:
    model = _matcher(model=name)
    job = _matcher(job=name)
    const = f"x{_SAMPLES}"
    alerts: list[_Alert] = []

    bound = _stale_bound(monitor)
    stamp = f"mlops_monitor_last_run_timestamp_seconds{model}"
    alerts.append(
        _Alert(
            "MlopsMonitorStale",
            f"time() - {stamp} > {bound}",
            _STALE_FOR,
            "warning",
            ["The monitor of ", name, f" has not run for over {_duration(bound)}"],
            [
                "The last monitor run of ",
                name,
                " finished ",
                _Value("%.0f"),
                f" s ago, more than {bound} s (three windows): drift, performance and KPI "
                "alerts see nothing new until it runs again. Check the scheduler and the "
                "monitor stage's log.",
            ],
            # promtool's clock starts at 0: a run stamped before it is already too old, and a
            # stamp that keeps up with the clock is never old.
            firing=[(stamp, f"{-(bound + 60)}{const}")],
            quiet=[(stamp, f"0+60x{_SAMPLES}")],
            value=_EVAL_MINUTES * 60 + bound + 60,
            series_labels={"model": name},
        )
    )
    status = f"mlops_monitor_status{model}"
    alerts.append(
        _Alert(
            "MlopsMonitorFailing",
            f"{status} == 2",
            _MONITOR_FOR,
            "critical",
            ["The monitor of ", name, " reports an alert"],
            [
                "mlops_monitor_status of ",
                name,
                " is ",
                _Value("%.0f"),
                " (2 = alert): at least one check of the last monitor run failed; the run's "
                "report in reports/monitor/ says which.",
            ],
            firing=[(status, f"2{const}")],
            quiet=[(status, f"1{const}")],  # a warning is not a failure
            value=2,
            series_labels={"model": name},
        )
    )

    drift = monitor.get("drift")
    if drift:
        dataset = f"mlops_monitor_dataset_drift{model}"
        alerts.append(
            _Alert(
                "MlopsDatasetDrift",
                f"{dataset} == 1",
                _MONITOR_FOR,
                "warning",
                ["Dataset drift on ", name],
                [
                    "The share of drifted features of ",
                    name,
                    f" reached its dataset-drift bound ({_number(drift['drift_share'])}) in "
                    "the last window (mlops_monitor_dataset_drift = ",
                    _Value("%.0f"),
                    ").",
                ],
                firing=[(dataset, f"1{const}")],
                quiet=[(dataset, f"0{const}")],
                value=1,
                series_labels={"model": name},
            )
        )
        feature_labels = {"model": name, "feature": "example_feature"}
        feature = "mlops_monitor_feature_drifted" + _matcher(**feature_labels)
        alerts.append(
            _Alert(
                "MlopsFeatureDrift",
                f"mlops_monitor_feature_drifted{model} == 1",
                _MONITOR_FOR,
                # One feature drifting is common and often harmless; the dataset verdict and
                # the metric are what warn and page.
                "info",
                ["Feature ", _Label("feature"), " of ", name, " drifted"],
                [
                    "Feature ",
                    _Label("feature"),
                    " of ",
                    name,
                    " drifted from the reference profile in the last window "
                    "(mlops_monitor_feature_drifted = ",
                    _Value("%.0f"),
                    "); the dashboard's drift panel shows its score against the threshold.",
                ],
                firing=[(feature, f"1{const}")],
                quiet=[(feature, f"0{const}")],
                value=1,
                series_labels=feature_labels,
            )
        )
        predictions = f"mlops_monitor_prediction_drifted{model}"
        alerts.append(
            _Alert(
                "MlopsPredictionDrift",
                f"{predictions} == 1",
                _MONITOR_FOR,
                "warning",
                ["Prediction drift on ", name],
                [
                    "The distribution of the predictions of ",
                    name,
                    " moved away from the reference's in the last window "
                    "(mlops_monitor_prediction_drifted = ",
                    _Value("%.0f"),
                    ").",
                ],
                firing=[(predictions, f"1{const}")],
                quiet=[(predictions, f"0{const}")],
                value=1,
                series_labels={"model": name},
            )
        )

    performance = monitor.get("performance")
    if performance:
        metric = str(performance["metric"])
        metric_labels = {"model": name, "metric": metric}
        series = "mlops_monitor_metric" + _matcher(**metric_labels)
        for alert, op, key, word in (
            ("MlopsModelMetricLow", "<", "min", "below"),
            ("MlopsModelMetricHigh", ">", "max", "above"),
        ):
            if performance.get(key) is None:
                continue
            limit = _bound(performance[key])
            # Just across the bound fires; exactly on it does not (the comparison is strict).
            step = max(abs(limit) * 0.1, 0.01)
            crossed = limit - step if op == "<" else limit + step
            alerts.append(
                _Alert(
                    alert,
                    f"{series} {op} {_number(limit)}",
                    _MONITOR_FOR,
                    "critical",
                    [metric, " of ", name, f" {word} {_number(limit)}"],
                    [
                        "Live ",
                        metric,
                        " of ",
                        name,
                        " is ",
                        _Value("%.3f"),
                        f", {word} its bound {_number(limit)}, on the labelled predictions of "
                        "the last window.",
                    ],
                    firing=[(series, f"{_number(crossed)}{const}")],
                    quiet=[(series, f"{_number(limit)}{const}")],
                    value=crossed,
                    series_labels=metric_labels,
                )
            )

    latency = monitor.get("latency")
    if latency:
        p99_ms = _bound(latency["p99_ms"])
        bucket = "mlops_request_latency_seconds_bucket"
        # Every request in one bucket (0, b]: the p99 interpolates to 0.99 b. For the firing
        # case b is chosen so that 0.99 b is a whole number of milliseconds above the bound,
        # which the description prints without rounding doubt.
        fire_ms = math.ceil(2 * p99_ms)
        fire_le = _number(fire_ms / 990)
        quiet_le = _number(p99_ms / 2000)
        counter = f"0+60x{_SAMPLES}"
        served = {"job": name, "endpoint": "/predict", "status": "200"}
        alerts.append(
            _Alert(
                "MlopsLatencyP99High",
                f"histogram_quantile(0.99, sum by (le) (rate({bucket}{_served(name)}[5m]))) "
                f"* 1000 > {_number(p99_ms)}",
                _LIVE_FOR,
                "warning",
                ["p99 latency of ", name, f" above {_number(p99_ms)} ms"],
                [
                    "The p99 request latency of ",
                    name,
                    " is ",
                    _Value("%.1f"),
                    f" ms over the last 5 minutes, above its bound of {_number(p99_ms)} ms.",
                ],
                firing=[
                    (bucket + _matcher(**served, le=fire_le), counter),
                    (bucket + _matcher(**served, le="+Inf"), counter),
                ],
                quiet=[
                    (bucket + _matcher(**served, le=quiet_le), counter),
                    (bucket + _matcher(**served, le="+Inf"), counter),
                ],
                value=fire_ms,
            )
        )

    error_rate = monitor.get("error_rate")
    if error_rate:
        limit = _bound(error_rate["max"])
        requests = "mlops_requests_total"
        errors = requests + _matcher(job=name, endpoint="/predict", status="500")
        ok = requests + _matcher(job=name, endpoint="/predict", status="200")
        # What the rule leaves out, ten times the predictions a minute: client errors and
        # scrapes in the firing case (they would dilute the share under the bound), a
        # not-ready server's probes answered 503 in the quiet one (they would raise it over).
        refused = (
            requests + _matcher(job=name, endpoint="/predict", status="422"),
            f"0+1000x{_SAMPLES}",
        )
        scraped = (
            requests + _matcher(job=name, endpoint="/metrics", status="200"),
            f"0+1000x{_SAMPLES}",
        )
        probed = (
            requests + _matcher(job=name, endpoint="/ready", status="503"),
            f"0+1000x{_SAMPLES}",
        )
        # Requests a minute out of 100: the firing share is a whole percentage above the bound
        # (all of them when the bound is that high), the quiet one at most half of it.
        failing = min(100, math.floor(limit * 100) + 10)
        quiet = math.floor(limit * 50)
        alerts.append(
            _Alert(
                "MlopsErrorRateHigh",
                f"sum(rate({requests}{_server_errors(name)}[5m])) / "
                f"sum(rate({requests}{_answered(name)}[5m])) > {_number(limit)}",
                _LIVE_FOR,
                "critical",
                ["Error rate of ", name, f" above {_number(limit)}"],
                [
                    "The share of 5xx responses of ",
                    name,
                    " is ",
                    _Value("%.3f"),
                    f" over the last 5 minutes, above its bound {_number(limit)}.",
                ],
                firing=[
                    (errors, f"0+{failing}x{_SAMPLES}"),
                    (ok, f"0+{100 - failing}x{_SAMPLES}"),
                    refused,
                    scraped,
                ],
                quiet=[
                    (errors, f"0+{quiet}x{_SAMPLES}"),
                    (ok, f"0+{100 - quiet}x{_SAMPLES}"),
                    probed,
                ],
                value=failing / 100,
            )
        )

    # One rule per KPI, all named MlopsKpiOutOfBounds and told apart by their `kpi` label:
    # routes, silences and the runbook entry stay the same whatever a KPI is called, and no
    # KPI name has to be turned into an alert name.
    for kpi in sorted(monitor.get("kpis") or (), key=lambda k: str(k["name"])):
        kpi_name = str(kpi["name"])
        kpi_labels = {"model": name, "kpi": kpi_name}
        series = "mlops_monitor_kpi_ok" + _matcher(**kpi_labels)
        alerts.append(
            _Alert(
                "MlopsKpiOutOfBounds",
                f"{series} == 0",
                _MONITOR_FOR,
                "warning",
                ["KPI ", _Label("kpi"), " of ", name, " out of bounds"],
                [
                    "KPI ",
                    _Label("kpi"),
                    " of ",
                    name,
                    f" left its bounds ({_bounds_text(kpi.get('min'), kpi.get('max'))}) in the "
                    "last window (mlops_monitor_kpi_ok = ",
                    _Value("%.0f"),
                    "); the dashboard's KPI panel shows its value.",
                ],
                firing=[(series, f"0{const}")],
                quiet=[(series, f"1{const}")],
                value=0,
                series_labels=kpi_labels,
                labels={"kpi": kpi_name},
            )
        )

    # One rule for every view, told apart by the series' own `view` label.
    views = list(monitor.get("feature_views") or ())
    if views:
        fresh_labels = {"model": name, "view": str(views[0])}
        fresh = "mlops_monitor_feature_fresh" + _matcher(**fresh_labels)
        alerts.append(
            _Alert(
                "MlopsFeatureStale",
                f"mlops_monitor_feature_fresh{model} == 0",
                _MONITOR_FOR,
                "critical",
                ["Feature view ", _Label("view"), " of ", name, " is stale"],
                [
                    "The newest online value of feature view ",
                    _Label("view"),
                    " of ",
                    name,
                    " is older than its max_age, or the view was never materialised "
                    "(mlops_monitor_feature_fresh = ",
                    _Value("%.0f"),
                    "); the report's feature_freshness holds its age and bound.",
                ],
                firing=[(fresh, f"0{const}")],
                quiet=[(fresh, f"1{const}")],
                value=0,
                series_labels=fresh_labels,
            )
        )

    dropped = f"mlops_prediction_log_dropped_total{job}"
    alerts.append(
        _Alert(
            "MlopsPredictionLogDropping",
            f"increase({dropped}[15m]) > 0",
            _MONITOR_FOR,
            "warning",
            ["The server of ", name, " is dropping prediction log entries"],
            [
                "The server of ",
                name,
                " dropped ",
                _Value("%.0f"),
                " prediction log entries in the last 15 minutes (queue full or disk error): "
                "the monitor's windows miss those predictions.",
            ],
            firing=[(dropped, f"0+1x{_SAMPLES}")],
            quiet=[(dropped, f"0{const}")],
            value=15,  # one drop a minute over 15 minutes
            series_labels={"job": name},
        )
    )
    return alerts


def _runbook(monitor: Mapping[str, Any]) -> str:
    base = monitor.get("runbook_base")
    return str(base).rstrip("/") + "/" if base else RUNBOOK_BASE


def runbook_url(base: str, alert: str) -> str:
    return f"{base}{alert.lower()}" if base == RUNBOOK_BASE else f"{base}{alert}"


def runbook_entries(name: str, monitor: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(alert, severity, what to check) for each alert the rules file holds, once per name."""
    seen: dict[str, tuple[str, str, str]] = {}
    for a in _alerts(name, monitor):
        seen.setdefault(a.name, (a.name, a.severity, RUNBOOK.get(a.name, "")))
    return list(seen.values())


def _rule_labels(name: str, alert: _Alert) -> dict[str, str]:
    return {"severity": alert.severity, "model": name, **alert.labels}


def _annotations(alert: _Alert, runbook: str) -> dict[str, list[_Part]]:
    return {
        "summary": list(alert.summary),
        "description": list(alert.description),
        "runbook_url": [runbook_url(runbook, alert.name)],
    }


def alert_rules(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The Prometheus rules file: one group `mlops-<name>` with the always-on alerts and one
    per check the monitor declares."""
    runbook = _runbook(monitor)
    rules = [
        {
            "alert": a.name,
            "expr": a.expr,
            "for": a.for_,
            "labels": {k: template_literal(v) for k, v in _rule_labels(name, a).items()},
            "annotations": {k: _template(v) for k, v in _annotations(a, runbook).items()},
        }
        for a in _alerts(name, monitor)
    ]
    return {"groups": [{"name": f"mlops-{name}", "rules": rules}]}


def rule_tests(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The `promtool test rules` file of `alert_rules`: a firing and a quiet case per alert."""
    runbook = _runbook(monitor)
    tests: list[dict[str, Any]] = []
    for a in _alerts(name, monitor):
        # Rules sharing an alert name (the KPIs) are told apart by their own labels.
        title = " ".join([a.name, *(f"{k}={v}" for k, v in a.labels.items())])
        labels = {**a.series_labels, **_rule_labels(name, a)}
        expected = {
            "exp_labels": labels,
            "exp_annotations": {
                k: _expanded(v, a.value, a.series_labels)
                for k, v in _annotations(a, runbook).items()
            },
        }
        for case, series, exp_alerts in (
            ("fires", a.firing, [expected]),
            ("stays quiet", a.quiet, []),
        ):
            tests.append(
                {
                    "name": f"{title} {case}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in series],
                    "alert_rule_test": [
                        {
                            "eval_time": f"{_EVAL_MINUTES}m",
                            "alertname": a.name,
                            "exp_alerts": exp_alerts,
                        }
                    ],
                }
            )
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


# -- Grafana ---------------------------------------------------------------------------------

_UID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_UID_MAX = 40  # Grafana's limit


def dashboard_uid(name: str) -> str:
    """`mlops-<name>` when that is a valid Grafana uid, else a readable prefix and a hash."""
    uid = f"mlops-{name}"
    if len(uid) <= _UID_MAX and not _UID_CHARS.search(name):
        return uid
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"mlops-{_UID_CHARS.sub('-', name)[: _UID_MAX - 17]}-{digest}"


def _thresholds(value: float | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if value is not None:
        steps.append({"color": "red", "value": value})
    return {"mode": "absolute", "steps": steps}


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


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    title: str,
    description: str,
    targets: Sequence[tuple[str, str]],
    unit: str,
    threshold: float | None = None,
    kind: str = "timeseries",
    mappings: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": _thresholds(threshold),
        "mappings": [dict(m) for m in mappings],
    }
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "showPoints": "never",
            # The declared bound as a dashed line, the same number the alert compares with.
            "thresholdsStyle": {"mode": "off" if threshold is None else "dashed"},
        }
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        options = {
            "colorMode": "background",
            "graphMode": "none",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value",
        }
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            _target(chr(ord("A") + i), expr, legend) for i, (expr, legend) in enumerate(targets)
        ],
    }


def _layout(panels: list[tuple[int, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Ids 1, 2, ... in order and grid positions left to right, top to bottom (24 columns)."""
    out = []
    x = y = row_h = 0
    for i, (w, h, panel) in enumerate(panels, start=1):
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"id": i, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel})
        x, row_h = x + w, max(row_h, h)
    return out


def grafana_dashboard(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """A Grafana dashboard of the live server (request, error, latency and prediction rates)
    and of the monitor's gauges; panels of undeclared checks are left out."""
    job = _matcher(job=name)
    model = _matcher(model=name)
    rate = "[$__rate_interval]"
    bucket = f"sum by (le) (rate(mlops_request_latency_seconds_bucket{_served(name)}{rate}))"
    latency = monitor.get("latency") or {}
    error_rate = monitor.get("error_rate") or {}
    panels: list[tuple[int, int, dict[str, Any]]] = [
        (
            8,
            4,
            _panel(
                "Monitor status",
                "0 ok, 1 warning, 2 alert: the worst verdict of the last monitor run.",
                [(f"mlops_monitor_status{model}", "status")],
                "none",
                threshold=2,
                kind="stat",
                mappings=_STATUS_MAPPINGS,
            ),
        ),
        (
            8,
            4,
            _panel(
                "Since the last monitor run",
                "MlopsMonitorStale fires above the red step.",
                [(f"time() - mlops_monitor_last_run_timestamp_seconds{model}", "age")],
                "s",
                threshold=_stale_bound(monitor),
                kind="stat",
            ),
        ),
        (
            8,
            4,
            _panel(
                "Rows in the last window",
                "Prediction log rows the last monitor run looked at.",
                [(f"mlops_monitor_window_rows{model}", "rows")],
                "short",
                kind="stat",
            ),
        ),
        (
            12,
            8,
            _panel(
                "Requests per second",
                "All endpoints, by HTTP status.",
                [(f"sum by (status) (rate(mlops_requests_total{job}{rate}))", "{{status}}")],
                "reqps",
            ),
        ),
        (
            12,
            8,
            _panel(
                "Error rate",
                "Share of 5xx responses among prediction requests less client errors (4xx), "
                "as MlopsErrorRateHigh counts; the line is the declared bound.",
                [
                    (
                        f"sum(rate(mlops_requests_total{_server_errors(name)}{rate})) / "
                        f"sum(rate(mlops_requests_total{_answered(name)}{rate}))",
                        "5xx share",
                    )
                ],
                "percentunit",
                threshold=error_rate.get("max"),
            ),
        ),
        (
            12,
            8,
            _panel(
                "Latency p50 / p99",
                "Answered prediction requests, from the request latency histogram; the line is the "
                "declared p99 bound.",
                [
                    (f"histogram_quantile(0.5, {bucket}) * 1000", "p50"),
                    (f"histogram_quantile(0.99, {bucket}) * 1000", "p99"),
                ],
                "ms",
                threshold=latency.get("p99_ms"),
            ),
        ),
        (
            12,
            8,
            _panel(
                "Predictions per second by class",
                "By predicted class (classification models).",
                [
                    (
                        f"sum by (prediction) (rate(mlops_predictions_total{job}{rate}))",
                        "{{prediction}}",
                    )
                ],
                "short",
            ),
        ),
    ]
    drift = monitor.get("drift")
    if drift:
        panels += [
            (
                12,
                8,
                _panel(
                    "Drift score per feature",
                    "Each feature's drift score and the threshold its method compares it with.",
                    [
                        (f"mlops_monitor_drift_score{model}", "{{feature}} ({{method}})"),
                        (f"mlops_monitor_drift_threshold{model}", "{{feature}} threshold"),
                    ],
                    "short",
                ),
            ),
            (
                12,
                8,
                _panel(
                    "Drifted feature share",
                    "Share of drifted features; the line is the dataset-drift bound.",
                    [(f"mlops_monitor_drifted_share{model}", "drifted share")],
                    "percentunit",
                    threshold=drift.get("drift_share"),
                ),
            ),
        ]
    performance = monitor.get("performance")
    if performance:
        bound = performance.get("min")
        panels.append(
            (
                12,
                8,
                _panel(
                    "Live metric vs baseline",
                    "The metric on late labels against the champion's training baseline.",
                    [
                        (f"mlops_monitor_metric{model}", "{{metric}} live"),
                        (f"mlops_monitor_metric_baseline{model}", "{{metric}} baseline"),
                    ],
                    "short",
                    threshold=bound if bound is not None else performance.get("max"),
                ),
            )
        )
    if monitor.get("kpis"):
        panels.append(
            (
                12,
                8,
                _panel(
                    "KPIs",
                    "Each declared KPI over the monitor's windows.",
                    [(f"mlops_monitor_kpi{model}", "{{kpi}}")],
                    "short",
                ),
            )
        )
    panels.append(
        (
            12,
            8,
            _panel(
                "Null rate per feature",
                "Share of missing values per feature in the last window.",
                [(f"mlops_monitor_null_rate{model}", "{{feature}}")],
                "percentunit",
            ),
        )
    )
    return {
        "annotations": {"list": []},
        "description": f"Serving and monitoring of {name} (generated by mlops-compiler).",
        "editable": False,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": _layout(panels),
        "refresh": "1m",
        "schemaVersion": GRAFANA_SCHEMA_VERSION,
        "tags": ["mlops"],
        "templating": {
            "list": [
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": f"mlops {name}",
        "uid": dashboard_uid(name),
        "version": 1,
    }


def grafana_provisioning(name: str) -> dict[str, Any]:
    """A Grafana dashboards provider reading `<DASHBOARDS_DIR>/<name>/` (put it in
    /etc/grafana/provisioning/dashboards/)."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": f"mlops-{name}",
                "orgId": 1,
                "folder": "mlops",
                "type": "file",
                "disableDeletion": False,
                # The spec is the source: edits made in the UI would be lost on the next build.
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{DASHBOARDS_DIR}/{name}", "foldersFromFilesStructure": False},
            }
        ],
    }


def alerting_context(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The render context's `alerting` entry, as the monitoring templates read it."""
    return {
        "rules": alert_rules(name, monitor),
        "rule_tests": rule_tests(name, monitor),
        "dashboard": grafana_dashboard(name, monitor),
        "provisioning": grafana_provisioning(name),
        "runbook": runbook_entries(name, monitor),
    }


__all__ = [
    "RULES_FILE",
    "RUNBOOK_BASE",
    "alert_rules",
    "alerting_context",
    "dashboard_uid",
    "grafana_dashboard",
    "grafana_provisioning",
    "promql_string",
    "rule_tests",
    "template_literal",
]

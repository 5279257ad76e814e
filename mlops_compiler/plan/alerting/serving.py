"""The live server, from its own /metrics (scrape job `<name>`): latency and error rate of the
prediction requests (`monitors.latency`, `monitors.error_rate`) and the prediction log the
monitor reads."""

from __future__ import annotations

import math
from collections.abc import Iterable

from mlops_compiler.plan.alerting.promql import bound, number
from mlops_compiler.plan.alerting.table import (
    LIVE_FOR,
    MONITOR_FOR,
    Alert,
    Facts,
    Monitor,
    Panel,
    Series,
    declared,
    setting,
)

_BUCKET = "mlops_request_latency_seconds_bucket"
_SERVED = {"job": "{name}", "endpoint": "/predict", "status": "200"}
_REQUESTS = "mlops_requests_total"
_COUNTER = "0+60x{samples}"
_FLOOD = "0+1000x{samples}"  # ten times the predictions a minute


def _latency(name: str, monitor: Monitor) -> Iterable[Facts]:
    p99_ms = bound(monitor["latency"]["p99_ms"])
    # Every request in one bucket (0, b]: the p99 interpolates to 0.99 b. For the firing case
    # b is chosen so that 0.99 b is a whole number of milliseconds above the bound, which the
    # description prints without rounding doubt.
    fire_ms = math.ceil(2 * p99_ms)
    yield {
        "p99": number(p99_ms),
        "fire_ms": str(fire_ms),
        "fire_le": number(fire_ms / 990),
        "quiet_le": number(p99_ms / 2000),
    }


def _error_rate(name: str, monitor: Monitor) -> Iterable[Facts]:
    limit = bound(monitor["error_rate"]["max"])
    # Requests a minute out of 100: the firing share is a whole percentage above the bound
    # (all of them when the bound is that high), the quiet one at most half of it.
    failing = min(100, math.floor(limit * 100) + 10)
    quiet = math.floor(limit * 50)
    yield {
        "limit": number(limit),
        "failing": str(failing),
        "failing_ok": str(100 - failing),
        "quiet": str(quiet),
        "quiet_ok": str(100 - quiet),
        "share": str(failing / 100),
    }


def _requests(endpoint: str, status: str, values: str) -> Series:
    return Series(_REQUESTS, {"job": "{name}", "endpoint": endpoint, "status": status}, values)


LATENCY = Alert(
    name="MlopsLatencyP99High",
    when=declared("latency"),
    facts=_latency,
    expr=(
        "histogram_quantile(0.99, sum by (le) (rate(mlops_request_latency_seconds_bucket{served}"
        "[5m]))) * 1000 > {p99}"
    ),
    for_=LIVE_FOR,
    severity="warning",
    summary="p99 latency of {name} above {p99} ms",
    description=(
        "The p99 request latency of {name} is {$value:%.1f} ms over the last 5 minutes, above "
        "its bound of {p99} ms."
    ),
    runbook=(
        "p99 latency of the serving app is over its bound. Check CPU saturation, batch sizes "
        "and serving.workers; scale out if load grew."
    ),
    firing=[
        Series(_BUCKET, {**_SERVED, "le": "{fire_le}"}, _COUNTER),
        Series(_BUCKET, {**_SERVED, "le": "+Inf"}, _COUNTER),
    ],
    quiet=[
        Series(_BUCKET, {**_SERVED, "le": "{quiet_le}"}, _COUNTER),
        Series(_BUCKET, {**_SERVED, "le": "+Inf"}, _COUNTER),
    ],
    value="{fire_ms}",
    carries_labels=False,
)

ERROR_RATE = Alert(
    name="MlopsErrorRateHigh",
    when=declared("error_rate"),
    facts=_error_rate,
    expr=(
        "sum(rate(mlops_requests_total{server_errors}[5m])) / "
        "sum(rate(mlops_requests_total{answered}[5m])) > {limit}"
    ),
    for_=LIVE_FOR,
    severity="critical",
    summary="Error rate of {name} above {limit}",
    description=(
        "The share of 5xx responses of {name} is {$value:%.3f} over the last 5 minutes, above "
        "its bound {limit}."
    ),
    runbook=(
        "The serving app answers 5xx. Its log carries each failed request id with a traceback."
    ),
    # Besides the predictions, what the rule leaves out: client errors and scrapes in the
    # firing case (they would dilute the share under the bound), a not-ready server's probes
    # answered 503 in the quiet one (they would raise it over).
    firing=[
        _requests("/predict", "500", "0+{failing}x{samples}"),
        _requests("/predict", "200", "0+{failing_ok}x{samples}"),
        _requests("/predict", "422", _FLOOD),
        _requests("/metrics", "200", _FLOOD),
    ],
    quiet=[
        _requests("/predict", "500", "0+{quiet}x{samples}"),
        _requests("/predict", "200", "0+{quiet_ok}x{samples}"),
        _requests("/ready", "503", _FLOOD),
    ],
    value="{share}",
    carries_labels=False,
)

LOG_DROPPING = Alert(
    name="MlopsPredictionLogDropping",
    expr="increase(mlops_prediction_log_dropped_total{job}[15m]) > 0",
    for_=MONITOR_FOR,
    severity="warning",
    summary="The server of {name} is dropping prediction log entries",
    description=(
        "The server of {name} dropped {$value:%.0f} prediction log entries in the last 15 "
        "minutes (queue full or disk error): the monitor's windows miss those predictions."
    ),
    runbook=(
        "The server drops prediction-log lines (queue full or disk error): monitoring sees "
        "less than was served. Check free disk space and serving.prediction_log."
    ),
    firing=[Series("mlops_prediction_log_dropped_total", {"job": "{name}"}, "0+1x{samples}")],
    quiet=[Series("mlops_prediction_log_dropped_total", {"job": "{name}"}, "0x{samples}")],
    value="15",  # one drop a minute over 15 minutes
)

PANELS = (
    Panel(
        title="Requests per second",
        description="All endpoints, by HTTP status.",
        targets=[
            ("sum by (status) (rate(mlops_requests_total{job}[$__rate_interval]))", "{{status}}")
        ],
        unit="reqps",
    ),
    Panel(
        title="Error rate",
        description=(
            "Share of 5xx responses among prediction requests less client errors (4xx), as "
            "MlopsErrorRateHigh counts; the line is the declared bound."
        ),
        targets=[
            (
                "sum(rate(mlops_requests_total{server_errors}[$__rate_interval])) / "
                "sum(rate(mlops_requests_total{answered}[$__rate_interval]))",
                "5xx share",
            )
        ],
        unit="percentunit",
        threshold=setting("error_rate", "max"),
    ),
    Panel(
        title="Latency p50 / p99",
        description=(
            "Answered prediction requests, from the request latency histogram; the line is the "
            "declared p99 bound."
        ),
        targets=[
            (
                "histogram_quantile(0.5, sum by (le) (rate("
                "mlops_request_latency_seconds_bucket{served}[$__rate_interval]))) * 1000",
                "p50",
            ),
            (
                "histogram_quantile(0.99, sum by (le) (rate("
                "mlops_request_latency_seconds_bucket{served}[$__rate_interval]))) * 1000",
                "p99",
            ),
        ],
        unit="ms",
        threshold=setting("latency", "p99_ms"),
    ),
    Panel(
        title="Predictions per second by class",
        description="By predicted class (classification models).",
        targets=[
            (
                "sum by (prediction) (rate(mlops_predictions_total{job}[$__rate_interval]))",
                "{{prediction}}",
            )
        ],
        unit="short",
    ),
)

"""Prometheus metrics of the serving app, exported at GET /metrics.

Label lookups (`.labels(...)`) cost microseconds, so the children used per request are cached
by their label tuple. With several server workers (PROMETHEUS_MULTIPROC_DIR set, see serve.py)
every worker writes its values to files there and /metrics sums them over all workers.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, task: str, feature_store: bool = False) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.task = task
        self.requests = Counter(
            "mlops_requests_total",
            "HTTP requests by endpoint, status and model version.",
            ["endpoint", "status", "model_version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_request_latency_seconds",
            "Request latency by endpoint, status and model version.",
            ["endpoint", "status", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlops_predictions_total",
            "Predictions made, by model version, A/B arm and predicted class (classification).",
            ["model_version", "arm", "prediction"],
            registry=self.registry,
        )
        self.prediction_value = Histogram(
            "mlops_prediction_value",
            "Distribution of predicted values (regression) by model version and A/B arm.",
            ["model_version", "arm"],
            buckets=(-1e6, -1e3, -100, -10, 0, 10, 50, 100, 150, 200, 300, 500, 1e3, 1e6),
            registry=self.registry,
        )
        self.violations = Counter(
            "mlops_input_violations_total",
            "Contract violations at the serving door, by column and check.",
            ["column", "check"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "mlops_prediction_log_dropped_total",
            "Predictions not written to the prediction log (queue full or disk error).",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "mlops_batch_size",
            "Rows per model call (micro-batches and batch requests).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_failures = Counter(
            "mlops_model_failures_total",
            "Model calls that failed (raised, NaN, wrong shape, timeout), by version and kind.",
            ["model_version", "kind"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mlops_model_info",
            "1 for each model being served, labelled with its arm, version and run id.",
            ["arm", "model", "model_version", "run_id"],
            registry=self.registry,
            # Across workers: 1 while any live worker serves that model.
            multiprocess_mode="livemax",
        )
        self._model_labels: list[tuple[str, str, str, str]] = []
        self.reloads = Counter(
            "mlops_model_reloads_total",
            "Model swaps after the registry alias moved.",
            ["arm"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[str, str, str], Any] = {}
        if feature_store:  # projects without a store export exactly what they did before
            self._feature_store_metrics()

    def _feature_store_metrics(self) -> None:
        self.lookup_rows = Histogram(
            "mlops_feature_lookup_rows",
            "Rows per read of the online feature store (concurrent requests share one).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.lookup_latency = Histogram(
            "mlops_feature_lookup_seconds",
            "Time of one read of the online feature store, derived features included.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stale_rows = Counter(
            "mlops_stale_features_total",
            "Rows whose view values were older than the view's ttl, by view (served under "
            "stale: serve, refused under stale: reject).",
            ["view"],
            registry=self.registry,
        )

    def observe_lookup(self, rows: int, seconds: float, stale: Tally[str]) -> None:
        self.lookup_rows.observe(rows)
        self.lookup_latency.observe(seconds)
        for view, count in stale.items():
            self.stale_rows.labels(view).inc(count)

    def observe_request(self, endpoint: str, status: int, version: str, seconds: float) -> None:
        key = (endpoint, status, version)
        children = self._request_children.get(key)
        if children is None:
            labels = (endpoint, str(status), version)
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(self, version: str, arm: str, labels: list[Any]) -> None:
        if self.task == "regression":
            child = self._prediction_children.get((version, arm, ""))
            if child is None:
                child = self.prediction_value.labels(version, arm)
                self._prediction_children[(version, arm, "")] = child
            for value in labels:
                child.observe(float(value))
            return
        for value, count in Tally(labels).items():
            key = (version, arm, str(value))
            child = self._prediction_children.get(key)
            if child is None:
                child = self.predictions.labels(*key)
                self._prediction_children[key] = child
            child.inc(count)

    def observe_violations(self, errors: list[dict[str, Any]]) -> None:
        for error in errors:
            self.violations.labels(str(error.get("column")), str(error.get("check"))).inc()

    def set_models(self, served: list[tuple[str, str, str, str | None]]) -> None:
        if self.multiprocess:
            # A worker's file keeps every label set it ever wrote (prometheus_client cannot
            # clear it): the models swapped out are set to 0 instead.
            for labels in self._model_labels:
                self.model_info.labels(*labels).set(0)
        else:
            self.model_info.clear()
        self._model_labels = [
            (arm, name, version, run_id or "") for arm, name, version, run_id in served
        ]
        for labels in self._model_labels:
            self.model_info.labels(*labels).set(1)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

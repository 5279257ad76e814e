"""A window's statistics, folded partition by partition so none needs the whole window.

Feature distributions become sketches on the reference's bins (sketches.py) and are
merged; data quality is counted against the same contract the training gate and the serving
door use; latencies, predictions and, when labels are configured, the (request id, row,
prediction) pairs to join are kept as compact arrays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime import sketches
from mlops_runtime.monitor.prediction_window import Partition

# The exact two-sample KS test keeps each numeric column's window values up to here; beyond
# it the binned statistic is used (docs/monitoring-drift.md).
KS_VALUES_CAP = 200_000


@dataclass
class QualityCounts:
    rows: int = 0
    nulls: int = 0
    below_min: int = 0
    above_max: int = 0
    unseen: Counter[str] = field(default_factory=Counter)
    missing: bool = True  # the column never appeared in the log


@dataclass
class WindowSummary:
    task: str
    features: list[str]
    categorical: set[str]
    contract: Mapping[str, Any]
    reference: Mapping[str, Any] | None  # the reference profile, or None (level 0 / missing)
    keep_values: set[str] = field(default_factory=set)  # columns tested with exact KS
    keep_pairs: bool = False  # labels configured: keep what the join needs
    rows: int = 0
    requests: int = 0  # served requests
    errors: int = 0  # server errors (5xx): the model or the server failed
    client_errors: int = 0  # client errors (4xx): the request was refused
    rejected: int = 0  # 422: the serving door's contract check refused the request
    partitions: int = 0
    latencies: list[np.ndarray] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    runs: Counter[str] = field(default_factory=Counter)
    run_versions: dict[str, Counter[str]] = field(default_factory=dict)  # run id: versions
    classes: Counter[str] = field(default_factory=Counter)
    predicted_values: list[np.ndarray] = field(default_factory=list)
    sketches: dict[str, dict[str, Any]] = field(default_factory=dict)
    prediction_sketch: dict[str, Any] | None = None
    quality: dict[str, QualityCounts] = field(default_factory=dict)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    kept_values: dict[str, int] = field(default_factory=dict)
    pairs: list[pd.DataFrame] = field(default_factory=list)
    start: float | None = None
    end: float | None = None

    def add(self, part: Partition) -> None:
        cols = part.columns
        self.partitions += 1
        status = cols["status"]
        ok = status < 400
        if not ok.all():
            # A failed request is one log line; a client error (4xx: unreadable, too large,
            # refused by the contract) says nothing about the model and is counted apart.
            ids = cols["request_id"]
            server = status >= 500
            self.errors += _requests(ids, server)
            self.client_errors += _requests(ids, ~ok & ~server)
            self.rejected += _requests(ids, status == 422)
        first_rows = np.asarray(cols.get("row", np.zeros(part.rows)), dtype="float64") == 0
        self.requests += int((first_rows & ok).sum())  # served requests; failures are errors
        self.latencies.append(np.asarray(cols["latency_ms"], dtype="float64")[first_rows])
        ts = cols["ts"]
        if len(ts):
            self.start = float(ts.min()) if self.start is None else min(self.start, ts.min())
            self.end = float(ts.max()) if self.end is None else max(self.end, ts.max())
        self.versions.update(_text_counts(cols["model_version"][ok]))
        if "run_id" in cols:
            runs = _text_counts(cols["run_id"][ok])
            runs.pop("None", None)
            self.runs.update(runs)
            self._add_run_versions(cols["run_id"][ok], cols["model_version"][ok])
        served = int(ok.sum())
        self.rows += served
        if not served:
            return
        prediction = cols.get("prediction")
        if prediction is not None:
            self._add_predictions(prediction[ok])
        for name in self.features:
            self._add_feature(name, cols.get(f"input.{name}"), ok)
        if self.keep_pairs and prediction is not None:
            frame = pd.DataFrame(
                {
                    "request_id": cols["request_id"][ok].astype(str),
                    "row": np.asarray(cols.get("row", np.zeros(part.rows)))[ok].astype("int64"),
                    "prediction": prediction[ok],
                }
            )
            if part.probabilities is not None:
                for i in range(part.probabilities.shape[1]):
                    frame[f"proba_{i}"] = part.probabilities[ok, i]
            self.pairs.append(frame)

    def _add_run_versions(self, runs: np.ndarray, versions: np.ndarray) -> None:
        if not len(runs):
            return
        pairs = pd.DataFrame({"run": np.asarray(runs), "version": np.asarray(versions)})
        for (run, version), count in pairs.value_counts(dropna=True).items():
            served = self.run_versions.setdefault(str(run), Counter())
            served[sketches.sketch_key(version)] += int(count)

    def version_of_run(self, run_id: object) -> str | None:
        """The model version that served `run_id`'s model in the window (the one that served
        most of its rows, should one run be registered twice), or None."""
        served = self.run_versions.get(str(run_id)) if run_id else None
        return served.most_common(1)[0][0] if served else None

    def _add_predictions(self, prediction: np.ndarray) -> None:
        reference = (self.reference or {}).get("predictions", {})
        if self.task == "regression":
            # A logged prediction that is no number (a line's text) is a null of the sketch and
            # left out of the quantiles and the mean, which would otherwise all be NaN.
            values = pd.to_numeric(pd.Series(prediction), errors="coerce").to_numpy("float64")
            self.predicted_values.append(values[np.isfinite(values)])
            ref = reference.get("sketch")
            if ref is not None:
                self._fold_prediction(sketches.numeric_against(ref, values))
            return
        self.classes.update(_text_counts(prediction))
        ref = reference.get("sketch")
        if ref is not None:
            self._fold_prediction(sketches.categorical_against(ref, prediction))

    def _fold_prediction(self, sketch: dict[str, Any]) -> None:
        previous = self.prediction_sketch
        self.prediction_sketch = sketch if previous is None else sketches.merge(previous, sketch)

    def _add_feature(self, name: str, column: np.ndarray | None, ok: np.ndarray) -> None:
        counts = self.quality.setdefault(name, QualityCounts())
        if column is None:
            return
        counts.missing = False
        values = column[ok]
        rule = self.contract.get("columns", {}).get(name, {})
        counts.rows += len(values)
        categorical = name in self.categorical or rule.get("type") in ("category", "str", "bool")
        if categorical:
            nulls = pd.isna(values)
            counts.nulls += int(nulls.sum())
            allowed = rule.get("values")
            if allowed is not None:
                known = {str(v) for v in allowed}
                seen = _text_counts(values[~nulls])  # distinct values, not rows, go through Python
                counts.unseen.update({k: c for k, c in seen.items() if k not in known})
        else:
            numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
            nulls = ~np.isfinite(numbers)
            counts.nulls += int(nulls.sum())
            if rule.get("min") is not None:
                counts.below_min += int((numbers < float(rule["min"])).sum())
            if rule.get("max") is not None:
                counts.above_max += int((numbers > float(rule["max"])).sum())
            values = numbers
        ref = ((self.reference or {}).get("features", {}).get(name) or {}).get("sketch")
        if ref is None:
            return
        sketch = (
            sketches.numeric_against(ref, values)
            if ref.get("kind") == "numeric"
            else sketches.categorical_against(ref, values)
        )
        previous = self.sketches.get(name)
        self.sketches[name] = sketch if previous is None else sketches.merge(previous, sketch)
        if name in self.keep_values:
            kept = self.kept_values.get(name, 0)
            if kept + len(values) <= KS_VALUES_CAP:
                self.values.setdefault(name, []).append(np.asarray(values, dtype="float64"))
                self.kept_values[name] = kept + len(values)
            else:
                self.kept_values[name] = KS_VALUES_CAP + 1  # too many: the binned test decides

    def current_values(self, name: str) -> np.ndarray | None:
        if self.kept_values.get(name, 0) > KS_VALUES_CAP or name not in self.values:
            return None
        return np.concatenate(self.values[name])

    def latency_percentiles(self) -> dict[str, float] | None:
        values = np.concatenate(self.latencies) if self.latencies else np.empty(0)
        values = values[np.isfinite(values)]
        if not len(values):
            return None
        levels = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "max": 100}
        got = np.percentile(values, list(levels.values()))
        return {k: round(float(v), 3) for k, v in zip(levels, got, strict=True)}

    def labelled_frame(self) -> pd.DataFrame | None:
        return pd.concat(self.pairs, ignore_index=True) if self.pairs else None


def _requests(ids: Any, mask: np.ndarray) -> int:
    """Failed requests among the masked lines: distinct ids, and each line without an id (a
    request refused before its id was read, a client that sent none) one request of its own,
    not all of them one."""
    if not mask.any():
        return 0
    chosen = ids[mask]
    missing = np.asarray(pd.isna(chosen), dtype=bool)
    return len(pd.unique(chosen[~missing])) + int(missing.sum())


def _text_counts(values: np.ndarray) -> Counter[str]:
    """Counts by text key (as sketches compare categories), without a loop over rows."""
    out: Counter[str] = Counter()
    for value, count in pd.Series(values).value_counts(dropna=False).items():
        out["None" if pd.isna(value) else sketches.sketch_key(value)] += int(count)
    return out

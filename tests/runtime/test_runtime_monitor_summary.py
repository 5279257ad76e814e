"""A window folded partition by partition: data-quality counts from the contract, sketches
that merge to the whole window's, and the checks built from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops_runtime import sketches
from mlops_runtime.config import DriftConfig, ErrorRateConfig, KpiConfig, ProjectConfig
from mlops_runtime.monitor.checks import Violations, build_monitor_report
from mlops_runtime.monitor.prediction_window import Partition
from mlops_runtime.monitor.window_summary import WindowSummary
from mlops_runtime.monitor_report import MonitorReport

REPO = Path(__file__).resolve().parents[2]


def config(**monitor: Any) -> ProjectConfig:
    """A generated project's config.json, its monitor as a level-1 classifier's with
    `monitor` set on top (a dict for a section is read as config.json holds it)."""
    base = ProjectConfig.from_json(
        json.loads((REPO / "generated" / "penguins" / "config.json").read_bytes())
    )
    sections = {"drift": DriftConfig, "error_rate": ErrorRateConfig}
    settings = {
        "min_rows": 1,
        "reference": False,
        "drift": None,
        "latency": None,
        "error_rate": None,
        "kpis": [],
        **{k: sections[k].from_json(v) if isinstance(v, dict) else v for k, v in monitor.items()},
    }
    return base.replace(name="p", monitor=base.monitor.replace(**settings))


CONTRACT = {
    "columns": {
        "island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]},
        "bill": {"type": "float", "min": 30.0, "max": 60.0, "max_null_fraction": 0.1},
        "species": {"type": "category", "values": ["Adelie", "Gentoo"]},
    }
}


def partition(island: list[Any], bill: list[float | None]) -> Partition:
    n = len(island)
    return Partition(
        Path("predictions-1.jsonl"),
        n,
        {
            "request_id": np.array([f"r{i}" for i in range(n)], dtype=object),
            "row": np.zeros(n, dtype="int64"),
            "ts": np.arange(n, dtype="float64"),
            "model_version": np.array(["1"] * n, dtype=object),
            "latency_ms": np.full(n, 2.0),
            "status": np.full(n, 200, dtype="int64"),
            "prediction": np.array(["Adelie"] * n, dtype=object),
            "input.island": np.array(island, dtype=object),
            "input.bill": np.array([np.nan if b is None else b for b in bill]),
        },
        None,
    )


def summary(reference: dict[str, Any] | None) -> WindowSummary:
    return WindowSummary(
        task="classification",
        features=["island", "bill"],
        categorical={"island"},
        contract=CONTRACT,
        reference=reference,
    )


def reference_profile(rng: np.random.Generator) -> dict[str, Any]:
    islands = rng.choice(np.array(["Biscoe", "Dream", "Torgersen"], dtype=object), 5000)
    return {
        "rows": 5000,
        "features": {
            "island": {"sketch": sketches.reference_categorical(islands)},
            "bill": {"sketch": sketches.reference_numeric(rng.normal(45, 5, 5000))},
        },
        "predictions": {"sketch": sketches.reference_categorical(np.array(["Adelie"] * 10))},
    }


def test_quality_counts_follow_the_contract() -> None:
    s = summary(None)
    s.add(partition(["Biscoe", "Atlantis", "Atlantis", None], [31.0, 70.0, None, 10.0]))
    q = s.quality
    assert q["island"].unseen == {"Atlantis": 2} and q["island"].nulls == 1
    assert (q["bill"].below_min, q["bill"].above_max, q["bill"].nulls) == (1, 1, 1)
    report = build_monitor_report(
        config(),
        s,
        window={},
        reference_status={"status": "not_used"},
        performance=None,
        outcomes=None,
        problems=[],
        violations=Violations(),
        now=0.0,
    )
    checks = {(v.check, v.feature) for v in report.violations}
    assert checks == {
        ("unseen_categories", "island"),
        ("out_of_range", "bill"),
        ("null_rate", "bill"),  # 1 of 4 is over the contract's 10 %
        ("null_rate", "island"),  # not nullable
    }
    assert report.status == "warning" and report.exit_code == 1


def test_partitions_merge_to_the_sketch_of_the_whole_window() -> None:
    rng = np.random.default_rng(3)
    reference = reference_profile(rng)
    islands = list(rng.choice(["Biscoe", "Dream", "Torgersen"], 3000))
    bills = list(rng.normal(47, 5, 3000))
    parts, whole = summary(reference), summary(reference)
    for start in range(0, 3000, 700):
        parts.add(partition(islands[start : start + 700], bills[start : start + 700]))
    whole.add(partition(islands, bills))
    assert parts.sketches["island"] == whole.sketches["island"]
    merged, single = parts.sketches["bill"], whole.sketches["bill"]
    for key in ("edges", "counts", "count", "nulls", "min", "max"):
        assert merged[key] == single[key], key
    assert np.allclose(merged["sums"], single["sums"]) and np.isclose(merged["sum"], single["sum"])
    # `distinct` merges as a lower bound once per-value counts were dropped (> 20 values).
    assert merged["distinct"] is None or merged["distinct"] <= 3000
    assert parts.rows == whole.rows == 3000 and parts.partitions == 5


def test_kpis_of_predictions_and_of_outcomes_joined_by_request_id() -> None:
    import pandas as pd

    from mlops_runtime.monitor.checks import kpi_verdicts

    s = summary(None)
    s.add(partition(["Biscoe"] * 4, [40.0] * 4))  # four "Adelie" predictions
    outcomes = pd.DataFrame({"request_id": ["r0", "r1", "r2"], "revenue": [10.0, 5.0, None]})
    unset = {"class": None, "column": None, "min": None, "max": None}
    kpis = [
        KpiConfig.from_json({**unset, **kpi})
        for kpi in (
            {"name": "adelie_share", "kind": "prediction_share", "class": "Adelie", "min": 0.5},
            {"name": "gentoo_share", "kind": "prediction_share", "class": "Gentoo", "min": 0.1},
            {"name": "revenue", "kind": "outcome_sum", "column": "revenue", "min": 20.0},
            {"name": "basket", "kind": "outcome_mean", "column": "revenue", "max": 10.0},
            {"name": "margin", "kind": "outcome_mean", "column": "margin", "max": 1.0},
        )
    ]
    violations = Violations()
    got = {k["name"]: k for k in kpi_verdicts(kpis, s, outcomes, violations)}
    assert got["adelie_share"]["value"] == 1.0 and got["adelie_share"]["status"] == "ok"
    assert got["gentoo_share"]["value"] == 0.0 and got["gentoo_share"]["status"] == "violated"
    assert got["revenue"]["value"] == 15.0 and got["revenue"]["status"] == "violated"
    assert got["basket"]["value"] == 7.5 and got["basket"]["status"] == "ok"
    assert got["margin"]["status"] == "no_data"
    assert sorted(v["description"].split()[1] for v in violations) == ["gentoo_share", "revenue"]


def test_per_column_drift_methods_override_the_default() -> None:
    rng = np.random.default_rng(5)
    reference = reference_profile(rng)
    s = summary(reference)
    s.add(partition(list(rng.choice(["Biscoe", "Dream"], 2000)), list(rng.normal(50, 5, 2000))))
    settings = {
        "method": "auto",
        "threshold": None,
        "drift_share": 0.5,
        "columns": {"island": {"method": "psi", "threshold": 0.2}},
    }
    report = build_monitor_report(
        config(reference=True, drift=settings),
        s,
        window={},
        reference_status={"status": "ok"},
        performance=None,
        outcomes=None,
        problems=[],
        violations=Violations(),
        now=0.0,
    )
    assert report.drift is not None
    features = report.drift.features
    assert (features["island"].method, features["island"].threshold) == ("psi", 0.2)
    # 5000 reference rows: the default for a numeric column is the normalised Wasserstein.
    assert features["bill"].method == "wasserstein" and features["bill"].drifted
    assert features["island"].drifted  # Torgersen vanished from the window


def with_statuses(part: Partition, statuses: list[int], run_id: str = "run-a") -> Partition:
    """The partition's rows answered with these statuses, as the log has them: a failed
    request is one line with its status and no prediction."""
    columns = dict(part.columns)
    columns["status"] = np.array(statuses, dtype="int64")
    columns["run_id"] = np.array([run_id] * part.rows, dtype=object)
    return Partition(part.path, part.rows, columns, part.probabilities)


def traffic_report(s: WindowSummary, error_max: float) -> MonitorReport:
    return build_monitor_report(
        config(error_rate={"max": error_max}),
        s,
        window={},
        reference_status={"status": "not_used"},
        performance=None,
        outcomes=None,
        problems=[],
        violations=Violations(),
        now=0.0,
    )


def test_client_errors_are_counted_apart_from_the_error_rate() -> None:
    s = summary(None)
    # 100 served, 300 refused by the contract (422), 20 unreadable (400), 5 server errors.
    statuses = [200] * 100 + [422] * 300 + [400] * 20 + [500] * 3 + [503] * 2
    n = len(statuses)
    s.add(with_statuses(partition(["Biscoe"] * n, [40.0] * n), statuses))
    assert (s.requests, s.errors, s.client_errors, s.rejected) == (100, 5, 320, 300)
    report = traffic_report(s, error_max=0.1)
    traffic, window = report.traffic, report.window
    assert traffic is not None and window is not None
    assert traffic.requests == window.requests == n
    assert traffic.errors == 5 and traffic.error_rate == pytest.approx(5 / 105)
    assert traffic.client_errors == 320
    assert traffic.client_error_rate == pytest.approx(320 / n)
    assert "error_rate" not in {v.check for v in report.violations}, "4xx are not errors"
    # The rollback trigger reads the same rate, on the requests the model was asked to answer.
    from mlops_runtime.rollback.triggers import judge, observe
    from tests.runtime.test_runtime_rollback_units import trigger_of

    trigger = {"on": "error_rate", "min": None, "max": 0.05, "min_samples": 100, "k": 1, "n": 1}
    assert observe(report, trigger_of(trigger)) == (pytest.approx(5 / 105), 105)
    (judged,) = judge(report, [trigger_of(trigger)], [])
    assert judged.fired is False
    latency = {**trigger, "on": "latency", "max": 50.0}
    assert observe(report, trigger_of(latency))[1] == 100, "latency counts served requests"
    # Past the bound on server errors alone, it fires and says the 4xx were left out.
    strict = traffic_report(s, error_max=0.01)
    (violation,) = [v for v in strict.violations if v.check == "error_rate"]
    assert "5 of 105 requests failed with a server error" in str(violation.description)
    assert "320 client errors (4xx) not counted" in str(violation.description)


def test_a_window_of_client_errors_only_is_not_empty_and_has_no_error_rate() -> None:
    s = summary(None)
    s.add(with_statuses(partition(["Biscoe"] * 50, [40.0] * 50), [422] * 50))
    report = traffic_report(s, error_max=0.05)
    assert report.traffic is not None
    assert report.traffic.error_rate == 0.0 and report.traffic.client_error_rate == 1.0
    assert report.violations == [] and report.status == "ok"


def test_the_log_says_which_version_served_a_run() -> None:
    s = summary(None)
    part = partition(["Biscoe"] * 6, [40.0] * 6)
    s.add(with_statuses(part, [200] * 6, run_id="run-a"))
    other = dict(part.columns)
    other["model_version"] = np.array(["2"] * 6, dtype=object)
    s.add(with_statuses(Partition(part.path, 6, other, None), [200] * 5 + [500], run_id="run-b"))
    assert s.version_of_run("run-a") == "1" and s.version_of_run("run-b") == "2"
    assert s.version_of_run("run-c") is None and s.version_of_run(None) is None

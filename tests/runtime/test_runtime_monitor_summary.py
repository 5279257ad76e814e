"""A window folded partition by partition: data-quality counts from the contract, sketches
that merge to the whole window's, and the checks built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlops_runtime.monitor import sketches
from mlops_runtime.monitor.checks import Violations, build_report
from mlops_runtime.monitor.prediction_window import Partition
from mlops_runtime.monitor.window_summary import WindowSummary

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
    report = build_report(
        {"name": "p", "model": {"task": "classification"}, "monitor": {"min_rows": 1}},
        s,
        window={},
        reference_status={"status": "not_used"},
        performance=None,
        outcomes=None,
        problems=[],
        violations=Violations(),
        now=0.0,
    )
    checks = {(v["check"], v["feature"]) for v in report["violations"]}
    assert checks == {
        ("unseen_categories", "island"),
        ("out_of_range", "bill"),
        ("null_rate", "bill"),  # 1 of 4 is over the contract's 10 %
        ("null_rate", "island"),  # not nullable
    }
    assert report["status"] == "warning" and report["exit_code"] == 1


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

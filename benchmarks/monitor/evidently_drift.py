"""Evidently's side of benchmarks/monitor_speed.py: data drift of one window, as a user runs it.

    EVIDENTLY_PYTHON evidently_drift.py REFERENCE.parquet CURRENT.parquet SETTINGS.json OUT.json

Runs in the benchmark's own virtualenv (Evidently 0.7 needs pandas < 3), so it imports nothing
from this repository. SETTINGS.json names the numeric and categorical columns, the method of
each kind and the threshold. The script reads both tables with pandas, builds
`Report([DataDriftPreset(num_method=..., cat_method=..., num_threshold=..., cat_threshold=...)],
include_tests=True)`, runs it, and writes per-column results to OUT.json:

    {"columns": {col: {"method", "score", "threshold", "drifted"}}, "drifted_count",
     "drifted_share", "rows": {"reference", "current"}, "phases": {...}, "versions": {...}}

`drifted` is Evidently's own verdict: the status of the column's "Value Drift" test (FAIL when
the score reaches the threshold).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    import evidently  # type: ignore[import-not-found, unused-ignore]  # its own virtualenv
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset  # type: ignore[import-not-found, unused-ignore]

    reference_path, current_path, settings_path, out_path = argv
    settings = json.loads(Path(settings_path).read_text())
    numeric, categorical = settings["numeric"], settings["categorical"]
    t1 = time.perf_counter()
    reference = pd.read_parquet(reference_path, columns=numeric + categorical)
    current = pd.read_parquet(current_path, columns=numeric + categorical)
    t2 = time.perf_counter()
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report(
        [
            DataDriftPreset(
                num_method=settings["num_method"],
                cat_method=settings["cat_method"],
                num_threshold=settings["threshold"],
                cat_threshold=settings["threshold"],
            )
        ],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    t3 = time.perf_counter()
    found = snapshot.dict()
    columns: dict[str, dict[str, object]] = {}
    counted: dict[str, float] = {}
    for metric in found["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            counted = {k: float(v) for k, v in metric["value"].items()}
    for test in found["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    missing = [c for c in numeric + categorical if "drifted" not in columns.get(c, {})]
    if missing:
        print(f"error: no drift verdict from Evidently for {missing}", file=sys.stderr)
        return 1
    t4 = time.perf_counter()
    result = {
        "columns": columns,
        "drifted_count": counted.get("count"),
        "drifted_share": counted.get("share"),
        "rows": {"reference": len(reference), "current": len(current)},
        "phases": {
            "imports": t1 - t0,
            "read Parquet": t2 - t1,
            "Report.run": t3 - t2,
            "results": t4 - t3,
        },
        "versions": {"evidently": evidently.__version__, "pandas": pd.__version__},
    }
    Path(out_path).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

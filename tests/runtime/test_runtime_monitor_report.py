"""The monitor's report, typed (mlops_runtime/monitor_report.py): read once from JSON, written
once to JSON, the same bytes both ways, and every report an earlier runtime wrote still reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.json_records import Record
from mlops_runtime.monitor.dashboard import render_dashboard
from mlops_runtime.monitor.stage import read_history
from mlops_runtime.monitor_report import (
    REPORT_VERSION,
    MonitorReport,
    Problem,
    Violation,
    read_report,
)
from mlops_runtime.rollback.automatic import reusable
from mlops_runtime.rollback.triggers import judge
from tests.runtime.test_runtime_monitor_dashboard import (
    hostile_report,
    minimal_report,
    regression_report,
    rich_example,
)
from tests.runtime.test_runtime_rollback_units import trigger_of

# A report as the first monitor stage wrote it (schema version 1, before the traffic counted
# client errors apart, before the reference named its model version, and before the feature
# freshness, gates, rollback and retraining sections), as `json.dumps(..., indent=1,
# sort_keys=True)` laid it out.
EARLIER_REPORT = """{
 "data_quality": {
  "columns": {
   "bill": {"max_null_fraction": 0.0, "null_rate": 0.0, "out_of_range": 0, "rows": 120,
            "status": "ok", "unseen_categories": 0, "unseen_values": {}},
   "island": {"rows": 0, "status": "missing_column"}
  },
  "violations": 1
 },
 "drift": {"min_rows": 100, "rows": 120, "status": "insufficient_rows"},
 "exit_code": 1,
 "generated_at": "2026-12-01T10:00:00Z",
 "kpis": [{"kind": "prediction_share", "max": null, "min": 0.1, "name": "adelie",
           "status": "ok", "value": 0.5}],
 "model": {"name": "penguins", "run_ids": {"abc": 120}, "versions": {"1": 120}},
 "name": "penguins",
 "performance": null,
 "predictions": {"class_shares": {"Adelie": 0.5, "Gentoo": 0.5}, "kind": "classification",
                 "reference_class_shares": {}},
 "problems": [],
 "reference": {"path": "reports/reference/abc.json", "rows": 500, "run_id": "abc",
               "status": "ok", "version": 2},
 "schema": "mlops-monitor-report",
 "status": "warning",
 "traffic": {"error_rate": 0.0, "errors": 0, "latency_ms": {"max": 9.0, "p50": 1.0, "p90": 2.0,
             "p95": 2.5, "p99": 4.0}, "requests": 120, "rows": 120},
 "version": 1,
 "violations": [{"check": "missing_column", "description": "island is not in the log",
                 "feature": "island", "observed": null, "severity": "warning",
                 "threshold": null}],
 "window": {"duration_s": 3600, "end": "2026-12-01T10:00:00Z", "files": 1, "kind": "duration",
            "records": null, "requests": 120, "rows": 120, "start": "2026-12-01T09:00:00Z"}
}"""


def written(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False, default=str)


def test_an_earlier_report_file_still_loads(tmp_path: Path) -> None:
    (tmp_path / "report-20261201T100000Z.json").write_text(EARLIER_REPORT, encoding="utf-8")
    (old,) = read_history(tmp_path)
    assert old.schema_version == REPORT_VERSION == 1 and old.status == "warning"
    assert old.window is not None and old.window.rows == 120 and old.window_rows == 120
    assert old.traffic is not None and old.traffic.errors == 0
    assert old.traffic.client_errors is None, "counted apart only since"
    assert old.drift is not None and old.drift.status == "insufficient_rows"
    assert old.drift.features == {} and old.drift.min_rows == 100
    assert old.data_quality is not None
    assert old.data_quality.columns["island"].status == "missing_column"
    assert old.reference is not None and old.reference.model_version is None
    assert (old.feature_freshness, old.gates, old.rollback, old.retraining) == (None,) * 4
    assert [v.check for v in old.violations] == ["missing_column"]
    # Read and written again, it is the same document.
    assert old.to_json() == json.loads(EARLIER_REPORT)
    # The readers take it: the dashboard, the rollback's reuse of a window, its triggers.
    assert "penguins" in render_dashboard(old, [old])
    assert not reusable(old, "2", 0.0) and reusable(old, "1", 0.0)
    trigger = {"on": "latency", "min": None, "max": 3.0, "min_samples": 100, "k": 1, "n": 1}
    (judged,) = judge(old, [trigger_of(trigger)], [])
    assert judged.value == 4.0 and judged.samples == 120 and judged.fired


@pytest.mark.parametrize(
    "document",
    [rich_example()[0], minimal_report(), regression_report(), hostile_report()],
    ids=["rich", "minimal", "regression", "hostile"],
)
def test_reading_and_writing_keeps_the_bytes(document: dict[str, Any]) -> None:
    report = MonitorReport.from_json(json.loads(written(document)))
    assert written(report.to_json()) == written(document)
    assert read_report(report) is report


def test_a_new_report_carries_its_schema_and_version() -> None:
    from tests.runtime.test_runtime_monitor_summary import summary, traffic_report

    report = traffic_report(summary(None), error_max=0.1)
    document = report.to_json()
    assert (document["schema"], document["version"]) == ("mlops-monitor-report", REPORT_VERSION)
    assert report.schema_version == REPORT_VERSION
    # The sections later steps add are absent until they run.
    assert "rollback" not in document and "retraining" not in document
    assert MonitorReport.from_json(json.loads(written(document))) == report


def test_values_of_the_wrong_type_read_as_absent() -> None:
    report = MonitorReport.from_json(
        {
            "status": 3,
            "window": "x",
            "kpis": [{"name": "k", "value": "high"}, 7],
            "violations": [{"check": "kpi", "observed": {"any": "value"}}],
        }
    )
    assert report.status is None and report.window is None and report.window_rows == 0
    assert [(k.name, k.value) for k in report.kpis] == [("k", None)]
    assert report.violations[0].observed == {"any": "value"}, "observed is any JSON value"
    assert MonitorReport.from_json(None) == MonitorReport()


def test_a_step_that_adds_a_problem_or_a_violation_rejudges_the_status() -> None:
    report = MonitorReport(status="ok", exit_code=0)
    warned = report.with_problem(Problem(status="rollback_not_evaluated", message="down"))
    assert (warned.status, warned.exit_code) == ("warning", 1)
    alert = Violation(check="rollback", severity="alert", description="rolled back")
    assert warned.with_violations([alert]).exit_code == 3
    assert report.status == "ok", "frozen: the first report is unchanged"
    with pytest.raises(AttributeError):
        report.status = "alert"  # type: ignore[misc]


def test_every_section_type_is_a_record() -> None:
    import dataclasses

    seen: set[type] = set()

    def walk(cls: type[Record]) -> None:
        seen.add(cls)
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        for _, _, hint in cls.json_fields():
            for arg in (hint, *getattr(hint, "__args__", ())):
                for inner in (arg, *getattr(arg, "__args__", ())):
                    if isinstance(inner, type) and issubclass(inner, Record) and inner not in seen:
                        walk(inner)

    walk(MonitorReport)
    assert len(seen) >= 20

"""The monitor stage on a real served model: its log, late labels, drift, reports, gauges."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.serving_fixtures import (
    SPECS,
    Server,
    build_project,
    records,
    run_stage,
    start_server,
    train,
)
from tests.system_programs import require

pytestmark = pytest.mark.slow
# A batch first (big batches are logged as Parquet), then single records: clean, shifted,
# and invalid ones the door refuses.
BATCH, CLEAN, SHIFTED, INVALID = 300, 300, 200, 12
SERVED = BATCH + CLEAN + SHIFTED


def monitor(project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_stage(project, "monitor", "--json", *args)
    assert result.returncode in (0, 1, 3), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str], float]]:
    """Breast cancer served for real: clean traffic, then shifted traffic, then bad requests;
    labels for the clean and shifted requests arrive afterwards."""
    root = tmp_path_factory.mktemp("monitor")
    project = build_project(root, "breast-cancer")
    train(project)
    server: Server = start_server(project)
    rows = records("breast_cancer")
    with (SPECS / "data" / "breast_cancer.csv").open(newline="") as handle:
        truth = [row["malignant"] for row in csv.DictReader(handle)]
    ids: list[str] = []
    labels: list[tuple[str, int, str]] = []
    try:
        with server.client() as client:
            reply = client.post("/predict", json=rows[:BATCH])
            assert reply.status_code == 200, reply.text
            batch_id = reply.headers["x-request-id"]
            labels += [(batch_id, i, truth[i]) for i in range(BATCH)]
            time.sleep(1.0)  # a window that ends here holds the batch alone
            batch_end = time.time()
            time.sleep(1.0)
            for i, record in enumerate(rows[: CLEAN + SHIFTED]):
                if i >= CLEAN:  # the last requests come from a shifted population
                    record = {**record, "mean_radius": record["mean_radius"] * 1.8,
                              "worst_area": record["worst_area"] * 2.5}  # fmt: skip
                reply = client.post("/predict", json=record)
                assert reply.status_code == 200, reply.text
                ids.append(reply.headers["x-request-id"])
                labels.append((ids[-1], 0, truth[i]))
            for _ in range(INVALID):
                assert client.post("/predict", json={"mean_radius": -1}).status_code == 422
    finally:
        server.stop()
    # The spec names the labels file relative to itself: specs/data/breast_cancer_labels.csv.
    with (root / "specs/data/breast_cancer_labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "row", "malignant"])
        writer.writerows(labels)
    # Late labels where P(y|x) changed and P(x) did not: the batch's rows are the training
    # population, but the label flips for the larger tumours.
    median = sorted(r["mean_radius"] for r in rows[:BATCH])[BATCH // 2]
    with (root / "concept_labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "row", "malignant"])
        for i in range(BATCH):
            flip = rows[i]["mean_radius"] > median
            writer.writerow([batch_id, i, str(1 - int(truth[i])) if flip else truth[i]])
    yield project, ids, batch_end
    shutil.rmtree(root, ignore_errors=True)


def test_concept_drift_is_caught_through_labels_alone(
    served: tuple[Path, list[str], float],
) -> None:
    project, _, batch_end = served
    end = datetime.fromtimestamp(batch_end, UTC).isoformat()
    window = ("--window", "1h", "--end", end)
    _, honest = monitor(project, *window)
    assert honest["window"]["rows"] == BATCH
    assert honest["performance"]["status"] == "ok" and honest["performance"]["value"] >= 0.9
    assert not honest["drift"]["dataset"]["drifted"], "P(x) is the training population"
    code, changed = monitor(
        project, *window, "--labels", str(project.parents[1] / "concept_labels.csv")
    )
    assert not changed["drift"]["dataset"]["drifted"]
    assert changed["performance"]["value"] < 0.9 <= changed["performance"]["baseline"]
    (violation,) = [v for v in changed["violations"] if v["check"] == "performance"]
    assert violation["severity"] == "alert" and code == 3


def test_traffic_predictions_latency_errors_and_kpis(served: tuple[Path, list[str], float]) -> None:
    project, ids, _ = served
    code, report = monitor(project, "--window", "1h")
    assert len(ids) == CLEAN + SHIFTED
    assert report["schema"] == "mlops-monitor-report" and report["version"] == 1
    traffic = report["traffic"]
    assert list((project / "prediction_log").glob("*.parquet")), "the batch is logged as Parquet"
    assert traffic["rows"] == SERVED
    requests = 1 + CLEAN + SHIFTED + INVALID
    # The invalid requests are the clients' (422): counted apart, not as the model's errors.
    assert traffic["requests"] == requests and traffic["errors"] == 0
    assert traffic["error_rate"] == 0.0
    assert traffic["client_errors"] == INVALID
    assert traffic["client_error_rate"] == pytest.approx(INVALID / requests)
    assert 0 < traffic["latency_ms"]["p50"] <= traffic["latency_ms"]["p99"]
    shares = report["predictions"]["class_shares"]
    assert set(shares) <= {"0", "1"} and sum(shares.values()) == pytest.approx(1.0)
    (kpi,) = report["kpis"]
    assert kpi["name"] == "malignant_share" and kpi["value"] == pytest.approx(shares.get("1", 0))
    # The same contract at every stage: training passed, the door refused the invalid ones.
    assert report["gates"]["training"]["ok"] is True
    assert report["gates"]["serving"]["rejected_requests"] == INVALID
    assert "error_rate" not in {v["check"] for v in report["violations"]}
    assert report["exit_code"] == code


def test_drift_against_the_reference_profile(served: tuple[Path, list[str], float]) -> None:
    project, *_ = served
    code, report = monitor(project, "--window", "1h")
    assert code == report["exit_code"] and report["status"] in ("warning", "alert")
    features = report["drift"]["features"]
    assert len(features) == 30
    # The reference holds 455 training rows: the small-reference default tests with KS.
    assert {f["method"] for f in features.values()} == {"ks"}
    assert features["mean_radius"]["drifted"] and features["worst_area"]["drifted"]
    # Prediction drift: the predicted classes against the test split's, on their sketches.
    assert report["predictions"]["drift"]["method"] == "jensenshannon"
    assert report["predictions"]["drift"]["status"] == "ok"
    drifted = {v["feature"] for v in report["violations"] if v["check"] == "data_drift"}
    assert {"mean_radius", "worst_area"} <= drifted
    # The newest rows alone (the shifted requests and the failures) drift further still.
    _, shifted_only = monitor(project, "--window-records", str(SHIFTED + INVALID))
    assert shifted_only["window"]["rows"] == SHIFTED
    assert shifted_only["drift"]["features"]["mean_radius"]["score"] < 1e-6
    assert (
        shifted_only["drift"]["features"]["mean_radius"]["score"]
        <= features["mean_radius"]["score"]
    )


def test_concept_metric_from_late_labels(served: tuple[Path, list[str], float]) -> None:
    project, *_ = served
    _, report = monitor(project, "--window", "1h")
    performance = report["performance"]
    assert performance["status"] == "ok" and performance["labelled"] == SERVED
    assert performance["metric"] == "roc_auc" and 0.5 < performance["value"] <= 1.0
    assert performance["baseline"] > 0.9


def test_outputs_reports_dashboard_and_gauges(served: tuple[Path, list[str], float]) -> None:
    project, *_ = served
    code, report = monitor(project, "--window", "1h")
    folder = project / "reports/monitor"
    latest = json.loads((folder / "latest.json").read_text())
    assert latest["status"] == report["status"] and list(folder.glob("report-*.json"))
    html = (folder / "dashboard.html").read_text()
    assert "<svg" in html and "mean_radius" in html
    prom = (folder / "mlops_monitor.prom").read_text()
    assert 'mlops_monitor_feature_drifted{model="breast-cancer",feature="mean_radius"} 1.0' in prom
    assert 'mlops_monitor_error_rate{model="breast-cancer"} 0.0' in prom
    client = report["traffic"]["client_error_rate"]
    assert f'mlops_monitor_client_error_rate{{model="breast-cancer"}} {client!r}' in prom
    checked = subprocess.run(
        [require("promtool"), "check", "metrics"], input=prom, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert code == {"ok": 0, "warning": 1, "alert": 3}[report["status"]]


def test_the_dashboard_path_is_printed_and_names_the_reference_model(
    served: tuple[Path, list[str], float],
) -> None:
    project, *_ = served
    page = (project / "reports/monitor/dashboard.html").resolve()
    plain = run_stage(project, "monitor", "--window", "1h")
    assert plain.returncode in (0, 1, 3), plain.stdout + plain.stderr
    assert plain.stdout.splitlines()[-1] == f"dashboard: {page}"
    as_json = run_stage(project, "monitor", "--window", "1h", "--json")
    report = json.loads(as_json.stdout)  # stdout is the one JSON document
    assert f"dashboard: {page}" in as_json.stderr.splitlines()
    assert page.is_file()
    skipped = run_stage(project, "monitor", "--window", "1h", "--no-dashboard")
    assert "dashboard:" not in skipped.stdout + skipped.stderr
    # Version 1 serves, trained in the run whose profile is the reference (format version 2).
    reference = report["reference"]
    assert (reference["model_version"], reference["version"]) == ("1", 2)
    assert reference["run_id"] == next(iter(report["model"]["run_ids"]))
    html = page.read_text()
    start = html.index('<div class="k">reference</div>')
    tile = html[start : html.index("</div></div>", start)]
    assert "model v1" in tile and "model v2" not in tile

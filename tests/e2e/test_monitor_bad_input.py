"""Bad input to the monitor: a clear status and exit code in the report, never a traceback,
and the registry untouched."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import build_project, records, run_stage, train

pytestmark = pytest.mark.slow
Write = Callable[..., Path]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = build_project(tmp_path_factory.mktemp("bad-input"), "breast-cancer")
    train(project)
    return project


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the trained project, its prediction log empty, no labels file where
    the spec names it (a test that writes one removes it after)."""
    copy = tmp_path / "breast-cancer"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("prediction_log"))
    labels = labels_path(copy)
    labels.unlink(missing_ok=True)
    yield copy
    labels.unlink(missing_ok=True)


def labels_path(project: Path) -> Path:
    """Where config.json says the labels are: the spec's data/breast_cancer_labels.csv."""
    labels_cfg = json.loads((project / "config.json").read_text())["monitor"]["labels"]
    return (project / labels_cfg["path"]).resolve()


def monitor(project: Path) -> tuple[int, dict[str, Any], str]:
    store = project / "mlruns.db"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    result = run_stage(project, "monitor", "--json", "--window", "1h")
    assert "Traceback" not in result.stderr, result.stderr
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before, "the registry changed"
    return result.returncode, json.loads(result.stdout), result.stderr


def statuses(report: dict[str, Any]) -> set[str]:
    return {p["status"] for p in report["problems"]}


def test_empty_window(project: Path) -> None:
    code, report, _ = monitor(project)
    assert code == 1 and report["status"] == "warning"
    assert "empty_window" in statuses(report) and report["window"]["rows"] == 0
    # breast-cancer names a labels file that is not shipped: a problem too.
    assert "labels_missing" in statuses(report)


def test_a_named_labels_file_that_does_not_exist_is_a_problem(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    labels = labels_path(project)
    code, report, _ = monitor(project)
    (problem,) = [p for p in report["problems"] if p["status"] == "labels_missing"]
    message = problem["message"]
    assert str(labels) in message and "does not exist" in message
    assert "'request_id'" in message and "X-Request-ID" in message and "'malignant'" in message
    assert report["performance"]["status"] == "no_labels"
    assert report["performance"]["message"] == message
    # A problem makes the status at least a warning; the KPI alert here makes it an alert.
    assert report["status"] in ("warning", "alert") and code == report["exit_code"] >= 1
    # On the command line too, with the summary.
    text = run_stage(project, "monitor", "--window", "1h", "--no-dashboard")
    assert f"note: labels_missing: labels file {labels} does not exist" in text.stdout
    assert text.returncode == code


@pytest.mark.parametrize(
    ("content", "status", "says"),
    [
        ("id,malignant\nr1,1\n", "labels_invalid", "no 'request_id' column"),
        ("request_id,outcome\nr1,1\n", "labels_invalid", "no 'malignant' column"),
        ('request_id,malignant\n"r1,1\n', "labels_unreadable", "cannot be read"),
    ],
    ids=["no-join-key", "no-target", "unreadable"],
)
def test_a_labels_file_without_its_columns_is_a_problem(
    project: Path, content: str, status: str, says: str
) -> None:
    log_lines(project, records("breast_cancer", 150))
    labels = labels_path(project)
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(content)
    _, report, _ = monitor(project)
    (problem,) = [p for p in report["problems"] if p["status"] == status]
    assert says in problem["message"], problem
    assert report["performance"]["status"] == "no_labels"


def test_corrupt_log_file_and_lines(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    (project / "prediction_log/predictions-2.parquet").write_bytes(b"PAR1 this is not parquet")
    with (project / "prediction_log/predictions-3.jsonl").open("w") as handle:
        handle.write('{"request_id": "x", "ts": "2026-')  # a line cut off by a crash
    code, report, _ = monitor(project)
    assert {"corrupt_log_file", "corrupt_log_lines"} <= statuses(report)
    assert report["window"]["rows"] == 150 and code == report["exit_code"] >= 1


def test_missing_and_all_null_columns(project: Path) -> None:
    rows = [
        {k: v for k, v in r.items() if k != "mean_texture"} | {"mean_radius": None}
        for r in records("breast_cancer", 150)
    ]
    log_lines(project, rows)
    _, report, _ = monitor(project)
    quality = report["data_quality"]["columns"]
    assert quality["mean_texture"]["status"] == "missing_column"
    assert quality["mean_radius"]["null_rate"] == 1.0
    assert quality["mean_radius"]["status"] == "all_null"
    checks = {(v["check"], v["feature"]) for v in report["violations"]}
    assert {("missing_column", "mean_texture"), ("null_rate", "mean_radius")} <= checks
    assert report["drift"]["features"]["mean_radius"]["status"] == "all_null"
    assert report["drift"]["features"]["mean_texture"]["status"] == "missing_column"


def test_labels_matching_no_request(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    labels = project.parents[1] / "specs/data/breast_cancer_labels.csv"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text("request_id,malignant\nsomeone-else,1\n")
    assert labels_path(project) == labels.resolve()
    _, report, _ = monitor(project)
    assert "labels_unmatched" in statuses(report) and "labels_missing" not in statuses(report)
    assert report["performance"]["status"] == "insufficient_samples"
    assert report["performance"]["labelled"] == 0


def test_an_older_reference_is_refused(project: Path) -> None:
    log_lines(project, records("breast_cancer", 150))
    for path in [project / "reports/reference_profile.json", *project.glob("reports/reference/*")]:
        profile = json.loads(path.read_text())
        path.write_text(json.dumps({**profile, "version": 1}))
    code, report, _ = monitor(project)
    assert "reference_unsupported" in statuses(report) and code >= 1
    assert report["drift"] is None and report["traffic"]["rows"] == 150


def drop_local_references(project: Path) -> None:
    for path in [project / "reports/reference_profile.json", *project.glob("reports/reference/*")]:
        path.unlink()


def test_a_reference_trained_elsewhere_comes_from_the_tracking_store(project: Path) -> None:
    """A monitor in a container or a CronJob pod has no reports/ of the training machine."""
    log = log_lines(project, records("breast_cancer", 150))
    served_run = json.loads(log.read_text().splitlines()[0])["run_id"]
    drop_local_references(project)
    code, report, _ = monitor(project)
    assert code == report["exit_code"]
    assert not {"reference_missing", "reference_unsupported"} & statuses(report)
    assert report["drift"] is not None and report["traffic"]["rows"] == 150
    assert (project / f"reports/reference/{served_run}.json").is_file()  # fetched once


def test_a_reference_found_nowhere_is_a_problem(project: Path) -> None:
    log = log_lines(project, records("breast_cancer", 150))
    unknown = "0" * 32  # a run the store never had
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({**line, "run_id": unknown}) + "\n" for line in lines))
    drop_local_references(project)
    code, report, _ = monitor(project)
    assert "reference_missing" in statuses(report) and code >= 1
    (problem,) = [p for p in report["problems"] if p["status"] == "reference_missing"]
    assert "nor in the tracking store" in problem["message"], problem
    assert report["drift"] is None and report["traffic"]["rows"] == 150


def test_log_lines_that_are_no_records_are_counted_and_the_window_judged(project: Path) -> None:
    """JSON that is not a record, a time that is none, a string status, a key that is not
    UTF-8: each is one corrupt line, and the window's other predictions are still judged
    (drift, quality, the rollback triggers), the newest line included."""
    log = log_lines(project, records("breast_cancer", 150))
    good = log.read_bytes().splitlines()
    first = json.loads(good[0])
    hostile = [
        b"[1,2,3]",
        b'"str"',
        b"null",
        json.dumps({**first, "ts": "yesterday"}).encode(),
        json.dumps({**first, "status": "bad"}).encode(),
        b'{"request_id": "x", "\xff": 1, "ts": "' + first["ts"].encode() + b'"}',
    ]
    # A hostile line first (where Arrow's reader once died on `null`) and last (where the
    # monitor looks for the serving run).
    log.write_bytes(b"\n".join([b"null", *good[:75], *hostile, *good[75:], b"[1,2,3]"]) + b"\n")
    code, report, _ = monitor(project)
    (problem,) = [p for p in report["problems"] if p["status"] == "corrupt_log_lines"]
    assert problem["message"].startswith(f"{len(hostile) + 2} lines of the log ")
    assert report["window"]["rows"] == 150 and report["traffic"]["requests"] == 150
    assert report["drift"] is not None and report["drift"]["status"] == "ok"
    assert report["reference"]["status"] == "ok"
    assert code == report["exit_code"] >= 1


@pytest.mark.parametrize(
    ("status", "fires"), [(422, False), (500, True)], ids=["client-422", "server-500"]
)
def test_client_errors_do_not_trip_the_error_rate_rollback(
    project: Path, status: int, fires: bool
) -> None:
    """The red-team finding: 100 anonymous 422s among 400 requests rolled a good champion
    back. Refused requests are the callers'; the same number of server errors is the model's
    and must fire the trigger (error rate bound 0.05 on at least 100 requests)."""
    log = log_lines(project, records("breast_cancer", 300))
    first = json.loads(log.read_text().splitlines()[0])
    failed = {**first, "inputs": None, "output": None, "status": status, "error": "refused"}
    # No request id: refused before one was read, or sent by a client that gives none.
    lines = [json.dumps({**failed, "request_id": None}) for _ in range(100)]
    with log.open("a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    result = run_stage(project, "monitor", "--json", "--window", "1h", "--no-dashboard")
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)

    traffic = report["traffic"]
    assert traffic["requests"] == 400
    if status < 500:
        assert (traffic["client_errors"], traffic["errors"], traffic["error_rate"]) == (100, 0, 0)
    else:
        assert (traffic["client_errors"], traffic["errors"]) == (0, 100)
        assert traffic["error_rate"] == pytest.approx(0.25)
    (judged,) = [
        j for j in report["rollback"]["arms"]["champion"]["judged"] if j["on"] == "error_rate"
    ]
    assert judged["fired"] is fires and judged["samples"] == 400 - traffic["client_errors"]
    checks = {v["check"] for v in report["violations"]}
    assert ("error_rate" in checks) is fires
    assert not [a for a in report["rollback"].get("actions") or [] if not fires], report

"""The score stage for real: a trained project, files of rows on disk, the stage as a process.

Its predictions are the running server's for the same rows; rows that break the contract are
set aside with their position and rules (rows in = scored + rejected); the prediction log
takes the scored rows and the monitor counts them; the serving history gains one line and no
alias moves; bad input and a missing model stop it with nothing under the output name; a
stopped run leaves no output and `--resume` keeps the parts it finished.
"""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from serving_fixtures import (
    SPECS,
    Server,
    build_project,
    run_stage,
    stage_env,
    start_server,
    train,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("score")]

TARGET = "malignant"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_project(tmp_path_factory.mktemp("score"), "breast-cancer")
    train(root)
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[Server]:
    running = start_server(project)
    yield running
    running.stop()


def source_rows() -> list[dict[str, str]]:
    with (SPECS / "data" / "breast_cancer.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# Row position -> (column, bad value, the rule the row breaks)
BROKEN = {
    3: ("mean_radius", "abc", "dtype"),
    7: ("mean_texture", "-1", "min"),
    9: ("worst_area", "", "not_nullable"),
}


def with_broken_rows() -> list[dict[str, str]]:
    rows = source_rows()
    for position, (column, value, _) in BROKEN.items():
        rows[position][column] = value
    return rows


def score(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_stage(project, "score", *args, **env)


def table(folder: Path, kind: str) -> pa.Table:
    return pq.read_table(sorted((folder / kind).glob("*.parquet")))


def test_bad_rows_are_set_aside_with_their_rules_and_the_rest_scored(
    project: Path, tmp_path: Path
) -> None:
    rows = with_broken_rows()
    data = write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out))
    assert done.returncode == 1, done.stderr  # complete, with rejects
    predictions, rejects = table(out, "predictions"), table(out, "rejects")
    assert predictions.num_rows + rejects.num_rows == len(rows)
    assert rejects.column("row").to_pylist() == sorted(BROKEN)
    assert rejects.column("checks").to_pylist() == [BROKEN[p][2] for p in sorted(BROKEN)]
    faults = [json.loads(f) for f in rejects.column("faults").to_pylist()]
    assert [f[0]["column"] for f in faults] == [BROKEN[p][0] for p in sorted(BROKEN)]
    scored = predictions.column("row").to_pylist()
    assert scored == [i for i in range(len(rows)) if i not in BROKEN]
    summary = json.loads((out / "_summary.json").read_text())
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (len(rows), 566, 3)
    assert f"scored 566 of {len(rows)} rows (3 rejected) with version 1" in done.stdout
    assert done.stdout.strip().endswith(f"rows/s): {out}")
    assert not out.with_name("scored.partial").exists()


def test_the_predictions_are_the_servers_for_the_same_rows(
    project: Path, server: Server, tmp_path: Path
) -> None:
    rows = source_rows()[:200]
    data = write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out), "--batch-rows", "64")
    assert done.returncode == 0, done.stderr
    predictions = table(out, "predictions")
    records = [{k: float(v) for k, v in r.items() if k != TARGET} for r in rows]
    answer = httpx.post(f"{server.url}/predict", json=records, timeout=30).json()
    assert predictions.column("prediction").to_pylist() == answer["predictions"]
    classes = answer["classes"]
    batch = [[row[f"probability_{c}"] for c in classes] for row in predictions.to_pylist()]
    served = answer["probabilities"]
    assert len(batch) == len(served)
    for ours, theirs in zip(batch, served, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-12)
    assert set(predictions.column("model_version").to_pylist()) == {answer["model_version"]}
    assert set(predictions.column("run_id").to_pylist()) == {registered_run(project)}


def registered_run(project: Path) -> str:
    with sqlite3.connect(f"file:{project / 'mlruns.db'}?mode=ro", uri=True) as db:
        (run,) = db.execute("select run_id from model_versions where version = 1").fetchone()
    return str(run)


def test_a_folder_of_parquet_parts_keeps_its_key_and_logs_every_scored_row(
    project: Path, tmp_path: Path
) -> None:
    rows = source_rows()
    for i, row in enumerate(rows):
        row["patient"] = f"p-{i:04d}"
    folder = tmp_path / "parts"
    folder.mkdir()
    columns: dict[str, list[Any]] = {
        k: [float(r[k]) for r in rows] for k in rows[0] if k != "patient"
    }
    columns["patient"] = [r["patient"] for r in rows]
    full = pa.table(columns)
    pq.write_table(full.slice(0, 300), folder / "part-0.parquet")
    pq.write_table(full.slice(300), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")  # what Spark leaves beside its parts
    log = tmp_path / "log"
    out = tmp_path / "scored"
    done = score(
        project,
        *("--input", str(folder), "--output", str(out), "--key", "patient"),
        MLOPS_PREDICTION_LOG_DIR=str(log),
    )
    assert done.returncode == 0, done.stderr
    predictions = table(out, "predictions")
    assert predictions.column("patient").to_pylist() == columns["patient"]
    assert predictions.column("source").to_pylist() == ["part-0.parquet"] * 300 + [
        "part-1.parquet"
    ] * (len(rows) - 300)
    # The prediction log holds the scored rows as the server logs a big batch.
    logged = pq.read_table(sorted(log.glob("*.parquet")))
    assert logged.num_rows == len(rows)
    assert set(logged.column("endpoint").to_pylist()) == {"score"}
    assert set(logged.column("request_id").to_pylist()) == set(
        predictions.column("request_id").to_pylist()
    )
    # ...and the monitor reads it as it reads the server's.
    monitored = run_stage(project, "monitor", MLOPS_PREDICTION_LOG_DIR=str(log))
    assert monitored.returncode in (0, 1, 3), monitored.stderr
    report = json.loads((project / "reports/monitor/latest.json").read_text())
    assert report["window"]["rows"] == len(rows)


def test_the_serving_history_gains_one_line_and_no_alias_moves(
    project: Path, tmp_path: Path
) -> None:
    history = project / "reports/serving-history.jsonl"
    before = history.read_text().splitlines()
    aliases = registry_aliases(project)
    data = write_csv(tmp_path / "rows.csv", source_rows()[:50])
    done = score(project, "--input", str(data), "--output", str(tmp_path / "scored"))
    assert done.returncode == 0, done.stderr
    after = history.read_text().splitlines()
    assert after[: len(before)] == before and len(after) == len(before) + 1
    line = json.loads(after[-1])
    assert (line["event"], line["alias"], line["from"], line["to"]) == (
        "batch_scored",
        "champion",
        "1",
        "1",
    )
    assert line["why"]["rows"] == 50 and line["why"]["scored"] == 50
    assert registry_aliases(project) == aliases


def registry_aliases(project: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{project / 'mlruns.db'}?mode=ro", uri=True) as db:
        return sorted(db.execute("select alias, version from registered_model_aliases"))


def test_csv_output_on_request_in_a_folder_named_for_the_run(project: Path, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "rows.csv", with_broken_rows()[:20])
    pattern = str(tmp_path / "scored-{date}-{time}")
    done = score(project, "--input", str(data), "--output", pattern, "--format", "csv")
    assert done.returncode == 1, done.stderr
    (out,) = tmp_path.glob("scored-*")
    assert out.name == time.strftime("scored-%Y-%m-%d-", time.gmtime()) + out.name[-6:]
    assert out.name[-6:].isdigit()
    predictions = pacsv.read_csv(out / "predictions/part-00000.csv")
    rejects = pacsv.read_csv(out / "rejects/part-00000.csv")
    assert predictions.num_rows == 17 and rejects.num_rows == 3


def header_only(folder: Path) -> Path:
    path = folder / "rows.csv"
    path.write_text(",".join(source_rows()[0]) + "\n")
    return path


def missing_column(folder: Path) -> Path:
    rows = [{k: v for k, v in r.items() if k != "mean_area"} for r in source_rows()[:5]]
    return write_csv(folder / "rows.csv", rows)


def mixed_encoding(folder: Path) -> Path:
    path = write_csv(folder / "rows.csv", source_rows()[:5])
    with path.open("ab") as out:
        out.write(b"\xff\xfe" + b",1" * 30 + b"\n")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nowhere.csv", "input not found"),
        (header_only, "no rows to score"),
        (missing_column, "no column 'mean_area'"),
        (mixed_encoding, "cannot be read"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "not a CSV or Parquet"),
    ],
    ids=["missing", "no-rows", "missing-column", "bad-encoding", "not-data"],
)
def test_bad_input_stops_with_one_line_and_nothing_under_the_output_name(
    project: Path, tmp_path: Path, make: Any, message: str
) -> None:
    data = make(tmp_path)
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not out.exists()


def test_an_existing_output_is_never_overwritten(project: Path, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "rows.csv", source_rows()[:5])
    out = tmp_path / "scored"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    done = score(project, "--input", str(data), "--output", str(out))
    assert done.returncode == 2 and "already exists" in done.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("challenger", "no version of model 'breast-cancer' has the alias 'challenger'"),
        ("7", "has no version 7"),
        ("latest", "--model must be champion, challenger or a version number"),
    ],
)
def test_a_model_that_is_not_there_stops_with_exit_3(
    project: Path, tmp_path: Path, model: str, message: str
) -> None:
    data = write_csv(tmp_path / "rows.csv", source_rows()[:5])
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out), "--model", model)
    assert done.returncode == 3, done.stderr
    assert message in done.stderr
    assert not out.exists()


def test_a_version_by_number_is_scored_and_logged_under_its_number(
    project: Path, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "rows.csv", source_rows()[:5])
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out), "--model", "1")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "_summary.json").read_text())["arm"] == "version-1"


def test_a_stopped_run_leaves_no_output_and_resume_keeps_the_finished_parts(
    project: Path, tmp_path: Path
) -> None:
    rows = source_rows()
    folder = tmp_path / "parts"
    for i in range(40):  # many small parts: the stop lands between two of them
        write_csv(folder / f"part-{i:03d}.csv", rows)
    out = tmp_path / "scored"
    staging = out.with_name("scored.partial")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlops_runtime", "score"),
            *("--input", str(folder), "--output", str(out), "--batch-rows", "50"),
        ],
        cwd=project,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(list((staging / "_parts").glob("*.json"))) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "scoring stopped by SIGTERM" in err and "Traceback" not in err
    assert not out.exists()
    kept = {p.name: p.stat().st_mtime_ns for p in (staging / "predictions").glob("*.parquet")}
    assert len(kept) >= 2 and not list(staging.rglob("*.tmp"))
    done = score(project, "--input", str(folder), "--output", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    for name, stamp in kept.items():  # finished parts were not scored again
        assert (out / "predictions" / name).stat().st_mtime_ns == stamp
    assert table(out, "predictions").num_rows == 40 * len(rows)
    assert json.loads((out / "_summary.json").read_text())["rows"] == 40 * len(rows)


def test_level_0_scores_with_its_model_file(tmp_path: Path) -> None:
    text = (SPECS / "wine.mlops.yaml").read_text()
    project = build_project(tmp_path, "wine", text)
    assert json.loads((project / "config.json").read_text())["level"] == 0
    train(project)
    with (SPECS / "data" / "wine.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    data = write_csv(tmp_path / "rows.csv", rows)
    done = score(project, "--input", str(data), "--output", str(tmp_path / "scored"))
    assert done.returncode == 0, done.stderr
    predictions = table(tmp_path / "scored", "predictions")
    assert predictions.num_rows == len(rows)
    assert predictions.column("model_version").to_pylist()[0].startswith("local-")


def test_a_batch_of_rejects_alone_keeps_the_probability_columns(
    project: Path, tmp_path: Path
) -> None:
    """Batches of 2 rows: rows 2 and 3 break the contract, so one batch scores no row; the
    part's predictions file still has one schema, probabilities included."""
    rows = source_rows()[:10]
    rows[2]["mean_radius"] = "abc"
    rows[3]["mean_texture"] = "-1"
    data = write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out), "--batch-rows", "2")
    assert done.returncode == 1, done.stderr
    assert "scored 8 of 10 rows (2 rejected)" in done.stdout, done.stderr
    predictions = table(out, "predictions")
    assert predictions.column("row").to_pylist() == [0, 1, 4, 5, 6, 7, 8, 9]
    assert {"probability_0", "probability_1"} <= set(predictions.schema.names)


def test_a_classifier_without_probabilities_writes_one_schema_for_empty_and_full_parts(
    tmp_path: Path,
) -> None:
    text = (SPECS / "wine.mlops.yaml").read_text()
    text = text.replace(
        "estimator: sklearn.linear_model.LogisticRegression\n  params: {max_iter: 1000}",
        "estimator: sklearn.linear_model.RidgeClassifier\n  params: {}",
    )
    assert "RidgeClassifier" in text
    project = build_project(tmp_path, "wine", text)
    train(project)
    with (SPECS / "data" / "wine.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    folder = tmp_path / "parts"
    write_csv(folder / "a.csv", rows)
    (folder / "b.csv").write_text(",".join(rows[0]) + "\n")  # a header and no rows
    out = tmp_path / "scored"
    done = score(project, "--input", str(folder), "--output", str(out))
    assert done.returncode == 0, done.stderr
    full, empty = (pq.read_schema(out / "predictions" / f"part-0000{i}.parquet") for i in (0, 1))
    assert not [n for n in full.names if n.startswith("probability_")]
    assert empty.remove_metadata() == full.remove_metadata()
    assert table(out, "predictions").num_rows == len(rows)

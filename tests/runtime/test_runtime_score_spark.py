"""`score --engine spark` for real: Spark in local[2], the stage as a process, no mocks.

The same input scored by the in-process engine and by Spark gives the same predictions and the
same rejects, row for row (positions included, across Spark's splits of one file), for CSV and
Parquet, a folder of parts, and `spark-submit` of the stage; the prediction log and the serving
history take the run as in-process; bad input stops before Spark starts, with exit 2.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from serving_fixtures import SPECS, build_project, run_stage, stage_env, train

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

TARGET = "malignant"
# Row position -> (column, bad value); the in-process tests check the rules they break.
BROKEN = {3: ("mean_radius", "abc"), 7: ("mean_texture", "-1"), 9: ("worst_area", "")}


def pyspark_dir() -> Path:
    """pyspark's folder; skips without pyspark or Java (fails under CI=true, since a skipped
    check is not a passed one)."""
    try:
        import pyspark
    except ImportError:
        missing(
            "pyspark is not installed (`pip install 'mlops-runtime[spark]'`, or the test extra)"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing("Spark needs Java 17 or 21 (`java` on PATH or $JAVA_HOME), and there is none")
    return Path(pyspark.__file__).parent


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI=true, so it fails the test", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pyspark_dir()
    root = build_project(tmp_path_factory.mktemp("score-spark"), "breast-cancer")
    train(root)
    return root


def source_rows() -> list[dict[str, str]]:
    with (SPECS / "data" / "breast_cancer.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def broken_rows() -> list[dict[str, str]]:
    rows = source_rows()
    for position, (column, value) in BROKEN.items():
        rows[position][column] = value
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def score(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_stage(project, "score", *args, **env)


def read(folder: Path, kind: str, fmt: str = "parquet") -> pa.Table:
    """One output's rows in (source, row) order, without `request_id` (each engine's own)."""
    files = sorted((folder / kind).glob(f"*.{fmt}"))
    assert files, f"no {fmt} file in {folder / kind}"
    if fmt == "parquet":
        table = pa.concat_tables([pq.read_table(f).replace_schema_metadata() for f in files])
    else:
        table = pa.concat_tables([pacsv.read_csv(f) for f in files if f.stat().st_size])
    table = table.sort_by([("source", "ascending"), ("row", "ascending")])
    return table.drop_columns([n for n in ("request_id",) if n in table.schema.names])


def assert_same_run(local: Path, spark: Path, fmt: str = "parquet") -> None:
    for kind in ("predictions", "rejects"):
        ours, theirs = read(spark, kind, fmt), read(local, kind, fmt)
        assert ours.schema == theirs.schema, kind
        assert ours.to_pylist() == theirs.to_pylist(), kind
    summaries = [json.loads((p / "_summary.json").read_text()) for p in (local, spark)]
    for key in ("parts", "rows", "scored", "rejected", "model_version", "run_id", "arm"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[1]["engine"] == "spark"
    records = [sorted(p.glob("_parts/*.json")) for p in (local, spark)]
    assert [f.name for f in records[0]] == [f.name for f in records[1]]
    for a, b in zip(*records, strict=True):
        assert json.loads(a.read_text()) == json.loads(b.read_text())


def test_csv_parts_with_broken_rows_score_as_in_process_and_are_logged(
    project: Path, tmp_path: Path
) -> None:
    rows = broken_rows()
    folder = tmp_path / "parts"
    write_csv(folder / "a.csv", rows[:300])
    write_csv(folder / "b" / "c.csv", rows[300:] + rows[:20])  # rows 3, 7, 9 again, at 272..
    (folder / "_SUCCESS").write_text("")
    args = ("--input", str(folder), "--batch-rows", "64")
    local = score(project, *args, "--output", str(tmp_path / "local"))
    assert local.returncode == 1, local.stderr
    log = tmp_path / "log"
    history = project / "reports/serving-history.jsonl"
    before = len(history.read_text().splitlines())
    out = tmp_path / "spark"
    done = score(
        project, *args, "--output", str(out), "--engine", "spark", MLOPS_PREDICTION_LOG_DIR=str(log)
    )
    assert done.returncode == 1, done.stderr  # complete, with rejects
    assert "on Spark local[2]" in done.stdout and "(6 rejected)" in done.stdout, done.stdout
    assert_same_run(tmp_path / "local", out)
    rejects = read(out, "rejects")
    assert rejects.column("source").to_pylist() == ["a.csv"] * 3 + ["b/c.csv"] * 3
    assert rejects.column("row").to_pylist() == [3, 7, 9, 272, 276, 278]
    assert not out.with_name("spark.partial").exists()
    assert not list(out.rglob("*.crc")) and not list(out.rglob("*.tmp"))
    # Where the run's time went, phase by phase, within the stage's own clock (the model
    # loads beside the session's start, so its phase overlaps the others).
    summary = json.loads((out / "_summary.json").read_text())
    phases = summary["spark_phases"]
    assert {"Spark session", "UTF-8 check (CSV)", "predictions written"} <= set(phases)
    assert all(v >= 0 for v in phases.values())
    spent = sum(v for k, v in phases.items() if not k.startswith("model"))
    assert spent <= summary["seconds"] + 0.01
    assert phases["model loaded (beside the session's start)"] <= summary["seconds"]
    # Executors wrote the prediction log: every scored row, under the outputs' request ids.
    predictions = pq.read_table(sorted((out / "predictions").glob("*.parquet")))
    logged = pq.read_table(sorted(log.glob("*.parquet")))
    assert logged.num_rows == predictions.num_rows == len(rows) + 20 - 6
    assert set(logged.column("endpoint").to_pylist()) == {"score"}
    assert set(logged.column("request_id").to_pylist()) == set(
        predictions.column("request_id").to_pylist()
    )
    lines = history.read_text().splitlines()
    assert len(lines) == before + 1
    line = json.loads(lines[-1])
    assert (line["event"], line["alias"], line["why"]["rejected"]) == (
        "batch_scored",
        "champion",
        6,
    )


def test_parquet_parts_with_a_key_and_csv_output_score_as_in_process(
    project: Path, tmp_path: Path
) -> None:
    rows = source_rows()
    columns: dict[str, list[Any]] = {k: [float(r[k]) for r in rows] for k in rows[0]}
    del columns[TARGET]
    columns["patient"] = [f"p-{i:04d}" for i in range(len(rows))]
    full = pa.table(columns)
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(full.slice(0, 250), folder / "part-0.parquet", row_group_size=100)
    pq.write_table(full.slice(250), folder / "part-1.parquet", row_group_size=100)
    args = ("--input", str(folder), "--key", "patient", "--format", "csv")
    local = score(project, *args, "--output", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    done = score(project, *args, "--output", str(tmp_path / "spark"), "--engine", "spark")
    assert done.returncode == 0, done.stderr
    assert_same_run(tmp_path / "local", tmp_path / "spark", "csv")
    scored = read(tmp_path / "spark", "predictions", "csv")
    assert scored.column("patient").to_pylist() == columns["patient"]


def test_spark_submit_of_the_stage_keeps_positions_across_splits_of_one_file(
    project: Path, tmp_path: Path
) -> None:
    submit = pyspark_dir() / "bin" / "spark-submit"
    if not submit.exists():
        pytest.skip(f"this pyspark ships no spark-submit ({submit})")
    data = write_csv(tmp_path / "rows.csv", broken_rows())
    local = score(project, "--input", str(data), "--output", str(tmp_path / "local"))
    assert local.returncode == 1, local.stderr
    from mlops_runtime.score import spark

    out = tmp_path / "spark"
    done = subprocess.run(
        [
            *(str(submit), "--master", "local[2]"),
            # Splits of ~8 kB: the file is read by many tasks, each from the middle of it.
            *("--conf", "spark.sql.files.maxPartitionBytes=8192"),
            *("--conf", "spark.sql.files.openCostInBytes=0"),
            *("--conf", "spark.ui.enabled=false"),
            *(spark.__file__, "score", "--input", str(data), "--output", str(out)),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable),
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "on Spark local[2]" in done.stdout, done.stdout
    assert_same_run(tmp_path / "local", out)
    assert read(out, "rejects").column("row").to_pylist() == sorted(BROKEN)
    assert len(list((out / "predictions").glob("*.parquet"))) > 3  # it was split


def mixed(folder: Path) -> Path:
    write_csv(folder / "in" / "a.csv", source_rows()[:5])
    pq.write_table(pacsv.read_csv(folder / "in" / "a.csv"), folder / "in" / "b.parquet")
    return folder / "in"


def other_header(folder: Path) -> Path:
    rows = source_rows()[:5]
    write_csv(folder / "in" / "a.csv", rows)
    write_csv(folder / "in" / "b.csv", [dict(reversed(r.items())) for r in rows])
    return folder / "in"


def missing_column(folder: Path) -> Path:
    rows = [{k: v for k, v in r.items() if k != "mean_area"} for r in source_rows()[:5]]
    return write_csv(folder / "rows.csv", rows)


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda p: p / "nowhere.csv", (), "input not found"),
        (missing_column, (), "no column 'mean_area'"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", (), "not a CSV"),
        (mixed, (), "holds both CSV and Parquet parts"),
        (other_header, (), "its header is not"),
        (missing_column, ("--resume",), "--resume is for the in-process engine"),
    ],
    ids=["missing", "missing-column", "not-data", "mixed-formats", "other-header", "resume"],
)
def test_bad_input_stops_before_spark_with_exit_2_and_nothing_written(
    project: Path, tmp_path: Path, make: Any, extra: tuple[str, ...], message: str
) -> None:
    data = make(tmp_path)
    out = tmp_path / "scored"
    done = score(project, "--input", str(data), "--output", str(out), "--engine", "spark", *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not out.exists() and not out.with_name("scored.partial").exists()


def test_a_csv_part_that_is_not_utf8_throughout_stops_with_exit_2_naming_it(
    project: Path, tmp_path: Path
) -> None:
    """Spark's CSV reader decodes bad bytes to U+FFFD and reads on; in-process, Arrow refuses
    the file. Both engines must refuse it, and name the part."""
    folder = tmp_path / "in"
    write_csv(folder / "a.csv", source_rows()[:50])
    # The bad line well past the first read buffers, where a header read does not look.
    bad = write_csv(folder / "b.csv", source_rows() * 2)
    assert bad.stat().st_size > 1 << 17
    with bad.open("ab") as out:
        out.write(b"\xff\xfe" + b",1" * 30 + b"\n")
    args = ("--input", str(folder))
    local = score(project, *args, "--output", str(tmp_path / "local"))
    assert local.returncode == 2 and "cannot be read" in local.stderr, local.stderr
    out = tmp_path / "scored"
    done = score(project, *args, "--output", str(out), "--engine", "spark")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{bad}: cannot be read" in done.stderr, done.stderr
    assert "utf-8" in done.stderr.lower() and "Traceback" not in done.stderr, done.stderr
    assert not out.exists() and not out.with_name("scored.partial").exists()


def test_no_model_stops_with_exit_3(project: Path, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "rows.csv", source_rows()[:5])
    out = tmp_path / "scored"
    done = score(
        project, "--input", str(data), "--output", str(out), "--engine", "spark", "--model", "7"
    )
    assert done.returncode == 3, done.stderr
    assert "has no version 7" in done.stderr
    assert not out.exists()

"""Batch scoring on Spark: `score --engine spark` beside MLflow's `mlflow.pyfunc.spark_udf`.

    python benchmarks/spark_score_speed.py [--rows 1000000] [--repeats 1] [--batch-rows 65536]
                                           [--row-group 131072] [--keep] [--json PATH]
    python benchmarks/spark_score_speed.py --quick   # 20,000 rows

Target: in Spark `local[2]`, on the same model and the same Parquet input in the same run, the
score stage (the contract check of every row, predictions and rejects written, the prediction
log) scores more rows/s than `spark_udf` (no contract check, predictions written).

What it does, in a temp dir:

1. The project: specs/breast-cancer.mlops.yaml built by this checkout's compiler and trained
   with `python -m mlops_runtime train` (the MLflow registry in its SQLite file, alias
   `champion`).
2. The input: the training table's feature columns resampled with replacement (seeded) to N
   rows, one Parquet file in row groups of `--row-group` rows (so both of local[2]'s cores get
   row groups to read).
3. Timed, each a whole process, interleaved (the order swapped every other repeat):
   - ours: `python -m mlops_runtime score --engine spark --spark-master local[2] --input
     N.parquet --output DIR --batch-rows B` in the project;
   - MLflow: a script that starts a local[2] session with the same settings (no UI, Arrow
     batches of B rows), makes `mlflow.pyfunc.spark_udf(spark, "models:/NAME@champion")`,
     reads the same Parquet, and writes the `prediction` column alone as Parquet (the least a
     scoring job writes: no row position, no probabilities, no log). The model's signature
     gives an object output, so the UDF is made with `result_type="string"`.
   rows/s of each: the rows over the process's wall time (both start their JVM; that is part
   of what a user waits for); the phases each side timed itself are printed too (ours from
   its `_summary.json`'s `spark_phases`, MLflow's from its script).
4. Where our time goes, besides the phases: the floor of a local[2] session started and
   stopped (a process that does nothing else); and, in this process, the same `Scorer` over
   the same Arrow batches, its two halves timed apart: the contract check (the batch to the
   door's columns, the door's checks) and the model's prediction. Those are single-core CPU
   seconds; local[2] shares them between two executors.
5. Checks: ours scored N rows and rejected none, and both sides predicted the same labels,
   counted per class.

A missed target is printed as MISSED; the exit code is non-zero only when a command fails or
its output is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    PYTHON,
    ROOT,
    BenchError,
    RunFacts,
    Target,
    add_output,
    add_quiet,
    add_runtime,
    child_env,
    command_line,
    cpu_model,
    judge,
    load_text,
    memory_gib,
    parser,
    revision,
    table,
    utc_now,
    versions,
    wait_quiet,
    workdir,
    write_json,
)
from harness.proc import run_measured
from score_speed import DATASETS, build_and_train, feature_columns, predicted_labels, train_path

RATIO_AT_LEAST = 1.0
QUICK_ROWS = 20_000
QUICK_BATCH_ROWS = 4096
SEED = 7
MASTER = "local[2]"
PACKAGES = ("mlops-runtime", "pyspark", "mlflow", "scikit-learn", "pyarrow", "pandas", "numpy")

# argv: master, batch rows. Prints one JSON line: how long a session takes to start and stop.
SESSION = r"""
import json, sys, time
t0 = time.perf_counter()
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("floor").master(sys.argv[1])
         .config("spark.ui.enabled", "false")
         .config("spark.pyspark.python", sys.executable)
         .config("spark.pyspark.driver.python", sys.executable).getOrCreate())
spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", sys.argv[2])
t1 = time.perf_counter()
spark.stop()
print("SESSION_JSON " + json.dumps({"start": t1 - t0, "stop": time.perf_counter() - t1}))
"""

# In the project folder. argv: master, batch rows, parquet path, output folder, model name.
# Prints one JSON line with its phases.
MLFLOW = r"""
import json, sys, time
t0 = time.perf_counter()
import mlflow.pyfunc
from pyspark.sql import SparkSession
master, batch_rows, path, out, name = sys.argv[1:6]
spark = (SparkSession.builder.appName("mlflow-spark-udf").master(master)
         .config("spark.ui.enabled", "false")
         .config("spark.pyspark.python", sys.executable)
         .config("spark.pyspark.driver.python", sys.executable).getOrCreate())
spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", batch_rows)
t1 = time.perf_counter()
# The model's output signature is an object tensor, which spark_udf cannot infer a type from.
predict = mlflow.pyfunc.spark_udf(spark, f"models:/{name}@champion", result_type="string",
                                  env_manager="local")
t2 = time.perf_counter()
frame = spark.read.parquet(path)
frame.select(predict(*frame.columns).alias("prediction")).write.parquet(out)
t3 = time.perf_counter()
spark.stop()
t4 = time.perf_counter()
print("MLFLOW_JSON " + json.dumps({"session": t1 - t0, "spark_udf": t2 - t1,
      "read, predict, write": t3 - t2, "stop": t4 - t3}))
"""


def percent(value: float) -> str:
    return f"{value:.0%}"


@dataclass
class Run:
    side: str  # "ours" | "mlflow"
    rows: int
    wall_s: float  # the whole process
    rss_mib: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.rows / self.wall_s


@dataclass
class Results(RunFacts):
    rows: int = 0
    batch_rows: int = 0
    row_group: int = 0
    runs: list[Run] = field(default_factory=list)
    session: dict[str, float] = field(default_factory=dict)
    split: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def write_input(project: Path, train_csv: Path, rows: int, row_group: int, path: Path) -> None:
    """`rows` rows of the training table's feature columns, resampled, in `row_group` groups."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(train_csv)[feature_columns(project)]
    table_ = pa.Table.from_pandas(frame, preserve_index=False)
    rng = np.random.default_rng(SEED)
    with pq.ParquetWriter(path, table_.schema) as writer:
        for start in range(0, rows, row_group):
            size = min(row_group, rows - start)
            writer.write_table(table_.take(pa.array(rng.integers(0, len(frame), size))))


def json_of(stdout: str, prefix: str, what: str) -> dict[str, Any]:
    line = next((x for x in stdout.splitlines() if x.startswith(prefix)), None)
    if line is None:
        raise BenchError(f"{what} printed no {prefix.strip()} line:\n{stdout[-2000:]}")
    found: dict[str, Any] = json.loads(line.removeprefix(prefix))
    return found


def run_ours(
    project: Path, data: Path, rows: int, batch_rows: int, env: dict[str, str], work: Path
) -> tuple[Run, dict[str, int]]:
    out = work / "scored-ours"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [PYTHON, "-m", "mlops_runtime", "score", "--engine", "spark", "--spark-master", MASTER]
    cmd += ["--input", str(data), "--output", str(out), "--batch-rows", str(batch_rows)]
    proc, wall, rss = run_measured(cmd, cwd=project, env=env)
    summary = json.loads((out / "_summary.json").read_text())
    if summary["rows"] != rows or summary["scored"] != rows or summary["rejected"]:
        raise BenchError(f"score counted {summary} for {rows:,} rows:\n{proc.stdout[-2000:]}")
    labels = predicted_labels(out / "predictions")
    phases = {k: float(v) for k, v in summary.get("spark_phases", {}).items()}
    phases["the stage's own clock"] = float(summary["seconds"])
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(env["MLOPS_PREDICTION_LOG_DIR"], ignore_errors=True)  # no pile-up
    return Run("ours", rows, wall, rss, phases), labels


def run_mlflow(
    project: Path,
    data: Path,
    rows: int,
    batch_rows: int,
    env: dict[str, str],
    work: Path,
    script: Path,
) -> tuple[Run, dict[str, int]]:
    out = work / "scored-mlflow"
    shutil.rmtree(out, ignore_errors=True)
    name = json.loads((project / "config.json").read_text())["name"]
    cmd = [PYTHON, str(script), MASTER, str(batch_rows), str(data), str(out), str(name)]
    proc, wall, rss = run_measured(cmd, cwd=project, env=env)
    phases = {k: float(v) for k, v in json_of(proc.stdout, "MLFLOW_JSON ", "spark_udf").items()}
    labels = predicted_labels(out)
    if sum(labels.values()) != rows:
        raise BenchError(f"spark_udf wrote {sum(labels.values()):,} of {rows:,} predictions")
    shutil.rmtree(out, ignore_errors=True)
    return Run("mlflow", rows, wall, rss, phases), labels


def session_floor(env: dict[str, str], batch_rows: int, script: Path) -> dict[str, float]:
    proc, wall, _ = run_measured([PYTHON, str(script), MASTER, str(batch_rows)], env=env)
    found = {k: float(v) for k, v in json_of(proc.stdout, "SESSION_JSON ", "session").items()}
    found["process"] = wall
    return found


def scorer_split(project: Path, data: Path, batch_rows: int) -> dict[str, float]:
    """The stage's `Scorer` over the same batches in this process: each batch's contract check
    alone (the batch to the door's columns, the door's checks), then the whole `score` of it;
    the difference is the prediction and the output batches."""
    import pyarrow.parquet as pq

    from mlops_runtime.project import load_project
    from mlops_runtime.score.model import resolve
    from mlops_runtime.score.rows import door_rows
    from mlops_runtime.score.scoring import Scorer
    from mlops_runtime.score.stage import serving_door

    here = Path.cwd()
    os.chdir(project)  # the model source reads the project's relative paths
    try:
        loaded = load_project(project)
        model, _ = resolve(loaded.config, loaded.contract, "champion")
        scorer = Scorer(model, serving_door(loaded.config, loaded.contract))
        check = whole = 0.0
        rows = 0
        for batch in pq.ParquetFile(data).iter_batches(batch_size=batch_rows):
            began = time.perf_counter()
            scorer.door.split_columns(door_rows(batch, scorer.names))
            checked_at = time.perf_counter()
            scorer.score(batch, "part", rows, "split")
            whole += time.perf_counter() - checked_at
            check += checked_at - began
            rows += batch.num_rows
    finally:
        os.chdir(here)
    return {
        "the contract check (door_rows, Door.split_columns)": check,
        "the prediction and the output batches (the rest of Scorer.score)": whole - check,
        "Scorer.score": whole,
    }


def run(args: argparse.Namespace, r: Results, work: Path) -> None:
    env = child_env(
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
        MLOPS_PREDICTION_LOG_DIR=str(work / "prediction-log"),
    )
    if args.runtime is not None:
        env["PYTHONPATH"] = str(args.runtime.resolve())
        sys.path.insert(0, env["PYTHONPATH"])  # for the scorer split, in this process
    shutil.copytree(ROOT / "specs", work / "specs")
    dataset = DATASETS["breast-cancer"]
    started = time.perf_counter()
    project = build_and_train(work, dataset, env)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlruns.db'}"
    print(f"{dataset.name}: built and trained ({time.perf_counter() - started:.1f} s)", flush=True)
    data = work / f"{dataset.name}-{args.rows}.parquet"
    started = time.perf_counter()
    train_csv = work / "specs" / train_path(work / "specs" / dataset.spec)
    write_input(project, train_csv, args.rows, args.row_group, data)
    print(
        f"  {args.rows:,} rows: input written ({data.stat().st_size / 2**20:,.0f} MiB, "
        f"{time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    mlflow_script, session_script = work / "mlflow_udf.py", work / "session.py"
    mlflow_script.write_text(MLFLOW)
    session_script.write_text(SESSION)
    for rep in range(args.repeats):
        sides = ("ours", "mlflow") if rep % 2 == 0 else ("mlflow", "ours")
        labels: dict[str, dict[str, int]] = {}
        for side in sides:
            if side == "ours":
                got, labels[side] = run_ours(project, data, args.rows, args.batch_rows, env, work)
            else:
                got, labels[side] = run_mlflow(
                    project, data, args.rows, args.batch_rows, env, work, mlflow_script
                )
            r.runs.append(got)
            print(
                f"    run {rep + 1}: {side}: {got.rps:,.0f} rows/s (process {got.wall_s:.2f} s,"
                f" peak RSS {got.rss_mib:,.0f} MiB)",
                flush=True,
            )
        if labels["ours"] != labels["mlflow"]:
            raise BenchError(
                f"predicted labels differ: ours {labels['ours']}, spark_udf {labels['mlflow']}"
            )
    r.session = session_floor(env, args.batch_rows, session_script)
    os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    r.split = scorer_split(project, data, args.batch_rows)


def report(r: Results) -> None:
    sides = {s: [x for x in r.runs if x.side == s] for s in ("ours", "mlflow")}
    rps = {s: statistics.median(x.rps for x in runs) for s, runs in sides.items()}
    wall = {s: statistics.median(x.wall_s for x in runs) for s, runs in sides.items()}
    ratio = rps["ours"] / rps["mlflow"]
    r.measured["ratio"] = ratio
    print()
    print(f"{r.rows:,} rows, {MASTER}, Arrow batches of {r.batch_rows:,} rows, Parquet row")
    print(f"groups of {r.row_group:,}; rows/s over each process's wall time (medians)")
    print(
        table(
            ["side", "rows/s", "process", "peak RSS (driver)", "runs"],
            [
                [
                    "ours: score --engine spark",
                    f"{rps['ours']:,.0f}",
                    f"{wall['ours']:.1f} s",
                    f"{max(x.rss_mib for x in sides['ours']):,.0f} MiB",
                    str(len(sides["ours"])),
                ],
                [
                    "MLflow: spark_udf",
                    f"{rps['mlflow']:,.0f}",
                    f"{wall['mlflow']:.1f} s",
                    f"{max(x.rss_mib for x in sides['mlflow']):,.0f} MiB",
                    str(len(sides["mlflow"])),
                ],
            ],
        )
    )
    print(f"\nours / spark_udf: {ratio:.2f}x")
    target = Target(
        "rows/s ours / spark_udf, local[2], same run", "ratio", RATIO_AT_LEAST, at_least=True
    )
    verdicts, _ = judge([target], r.measured)
    print(table(["target", "wanted", "measured", "result"], verdicts))
    for side, title in (("ours", "ours (spark_phases of _summary.json)"), ("mlflow", "spark_udf")):
        keys = list(sides[side][0].phases)
        print(f"\nphases, {title}; medians")
        print(
            table(
                ["phase", "seconds"],
                [[k, f"{statistics.median(x.phases[k] for x in sides[side]):.2f} s"] for k in keys],
            )
        )
    print("\nthe floor: a local[2] session started and stopped, nothing else")
    print(table(["step", "seconds"], [[k, f"{v:.2f} s"] for k, v in r.session.items()]))
    print("\nthe scorer's work in one process over the same batches (one core's CPU seconds)")
    per = [[k, f"{v:.2f} s", f"{r.rows / v:,.0f}"] for k, v in r.split.items()]
    print(table(["part", "seconds", "rows/s"], per))
    for note in r.notes:
        print(note)


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__,
        quick=f"{QUICK_ROWS:,} rows in batches of {QUICK_BATCH_ROWS:,}, one round; the figures "
        "are mostly Spark's start",
    )
    parser_.add_argument("--rows", type=int, default=1_000_000, help="input rows")
    parser_.add_argument("--repeats", type=int, default=1, help="runs of each side")
    parser_.add_argument("--batch-rows", type=int, default=65_536, help="rows per Arrow batch")
    parser_.add_argument("--row-group", type=int, default=131_072, help="Parquet row group rows")
    add_runtime(parser_)
    add_quiet(parser_)
    add_output(parser_)
    args = parser_.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.batch_rows = QUICK_ROWS, 1, QUICK_BATCH_ROWS
        args.row_group = QUICK_ROWS // 2
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = Results(
        started=utc_now(),
        command=command_line("spark_score_speed.py", argv),
        commit=revision(),
        machine={
            "cpu": cpu_model(),
            "cpus": str(os.cpu_count()),
            "memory": f"{memory_gib():.1f} GiB",
            "kernel": platform.release(),
            "python": platform.python_version(),
            "versions": versions(PACKAGES),
        },
        load_before=load_text(),
        rows=args.rows,
        batch_rows=args.batch_rows,
        row_group=args.row_group,
    )
    print(f"{r.started}; commit {r.commit}; {r.machine['cpus']} CPUs, {r.machine['cpu']}")
    print(f"{r.machine['versions']}\nload average {r.load_before}", flush=True)
    if args.quick:
        r.notes.append(f"(--quick: {QUICK_ROWS:,} rows; Spark's start is most of each run)")
    with workdir("spark-score-speed-", keep=args.keep) as work:
        try:
            run(args, r, work)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            r.load_after = load_text()
    report(r)
    print(f"\nload average {r.load_before} at the start, {r.load_after} at the end")
    write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())

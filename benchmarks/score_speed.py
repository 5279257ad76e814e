"""Batch scoring speed: the `score` stage beside the fitted pipeline's bare `predict`.

    python benchmarks/score_speed.py [--datasets breast-cancer,churn] [--rows 1000000,10000000]
                                     [--repeats 2] [--batch-rows 65536] [--profile]
                                     [--keep] [--json PATH] [--runtime DIR]
    python benchmarks/score_speed.py --quick   # breast-cancer at level 0, 20,000 rows

Targets: in-process, the stage scores at least 90 % of the rows/s of the bare pipeline's
`predict` over the same Arrow batches in the same run, the contract check per row included;
its peak RSS at 10M rows is at most 1 GiB.

What it does, in a temp dir:

1. Projects. specs/breast-cancer.mlops.yaml and a churn spec built by this checkout's compiler
   (`mlops_compiler build`), trained with `python -m mlops_runtime train` in the project (the
   MLflow registry in its SQLite file, alias `champion`; at level 0 the model file). The churn
   spec reads its features from a feature store, which `score` does not (it reads every feature
   from its input), so its copy here has no `features:` section and trains on the flat table
   the feature store would serve: specs/data/churn_labels.csv joined to the latest
   churn_activity.csv snapshot before each label (pandas `merge_asof`, the view's 45-day ttl),
   the four derived features computed as the spec defines them.
2. Inputs. For each project and row count, the training table's feature columns resampled
   with replacement (seeded) to N rows, written as Parquet in row groups of 1M rows.
3. Timed, interleaved (the order swapped every other repeat), each a whole process:
   - ours: `python -m mlops_runtime score --input N.parquet --output DIR --batch-rows B` in the
     project: Parquet batches through the serving door (the contract check of every row), the
     served model, the predictions and rejects Parquet, the prediction log;
   - bare: a script that loads the same fitted pipeline as a user would
     (`mlflow.sklearn.load_model("models:/NAME@champion")`, at level 0 skops' or joblib's
     `load` of the model file), reads the same Parquet in batches of B rows with pyarrow and calls
     `pipeline.predict` on each batch's pandas frame; nothing is written.
   rows/s of each: the rows over the scoring loop's seconds (ours: the `seconds` of the run's
   `_summary.json`, the stage's own clock from the model loaded to the output renamed into
   place; bare: its loop, the Parquet read and `to_pandas` included). Whole-process wall time
   and peak RSS (`os.wait4`'s ru_maxrss) of both are printed too.
4. Checks. The run's summary must count N rows scored and none rejected (the rows are the
   training data's), and the predicted labels of ours must be the bare predict's, counted per
   class.
5. `--profile`: one more run of the stage under cProfile (at the first data set's smallest
   size): where the stage's time goes, by function.

A missed target is printed as MISSED; the exit code is non-zero only when a command fails or
its output is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
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
    run_checked,
    table,
    utc_now,
    versions,
    wait_quiet,
    workdir,
    write_json,
)
from harness.proc import run_measured

# The targets, as data: every data set at every size against bare predict, RSS at 10M rows.
RATIO_AT_LEAST = 0.90
RSS_AT_ROWS = 10_000_000
RSS_AT_MOST_MIB = 1024.0
QUICK_ROWS = 20_000
QUICK_BATCH_ROWS = 4096
SEED = 7
PACKAGES = ("mlops-runtime", "scikit-learn", "pyarrow", "pandas", "numpy", "mlflow", "skops")
ROW_GROUP = 1_000_000


def percent(value: float) -> str:
    return f"{value:.0%}"


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def targets(datasets: Sequence[str], sizes: Sequence[int]) -> list[Target]:
    out = [
        Target(
            f"{d}, {n:,} rows: rows/s ours / bare predict",
            f"{d} {n} ratio",
            RATIO_AT_LEAST,
            at_least=True,
            show=percent,
        )
        for d in datasets
        for n in sizes
    ]
    out += [
        Target(f"{d}, {n:,} rows: peak RSS of the stage", f"{d} {n} rss", RSS_AT_MOST_MIB, show=mib)
        for d in datasets
        for n in sizes
        if n >= RSS_AT_ROWS
    ]
    return out


@dataclass(frozen=True)
class Dataset:
    name: str
    spec: str  # under specs/
    level: int | None = None  # None: the spec's own


# In the project folder. argv: parquet path, batch rows, model kind ("registry" or the model
# file's path). Prints one JSON line.
BARE = r"""
import collections, json, sys, time
t0 = time.perf_counter()
import pyarrow.parquet as pq
path, batch_rows, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if model == "registry":
    import mlflow.sklearn
    pipeline = mlflow.sklearn.load_model(f"models:/{sys.argv[4]}@champion")
elif model.endswith(".skops"):
    import skops.io
    pipeline = skops.io.load(model, trusted=skops.io.get_untrusted_types(file=model))
else:
    import joblib
    pipeline = joblib.load(model)
t1 = time.perf_counter()
rows, labels = 0, collections.Counter()
for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
    predicted = pipeline.predict(batch.to_pandas())
    rows += len(predicted)
    labels.update(predicted.tolist())
t2 = time.perf_counter()
print("BARE_JSON " + json.dumps({"load": t1 - t0, "loop": t2 - t1, "rows": rows,
      "labels": {str(k): v for k, v in labels.items()}}))
"""


@dataclass
class Run:
    side: str  # "ours" | "bare"
    dataset: str
    rows: int
    loop_s: float  # the scoring loop
    wall_s: float  # the whole process
    rss_mib: float

    @property
    def rps(self) -> float:
        return self.rows / self.loop_s


@dataclass
class Results(RunFacts):
    batch_rows: int = 0
    runs: list[Run] = field(default_factory=list)
    measured: dict[str, float] = field(default_factory=dict)
    profile: list[tuple[str, float]] = field(default_factory=list)
    profile_of: str = ""
    notes: list[str] = field(default_factory=list)


DATASETS = {
    "breast-cancer": Dataset("breast-cancer", "breast-cancer.mlops.yaml"),
    "churn": Dataset("churn", "churn-flat.mlops.yaml"),
}


# --- the projects -----------------------------------------------------------------------------


def churn_flat(specs: Path) -> None:
    """specs/churn-flat.mlops.yaml and its data/churn_flat.csv: the churn spec without its
    feature store, trained on the table the store would serve (see the module's docstring)."""
    import numpy as np
    import pandas as pd
    import yaml

    labels = pd.read_csv(specs / "data" / "churn_labels.csv")
    activity = pd.read_csv(specs / "data" / "churn_activity.csv")
    for frame in (labels, activity):
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    activity["last_login_at"] = pd.to_datetime(activity["last_login_at"], utc=True)
    joined = pd.merge_asof(
        labels.sort_values("event_timestamp"),
        activity.sort_values("event_timestamp"),
        on="event_timestamp",
        by="customer_id",
        tolerance=pd.Timedelta(days=45),
        direction="backward",
    ).dropna(subset=["monthly_charges"])
    joined["log_total_charges"] = np.log1p(joined["total_charges"])
    since = joined["event_timestamp"] - joined["last_login_at"]
    joined["days_since_login"] = (since.dt.total_seconds() / 86400).clip(lower=0)
    joined["calls_bucket"] = np.digitize(joined["support_calls"], [1, 3, 6])
    joined["charges_per_month"] = joined["total_charges"] / joined["tenure_months"]
    joined["support_calls"] = joined["support_calls"].astype(int)
    spec = yaml.safe_load((specs / "churn.mlops.yaml").read_text())
    columns = list(spec["data"]["contract"]["columns"])
    joined[columns].to_csv(specs / "data" / "churn_flat.csv", index=False)
    spec.pop("features")
    spec["data"]["train"] = "data/churn_flat.csv"
    spec["description"] = "Customer churn (the feature store's table as a flat file)."
    (specs / "churn-flat.mlops.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def build_and_train(work: Path, dataset: Dataset, env: dict[str, str]) -> Path:
    out = f"build-{dataset.name}"
    cmd = [PYTHON, "-m", "mlops_compiler", "build", f"specs/{dataset.spec}", "--out", out]
    if dataset.level is not None:
        cmd += ["--level", str(dataset.level)]
    run_checked(cmd, cwd=work, env=child_env(PYTHONPATH=str(ROOT)))
    project = work / out / dataset.name
    run_checked([PYTHON, "-m", "mlops_runtime", "train"], cwd=project, env=env)
    return project


def feature_columns(project: Path) -> list[str]:
    config = json.loads((project / "config.json").read_text())
    contract = json.loads((project / "contract.json").read_text())
    target = config.get("data", {}).get("target") or config.get("target")
    return [c for c in contract["columns"] if c != target]


def write_input(project: Path, train_csv: Path, rows: int, path: Path) -> None:
    """`rows` rows of the training table's feature columns, resampled, in 1M-row groups."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(train_csv)[feature_columns(project)]
    table_ = pa.Table.from_pandas(frame, preserve_index=False)
    rng = np.random.default_rng(SEED)
    with pq.ParquetWriter(path, table_.schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            size = min(ROW_GROUP, rows - start)
            writer.write_table(table_.take(pa.array(rng.integers(0, len(frame), size))))


# --- the two sides ----------------------------------------------------------------------------


def model_arg(project: Path) -> list[str]:
    config = json.loads((project / "config.json").read_text())
    if (project / "mlruns.db").is_file():
        name = config.get("tracking", {}).get("registered_model") or config["name"]
        return ["registry", str(name)]
    found = [p for p in (project / "model").glob("model.*") if p.suffix in (".skops", ".joblib")]
    if not found:
        raise BenchError(f"{project}: no registry and no model file in model/ after training")
    return [str(found[0])]


def run_ours(
    project: Path, data: Path, rows: int, batch_rows: int, env: dict[str, str], work: Path
) -> tuple[Run, dict[str, int]]:
    out = work / "scored"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [PYTHON, "-m", "mlops_runtime", "score", "--input", str(data), "--output", str(out)]
    cmd += ["--batch-rows", str(batch_rows)]
    proc, wall, rss = run_measured(cmd, cwd=project, env=env)
    summary = json.loads((out / "_summary.json").read_text())
    if summary["rows"] != rows or summary["scored"] != rows or summary["rejected"]:
        raise BenchError(f"score counted {summary} for {rows:,} rows:\n{proc.stdout[-2000:]}")
    labels = predicted_labels(out / "predictions")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(env["MLOPS_PREDICTION_LOG_DIR"], ignore_errors=True)  # no pile-up
    run = Run("ours", project.name, rows, float(summary["seconds"]), wall, rss)
    return run, labels


def predicted_labels(folder: Path) -> dict[str, int]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    column = ds.dataset(folder, format="parquet").to_table(columns=["prediction"])["prediction"]
    counts = pc.value_counts(column).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in counts}


def run_bare(
    project: Path, data: Path, rows: int, batch_rows: int, env: dict[str, str], script: Path
) -> tuple[Run, dict[str, int]]:
    cmd = [PYTHON, str(script), str(data), str(batch_rows), *model_arg(project)]
    proc, wall, rss = run_measured(cmd, cwd=project, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BARE_JSON ")), None)
    if line is None:
        raise BenchError(f"the bare script printed no result:\n{proc.stdout}{proc.stderr}")
    result = json.loads(line.removeprefix("BARE_JSON "))
    if result["rows"] != rows:
        raise BenchError(f"bare predict answered {result['rows']:,} of {rows:,} rows")
    labels = {str(k): int(v) for k, v in result["labels"].items()}
    return Run("bare", project.name, rows, float(result["loop"]), wall, rss), labels


# --- the profile ------------------------------------------------------------------------------

PROFILE = {
    "the stage (score.stage._run)": ("score/stage.py", "_run"),
    "  the model resolved, loaded, compiled and verified": ("score/model.py", "resolve"),
    "  the parts scored (_score_part)": ("score/stage.py", "_score_part"),
    "    Parquet batches read (read_batches)": ("score/inputs.py", "read_batches"),
    "    Scorer.score": ("score/scoring.py", "score"),
    "      Arrow batch to the door's columns (door_rows)": ("score/rows.py", "door_rows"),
    "      the door (Door.split_columns)": ("serve/record_validation.py", "split_columns"),
    "      the served model (predictor.predict)": ("serve/fast_predict.py", "predict"),
    "    outputs written (PartWriter.write)": ("score/output.py", "write"),
    "    prediction log entry (_log)": ("score/stage.py", "_log"),
    "  the prediction log flushed": ("serve/prediction_log.py", "flush"),
}


def profile(project: Path, data: Path, batch_rows: int, env: dict[str, str], work: Path) -> Any:
    stats = work / "score.pstats"
    out = work / "scored-profile"
    cmd = [PYTHON, "-m", "cProfile", "-o", str(stats), "-m", "mlops_runtime", "score"]
    cmd += ["--input", str(data), "--output", str(out), "--batch-rows", str(batch_rows)]
    run_checked(cmd, cwd=project, env=env)
    shutil.rmtree(out, ignore_errors=True)
    s = pstats.Stats(str(stats))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = s.stats  # type: ignore[attr-defined]
    found = []
    for label, (suffix, name) in PROFILE.items():
        # The outermost call of each (a recursive or nested one would count twice).
        totals = [v[3] for (f, _, fn), v in raw.items() if fn == name and f.endswith(suffix)]
        found.append((label, max(totals, default=0.0)))
    return found


# --- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, r: Results, work: Path) -> None:
    env = child_env(
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
        MLOPS_PREDICTION_LOG_DIR=str(work / "prediction-log"),
    )
    if args.runtime is not None:
        env["PYTHONPATH"] = str(args.runtime.resolve())
    shutil.copytree(ROOT / "specs", work / "specs")
    if "churn" in args.datasets:
        churn_flat(work / "specs")
    script = work / "bare.py"
    script.write_text(BARE)
    first: tuple[Path, Path] | None = None
    for name in args.datasets:
        dataset = DATASETS[name]
        if args.quick:
            dataset = Dataset(dataset.name, dataset.spec, level=0)
        started = time.perf_counter()
        project = build_and_train(work, dataset, env)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlruns.db'}"
        print(f"{name}: built and trained ({time.perf_counter() - started:.1f} s)", flush=True)
        train_csv = work / "specs" / train_path(work / "specs" / dataset.spec)
        for rows in args.rows:
            data = work / f"{name}-{rows}.parquet"
            started = time.perf_counter()
            write_input(project, train_csv, rows, data)
            print(
                f"  {rows:,} rows: input written ({data.stat().st_size / 2**20:,.0f} MiB, "
                f"{time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            first = first or (project, data)
            for rep in range(args.repeats):
                sides = ("ours", "bare") if rep % 2 == 0 else ("bare", "ours")
                labels: dict[str, dict[str, int]] = {}
                for side in sides:
                    if side == "ours":
                        got, labels[side] = run_ours(
                            project, data, rows, args.batch_rows, env, work
                        )
                    else:
                        got, labels[side] = run_bare(
                            project, data, rows, args.batch_rows, env, script
                        )
                    r.runs.append(got)
                    print(
                        f"    run {rep + 1}: {side}: {got.rps:,.0f} rows/s (loop {got.loop_s:.2f} s,"
                        f" process {got.wall_s:.2f} s, peak RSS {got.rss_mib:,.0f} MiB)",
                        flush=True,
                    )
                if labels["ours"] != labels["bare"]:
                    raise BenchError(
                        f"{name}, {rows:,} rows: predicted labels differ: ours "
                        f"{labels['ours']}, bare {labels['bare']}"
                    )
            data.unlink()  # 10M rows of input are hundreds of MiB
        env.pop("MLFLOW_TRACKING_URI", None)
    if args.profile and first is not None:
        project, data = first
        print("profile: one more run of the stage under cProfile ...", flush=True)
        if not data.exists():
            write_input(project, train_csv_of(work, project), args.rows[0], data)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlruns.db'}"
        r.profile = profile(project, data, args.batch_rows, env, work)
        r.profile_of = f"{project.name}, {args.rows[0]:,} rows"


def train_path(spec: Path) -> str:
    import yaml

    return str(yaml.safe_load(spec.read_text())["data"]["train"])


def train_csv_of(work: Path, project: Path) -> Path:
    dataset = DATASETS[project.name]
    return work / "specs" / train_path(work / "specs" / dataset.spec)


def medians(r: Results) -> dict[tuple[str, int, str], dict[str, float]]:
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for x in r.runs:
        groups.setdefault((x.dataset, x.rows, x.side), []).append(x)
    return {
        key: {
            "rps": statistics.median(x.rps for x in runs),
            "loop": statistics.median(x.loop_s for x in runs),
            "wall": statistics.median(x.wall_s for x in runs),
            "rss": max(x.rss_mib for x in runs),
            "runs": float(len(runs)),
        }
        for key, runs in groups.items()
    }


def report(r: Results, args: argparse.Namespace) -> None:
    m = medians(r)
    rows = []
    for dataset in args.datasets:
        for n in args.rows:
            ours, bare = m.get((dataset, n, "ours")), m.get((dataset, n, "bare"))
            if ours is None or bare is None:
                continue
            ratio = ours["rps"] / bare["rps"]
            r.measured[f"{dataset} {n} ratio"] = ratio
            r.measured[f"{dataset} {n} rss"] = ours["rss"]
            rows.append([
                dataset, f"{n:,}", f"{ours['rps']:,.0f}", f"{bare['rps']:,.0f}", f"{ratio:.2f}x",
                f"{ours['wall']:.1f} s", f"{bare['wall']:.1f} s",
                f"{ours['rss']:,.0f} MiB", f"{bare['rss']:,.0f} MiB", f"{ours['runs']:.0f}",
            ])  # fmt: skip
    print()
    print(f"batches of {r.batch_rows:,} rows; rows/s: medians of the scoring loops")
    print(
        table(
            [
                "data set", "rows", "ours rows/s", "bare predict rows/s", "ours / bare",
                "ours process", "bare process", "ours peak RSS", "bare peak RSS", "runs",
            ],
            rows,
        )
    )  # fmt: skip
    print()
    verdicts, _ = judge(targets(args.datasets, args.rows), r.measured)
    print(table(["target", "wanted", "measured", "result"], verdicts))
    for note in r.notes:
        print(note)
    if r.profile:
        print(f"\ncProfile of the stage ({r.profile_of}; cumulative s, profiler overhead in):")
        print(table(["function", "cumulative"], [[k, f"{v:.2f} s"] for k, v in r.profile]))


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__,
        quick=f"breast-cancer only, built at level 0 (the model file: no registry to train), "
        f"{QUICK_ROWS:,} rows in batches of {QUICK_BATCH_ROWS:,}, one round, no profile; "
        "churn and the RSS target (10M rows) left out",
    )
    parser_.add_argument("--datasets", default="breast-cancer,churn", help=", ".join(DATASETS))
    parser_.add_argument("--rows", default="1000000,10000000", help="input sizes, comma-separated")
    parser_.add_argument("--repeats", type=int, default=2, help="runs of each side per size")
    parser_.add_argument("--batch-rows", type=int, default=65_536, help="rows per Arrow batch")
    parser_.add_argument("--profile", action="store_true", help="cProfile one run of the stage")
    add_runtime(parser_)
    add_quiet(parser_)
    add_output(parser_)
    args = parser_.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        parser_.error(f"unknown data set(s) {unknown}; known: {', '.join(DATASETS)}")
    args.rows = [int(x) for x in args.rows.split(",") if x.strip()]
    if args.quick:
        args.datasets, args.rows, args.repeats = ["breast-cancer"], [QUICK_ROWS], 1
        args.batch_rows, args.profile = QUICK_BATCH_ROWS, False
    wait_quiet(args.wait_quiet, args.quiet_load)
    r = Results(
        started=utc_now(),
        command=command_line("score_speed.py", argv),
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
        batch_rows=args.batch_rows,
    )
    print(f"{r.started}; commit {r.commit}; {r.machine['cpus']} CPUs, {r.machine['cpu']}")
    print(f"{r.machine['versions']}\nload average {r.load_before}", flush=True)
    if args.quick:
        r.notes.append(
            "(--quick: breast-cancer at level 0 only, no churn, no 10M-row RSS target, no profile)"
        )
    with workdir("score-speed-", keep=args.keep) as work:
        try:
            run(args, r, work)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            r.load_after = load_text()
    report(r, args)
    print(f"\nload average {r.load_before} at the start, {r.load_after} at the end")
    write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drift-monitor benchmark: the project's monitor beside Evidently's DataDriftPreset.

    python benchmarks/monitor_speed.py [--sizes 10k,100k,1m,10m] [--evidently-sizes 10k,100k,1m]
                                       [--runs N] [--venv PATH] [--keep] [--json PATH]
    python benchmarks/monitor_speed.py --quick   # 25,000 training rows, one 10K window, 1 run

(--quick leaves Evidently out, and says so, when its virtualenv is not made yet, unless
--tools names it: making it takes minutes.)

The script makes a seeded synthetic table (20 float features x00..x19 of four shapes, 2
category features c0 (a..e) and c1 (p..t), a binary target), writes it as Parquet in a temp
dir, writes an mlops.yaml for it (level 1, HistGradientBoostingClassifier with max_iter 20, a
drift monitor with Evidently's methods) and builds a real project with `python -m
mlops_compiler build`. `python -m mlops_runtime train` in the project folder fits the model and
writes the reference (the training split, 1,000,000 of the 1,250,000 rows), once.

Then, for every window size (10K, 100K, 1M and 10M rows by default):

1. The prediction log the server would write: Parquet files of 250,000 rows (fewer for
   smaller windows) in the project's `prediction_log/`, written by the runtime's own
   `PredictionLog` from columnar `Entry` objects of 50,000 rows, as big batches are logged.
   The rows are drawn like the training rows except for a known set of columns: five floats
   (x00, x05, x10, x15, x19, one of each shape and one more) are shifted by half their
   standard deviation and c1's mix of values is reversed; the other 16 columns do not drift.
2. The project's monitor: `python -m mlops_runtime monitor --window-records N --json` in the
   project folder. Its JSON report gives, per feature, `method`, `score`, `threshold` and
   `drifted`.
3. Evidently 0.7 (sizes up to 1M by default): the same current rows as Parquet (the log's
   input columns), the training split as the reference, `Report([DataDriftPreset(
   num_method="wasserstein", cat_method="jensenshannon", num_threshold=0.1,
   cat_threshold=0.1)])`, run by `benchmarks/monitor/evidently_drift.py` in a virtualenv of
   its own (Evidently 0.7 needs pandas < 3), created once under ~/.cache/mlops-bench/.

Both use the same test and threshold for each column: Wasserstein distance divided by the
reference's standard deviation for numeric columns, Jensen-Shannon distance for categorical
ones, drift at >= 0.1 (Evidently's defaults for references of more than 1000 rows). Each
program runs as a separate process under a fresh wrapper process that reports its wall time
and peak RSS (`getrusage(RUSAGE_CHILDREN)`). With --runs N each size runs N times,
alternating the programs; the fastest run is reported with its peak RSS.

Targets, at 1M logged rows against the 1M-row reference: the monitor at least 20x faster
(wall) than Evidently, at most 1/4 of its peak RSS, and the same per-column verdicts.

A missed target is printed as MISSED; the exit code is non-zero only on errors (a command that
fails, a report without the columns, methods or thresholds configured, a window of the wrong
size).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml
from harness import (
    PYTHON,
    BenchError,
    Target,
    add_output,
    command_line,
    cpu_model,
    judge,
    load_text,
    memory_gib,
    parser,
    print_table,
    revision,
    run_checked,
    versions,
    workdir,
    write_json,
)
from harness import child_env as clean_env

EVIDENTLY_SCRIPT = Path(__file__).resolve().parent / "monitor" / "evidently_drift.py"
NAME = "monitor-speed"
SEED = 20261201
REFERENCE_ROWS = 1_000_000  # the training split, the monitor's reference
TEST_SIZE = 0.2
TRAIN_ROWS = round(REFERENCE_ROWS / (1 - TEST_SIZE))  # 1,250,000 rows in the data file
FILE_ROWS = 250_000  # rows per prediction-log file
BATCH_ROWS = 50_000  # rows per logged request (a big, columnar batch)

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORIES = {"c0": list("abcde"), "c1": list("pqrst")}
CATEGORICAL = list(CATEGORIES)
FEATURES = NUMERIC + CATEGORICAL
TARGET = "label"
SHAPES = ("normal", "uniform", "gamma", "lognormal")  # x00 normal, x01 uniform, ...
# Category mixes: the reference's, and c1's in the drifted window (reversed).
MIX = {"c0": [0.35, 0.25, 0.2, 0.1, 0.1], "c1": [0.3, 0.25, 0.2, 0.15, 0.1]}
DRIFT_MIX = {"c1": [0.1, 0.15, 0.2, 0.25, 0.3]}
SHIFTED = ["x00", "x05", "x10", "x15", "x19"]  # + 0.5 standard deviations
SHIFT = 0.5
DRIFTED = {*SHIFTED, *DRIFT_MIX}

NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
THRESHOLD = 0.1
TARGET_ROWS = 1_000_000  # the window the targets are judged at
TARGETS = (
    Target(
        "Evidently wall / monitor wall", "speed", 20.0, at_least=True, show=lambda x: f"{x:.1f}x"
    ),
    Target("monitor peak RSS / Evidently peak RSS", "rss", 0.25, show=lambda x: f"{x:.2f}"),
    Target(
        "per-column verdicts, same test and threshold: columns that differ",
        "differ",
        0,
        show=lambda x: f"{x:.0f}",
    ),
)
# --quick: a smaller reference and one window, still judged against the targets.
QUICK_REFERENCE_ROWS = 20_000
QUICK_SIZES = [10_000]

EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas<3", "pyarrow")
EVIDENTLY_VERSION = "0.7.23"
DEFAULT_VENV = Path.home() / ".cache" / "mlops-bench" / "evidently-venv"
DEFAULT_SIZES = "10k,100k,1m,10m"
DEFAULT_EVIDENTLY_SIZES = "10k,100k,1m"
PACKAGES = ("mlops-runtime", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn")
MONITOR_VERDICT_CODES = (0, 1, 3)  # ok, warning, alert (docs/runtime-exit-codes.md)

# Runs a command and writes its wall time and peak RSS (the largest of the processes it waited
# for, KiB on Linux) to argv[1]. A fresh wrapper per run: RUSAGE_CHILDREN only grows.
MEASURE = """\
import json, resource, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
code = subprocess.run(cmd).returncode
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(out, "w") as handle:
    json.dump({"wall": wall, "peak_kib": peak, "code": code}, handle)
"""


# --- data -------------------------------------------------------------------------------------


def column_params() -> dict[str, tuple[str, float, float]]:
    """Shape, mean and standard deviation of each float column (seeded, fixed)."""
    rng = np.random.default_rng(SEED)
    return {
        name: (SHAPES[i % len(SHAPES)], float(rng.normal(0.0, 10.0)), float(rng.uniform(0.5, 5.0)))
        for i, name in enumerate(NUMERIC)
    }


PARAMS = column_params()
WEIGHTS = np.random.default_rng(SEED + 1).normal(0.0, 0.6, len(NUMERIC))
CATEGORY_EFFECTS = {
    name: np.random.default_rng(SEED + 2 + i).normal(0.0, 0.5, len(values))
    for i, (name, values) in enumerate(CATEGORIES.items())
}


def standard(shape: str, rng: np.random.Generator, rows: int) -> np.ndarray:
    """Mean 0, standard deviation 1, of the given shape."""
    if shape == "normal":
        return rng.standard_normal(rows)
    if shape == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), rows)
    if shape == "gamma":  # shape 2: skewed right
        skewed: np.ndarray = (rng.gamma(2.0, 1.0, rows) - 2.0) / np.sqrt(2.0)
        return skewed
    sigma = 0.5  # lognormal
    mean, var = np.exp(sigma**2 / 2), (np.exp(sigma**2) - 1) * np.exp(sigma**2)
    lognormal: np.ndarray = (rng.lognormal(0.0, sigma, rows) - mean) / np.sqrt(var)
    return lognormal


def draw(rng: np.random.Generator, rows: int, *, drift: bool) -> tuple[dict[str, Any], np.ndarray]:
    """Feature columns (floats as float64, categories as object arrays of text) and the
    probability of class 1."""
    columns: dict[str, Any] = {}
    logit = np.zeros(rows)
    for weight, (name, (shape, mean, std)) in zip(WEIGHTS, PARAMS.items(), strict=True):
        z = standard(shape, rng, rows)
        logit += weight * z
        if drift and name in SHIFTED:
            z += SHIFT
        columns[name] = mean + std * z
    for name, values in CATEGORIES.items():
        mix = DRIFT_MIX[name] if drift and name in DRIFT_MIX else MIX[name]
        codes = rng.choice(len(values), rows, p=mix)
        logit += CATEGORY_EFFECTS[name][codes]
        columns[name] = np.asarray(values, dtype=object)[codes]
    return columns, 1.0 / (1.0 + np.exp(-logit))


def write_training_data(path: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(SEED + 10)
    columns, probability = draw(rng, TRAIN_ROWS, drift=False)
    columns[TARGET] = (rng.random(TRAIN_ROWS) < probability).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_parquet(path, index=False)


@dataclass
class Window:
    rows: int
    files: int
    log_bytes: int
    seconds: float  # to draw and write it (not measured against anything)
    current: Path | None  # the same rows for Evidently, or None


def write_window(
    log_dir: Path, rows: int, current: Path | None, *, model: str, version: str, run_id: str
) -> Window:
    """`rows` logged predictions in files of FILE_ROWS rows, written by the runtime's
    PredictionLog, and (if `current` is given) the same input columns as one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_runtime.serve.prediction_log import Entry, PredictionLog

    start = time.perf_counter()
    shutil.rmtree(log_dir, ignore_errors=True)
    log = PredictionLog(log_dir, rotate_mb=4096, max_rows=FILE_ROWS + BATCH_ROWS, keep_files=None)
    log.start()
    writer = None
    try:
        done = 0
        file_index = 0
        while done < rows:
            file_rows = min(FILE_ROWS, rows - done)
            rng = np.random.default_rng([SEED, 100, file_index])  # same rows at every size
            file_done = 0
            while file_done < file_rows:
                n = min(BATCH_ROWS, file_rows - file_done)
                columns, probability = draw(rng, n, drift=True)
                entry = Entry(
                    request_id=uuid.UUID(int=int(rng.integers(2**63))).hex,
                    ts=time.time(),
                    model=model,
                    model_version=version,
                    run_id=run_id,
                    arm="champion",
                    endpoint="/v2/models/infer",
                    inputs=None,
                    # An array, as the server logs a big batch (Entry's hint says Sequence).
                    predictions=cast(Sequence[Any], (probability >= 0.5).astype(np.int64)),
                    probabilities=np.column_stack([1.0 - probability, probability]),
                    latency_ms=float(rng.uniform(20.0, 60.0)),
                    columns=columns,
                )
                if not log.submit(entry):
                    raise BenchError("the prediction log dropped a batch (its queue was full)")
                if current is not None:
                    table = pa.table({name: columns[name] for name in FEATURES})
                    if writer is None:
                        writer = pq.ParquetWriter(current, table.schema, compression="zstd")
                    writer.write_table(table)
                file_done += n
            if not log.flush(timeout=300.0):
                raise BenchError("the prediction log did not finish writing within 300 s")
            done += file_rows
            file_index += 1
    finally:
        log.close()
        if writer is not None:
            writer.close()
    if log.dropped:
        raise BenchError(f"the prediction log dropped {log.dropped} rows")
    files = sorted(log_dir.glob("predictions-*.parquet"))
    if len(files) != file_index or list(log_dir.glob("*.part")):
        raise BenchError(f"expected {file_index} complete log files in {log_dir}, found {files}")
    logged = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if logged != rows:
        raise BenchError(f"the prediction log holds {logged} rows, {rows} were written")
    return Window(
        rows,
        len(files),
        sum(f.stat().st_size for f in files),
        time.perf_counter() - start,
        current,
    )


# --- spec, project, reference -----------------------------------------------------------------


def spec_document(data_file: str) -> dict[str, Any]:
    columns: dict[str, Any] = {name: {"type": "float"} for name in NUMERIC}
    for name, values in CATEGORIES.items():
        columns[name] = {"type": "category", "values": values}
    columns[TARGET] = {"type": "int", "min": 0, "max": 1}
    return {
        "apiVersion": "mlops/v1",
        "name": NAME,
        "description": "Synthetic 22-feature table for benchmarks/monitor_speed.py.",
        "level": 1,
        "data": {
            "train": data_file,
            "target": TARGET,
            "split": {"test_size": TEST_SIZE, "seed": 42, "stratify": True},
            "contract": {"min_rows": 1000, "extra_columns": "forbid", "columns": columns},
        },
        "features": {
            "numeric": {"columns": NUMERIC, "impute": "median", "scale": "standard"},
            "categorical": {
                "columns": CATEGORICAL,
                "impute": "most_frequent",
                "encode": "onehot",
            },
        },
        "model": {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 20, "random_state": 42},
            "gate": {"metrics": {"roc_auc": ">= 0.6"}},
        },
        "monitors": {
            "drift": {
                "method": NUM_METHOD,
                "threshold": THRESHOLD,
                "columns": {
                    name: {"method": CAT_METHOD, "threshold": THRESHOLD} for name in CATEGORICAL
                },
            },
        },
    }


def child_env() -> dict[str, str]:
    return clean_env()


def build_project(work: Path) -> Path:
    spec = work / f"{NAME}.mlops.yaml"
    spec.write_text(yaml.safe_dump(spec_document("data/train.parquet"), sort_keys=False))
    run_checked([PYTHON, "-m", "mlops_compiler", "build", str(spec), "--out", str(work / "out")])
    project = work / "out" / NAME
    config = project / "config.json"
    if not config.is_file():
        raise BenchError(f"the build wrote no {config}")
    return project


def monitor_missing(project: Path) -> str | None:
    """Why `python -m mlops_runtime monitor` cannot run in this project, or None."""
    stages = json.loads((project / "config.json").read_text()).get("stages", [])
    if "monitor" not in stages:
        return f"the built project's config.json lists no monitor stage (stages: {stages})"
    from mlops_runtime.__main__ import STAGES

    if "monitor" not in STAGES:
        return "the installed mlops_runtime has no monitor stage (python -m mlops_runtime monitor)"
    return None


@dataclass
class Training:
    seconds: float
    model: str
    version: str
    run_id: str
    summary: str


def train(project: Path) -> Training:
    start = time.perf_counter()
    proc = run_checked([PYTHON, "-m", "mlops_runtime", "train"], cwd=project, env=child_env())
    seconds = time.perf_counter() - start
    profile = project / "reports" / "reference_profile.json"
    if not profile.is_file():
        raise BenchError(f"training wrote no {profile}")
    from mlops_runtime.project import load_project

    config = load_project(project).config
    model = config["tracking"]["registered_model"]
    version, run_id, summary = "1", "", []
    for line in proc.stdout.splitlines():
        text = line.strip()
        if "registered version" in text:
            version = text.split("registered version", 1)[1].split()[0]
            summary.append(text)
        elif text.startswith("metrics:"):
            summary.append(text)
        elif text.startswith("run:"):
            run_id = text.split(":", 1)[1].strip()
    if not run_id:
        raise BenchError(f"the train stage printed no run id:\n{proc.stdout}")
    return Training(seconds, model, version, run_id, "; ".join(summary))


def write_reference(project: Path, data: Path, out: Path) -> int:
    """The training split's feature columns, as the train stage chose them, for Evidently;
    checked against the reference profile the train stage wrote."""
    import pandas as pd

    from mlops_runtime.data import split_positions
    from mlops_runtime.project import load_project

    frame = pd.read_parquet(data)
    positions, _ = split_positions(frame, load_project(project).config)
    reference = frame.take(positions)[FEATURES].reset_index(drop=True)
    del frame
    reference.to_parquet(out, index=False)
    profile = json.loads((project / "reports" / "reference_profile.json").read_text())
    if int(profile["rows"]) != len(reference):
        raise BenchError(
            f"the reference profile describes {profile['rows']} rows, the training split has "
            f"{len(reference)}: Evidently would not see the monitor's reference"
        )
    features = profile.get("features") or {}
    try:
        for name in NUMERIC:
            want = float(features[name]["mean"])
            got = float(reference[name].mean())
            if abs(want - got) > 1e-9 * max(1.0, abs(got)):
                raise BenchError(f"{name}: reference profile mean {want}, training split {got}")
        for name in CATEGORICAL:
            want_mix = features[name]["frequencies"]
            got_mix = reference[name].value_counts(normalize=True)
            if any(abs(float(want_mix[k]) - float(got_mix[k])) > 1e-9 for k in want_mix):
                raise BenchError(f"{name}: reference profile frequencies {want_mix} != {got_mix}")
    except (KeyError, TypeError) as exc:
        raise BenchError(
            f"the reference profile has no {exc} where docs/reference-profile.md puts it"
        ) from None
    return len(reference)


# --- the two programs -------------------------------------------------------------------------


@dataclass
class Measured:
    tool: str
    rows: int
    run: int
    wall: float
    peak_mib: float
    load: float  # 1-minute load average when the run started
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    status: str = ""  # the monitor's report status


def measured_run(
    cmd: Sequence[str], work: Path, *, cwd: Path, env: Mapping[str, str]
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    out = work / "measure.json"
    out.unlink(missing_ok=True)
    wrapper = [PYTHON, "-c", MEASURE, str(out), *cmd]
    proc = subprocess.run(wrapper, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        raise BenchError(f"the measuring wrapper failed:\n{proc.stdout}{proc.stderr}")
    found = json.loads(out.read_text())
    proc.returncode = int(found["code"])
    return float(found["wall"]), found["peak_kib"] / 1024.0, proc


def run_monitor(project: Path, work: Path, rows: int, index: int) -> Measured:
    cmd = [PYTHON, "-m", "mlops_runtime", "monitor", "--window-records", str(rows), "--json"]
    load = os.getloadavg()[0]
    wall, peak, proc = measured_run(cmd, work, cwd=project, env=child_env())
    # 0 ok, 1 warning, 3 alert (drift is found on purpose); anything else, or no report, fails.
    report: Any = None
    with contextlib.suppress(json.JSONDecodeError):
        report = json.loads(proc.stdout)
    if (
        proc.returncode not in MONITOR_VERDICT_CODES
        or not isinstance(report, dict)
        or report.get("exit_code") != proc.returncode
    ):
        raise BenchError(
            f"`{shlex.join(cmd[1:])}` (in {project}) exited {proc.returncode}"
            f"{'' if isinstance(report, dict) else ' without a JSON report'}:\n"
            f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )
    features = (report.get("drift") or {}).get("features") or {}
    verdicts: dict[str, dict[str, Any]] = {}
    for name in FEATURES:
        entry = features.get(name)
        if not isinstance(entry, Mapping) or not {"method", "score", "threshold", "drifted"} <= set(
            entry
        ):
            raise BenchError(f"the monitor's report has no drift verdict for {name}: {entry}")
        verdicts[name] = {k: entry[k] for k in ("method", "score", "threshold", "drifted")}
    window_rows = report_rows(report)
    if window_rows is not None and window_rows != rows:
        raise BenchError(f"the monitor's window holds {window_rows} rows, expected {rows}")
    return Measured(
        "monitor", rows, index, wall, peak, load, verdicts, status=str(report.get("status"))
    )


def report_rows(report: Mapping[str, Any]) -> int | None:
    """The window's row count as the report states it, where it does."""
    window = report.get("window")
    if isinstance(window, Mapping):
        for key in ("rows", "records", "count"):
            if isinstance(window.get(key), int):
                return int(window[key])
    return None


def run_evidently(
    venv_python: Path, work: Path, reference: Path, current: Path, rows: int, index: int
) -> Measured:
    settings = work / "evidently-settings.json"
    settings.write_text(
        json.dumps(
            {
                "numeric": NUMERIC,
                "categorical": CATEGORICAL,
                "num_method": NUM_METHOD,
                "cat_method": CAT_METHOD,
                "threshold": THRESHOLD,
            }
        )
    )
    out = work / "evidently-result.json"
    out.unlink(missing_ok=True)
    cmd = [str(venv_python), str(EVIDENTLY_SCRIPT), str(reference), str(current), str(settings)]
    cmd.append(str(out))
    env = {k: v for k, v in child_env().items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    load = os.getloadavg()[0]
    wall, peak, proc = measured_run(cmd, work, cwd=work, env=env)
    if proc.returncode != 0 or not out.is_file():
        raise BenchError(
            f"Evidently's run exited {proc.returncode}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )
    found = json.loads(out.read_text())
    if found["rows"]["current"] != rows:
        raise BenchError(f"Evidently read {found['rows']['current']} current rows, not {rows}")
    return Measured(
        "Evidently", rows, index, wall, peak, load, found["columns"], found.get("phases", {})
    )


def check_methods(measured: Measured) -> None:
    """Both programs must use the configured test and threshold, or the comparison is void."""
    for name, verdict in measured.verdicts.items():
        want = NUM_METHOD if name in NUMERIC else CAT_METHOD
        method = str(verdict["method"]).lower().replace("-", "").replace("_", "")
        if method != want or abs(float(verdict["threshold"]) - THRESHOLD) > 1e-12:
            raise BenchError(
                f"{measured.tool} used {verdict['method']} with threshold {verdict['threshold']} "
                f"for {name}, not {want} with {THRESHOLD}"
            )


# --- Evidently's virtualenv -------------------------------------------------------------------


def venv_versions(python: Path) -> dict[str, str] | None:
    if not python.is_file():
        return None
    probe = (
        "import json, evidently, pandas, numpy, scipy, pyarrow; print(json.dumps("
        "{m.__name__: m.__version__ for m in (evidently, pandas, numpy, scipy, pyarrow)}))"
    )
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    found: dict[str, str] = json.loads(proc.stdout)
    if found.get("evidently") != EVIDENTLY_VERSION or int(found["pandas"].split(".")[0]) >= 3:
        return None
    return found


def ensure_venv(venv: Path) -> tuple[Path, dict[str, str]]:
    python = venv / "bin" / "python"
    found = venv_versions(python)
    if found is not None:
        return python, found
    print(f"  creating {venv} ({' '.join(EVIDENTLY_REQUIREMENTS)}) ...", file=sys.stderr)
    if not python.is_file():
        venv.parent.mkdir(parents=True, exist_ok=True)
        run_checked([sys.executable, "-m", "venv", str(venv)])
    run_checked([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS])
    found = venv_versions(python)
    if found is None:
        raise BenchError(f"{venv} does not import evidently {EVIDENTLY_VERSION} with pandas < 3")
    return python, found


# --- reporting --------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


def sizes_arg(text: str) -> list[int]:
    sizes = sorted({parse_size(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1000:
        raise argparse.ArgumentTypeError("sizes are row counts of at least 1000 (10k, 1m, ...)")
    return sizes


def size_label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows % 1_000 == 0:
        return f"{rows // 1_000}K"
    return f"{rows:,}"


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def sec(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def best(runs: Sequence[Measured]) -> Measured:
    return min(runs, key=lambda r: r.wall)


def disagreements(a: Measured, b: Measured) -> list[str]:
    return [c for c in FEATURES if bool(a.verdicts[c]["drifted"]) != bool(b.verdicts[c]["drifted"])]


def wrong_verdicts(m: Measured) -> list[str]:
    return [c for c in FEATURES if bool(m.verdicts[c]["drifted"]) != (c in DRIFTED)]


def score(m: Measured, column: str) -> float:
    return float(m.verdicts[column]["score"])


def drifted_text(m: Measured) -> str:
    found = [c for c in FEATURES if m.verdicts[c]["drifted"]]
    return ", ".join(found) if found else "none"


@dataclass
class Results:
    started: str
    command: str
    machine: str
    python: str
    revision: str
    evidently: dict[str, str]
    load_start: str
    load_end: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def report(
    results: Results,
    monitor: Mapping[int, list[Measured]],
    evidently: Mapping[int, list[Measured]],
    windows: Mapping[int, Window],
    skipped: Sequence[int],
) -> bool:
    """Print the tables; True when every target is met."""
    print("\n### Every run\n")
    rows = []
    for size in sorted(set(monitor) | set(evidently)):
        for m in sorted(monitor.get(size, []) + evidently.get(size, []), key=lambda r: r.run):
            rows.append(
                [
                    size_label(size),
                    m.tool,
                    str(m.run),
                    sec(m.wall),
                    mib(m.peak_mib),
                    f"{m.load:.2f}",
                ]
            )
    print_table(["rows", "program", "run", "wall", "peak RSS", "load avg at start"], rows)

    print("\n### Monitor and Evidently, fastest run of each\n")
    rows = []
    for size in sorted(windows):
        w = windows[size]
        line = [
            f"{size:,}",
            f"{w.files} x {min(size, FILE_ROWS):,} rows, {w.log_bytes / 2**20:,.0f} MiB",
        ]
        m_best = best(monitor[size]) if size in monitor else None
        e_best = best(evidently[size]) if size in evidently else None
        line += (
            [sec(m_best.wall), mib(m_best.peak_mib), f"{size / m_best.wall:,.0f}"]
            if m_best
            else ["not run", "-", "-"]
        )
        line += [sec(e_best.wall), mib(e_best.peak_mib)] if e_best else ["not run", "-"]
        if m_best and e_best:
            differ = disagreements(m_best, e_best)
            line += [
                f"{e_best.wall / m_best.wall:.1f}x",
                f"{m_best.peak_mib / e_best.peak_mib:.2f}",
                "same" if not differ else "differ: " + ", ".join(differ),
            ]
        else:
            line += ["-", "-", "-"]
        rows.append(line)
    print_table(
        [
            "logged rows",
            "log files",
            "monitor wall",
            "monitor peak RSS",
            "monitor rows/s",
            "Evidently wall",
            "Evidently peak RSS",
            "Evidently / monitor wall",
            "monitor / Evidently RSS",
            "per-column verdicts",
        ],
        rows,
    )
    for size in skipped:
        print(f"\nEvidently at {size:,} rows: not run ({skipped_reason(size, evidently)}).")
    if evidently:
        print("\nEvidently's own phases in its fastest run (timed inside its script):\n")
        names = ("imports", "read Parquet", "Report.run", "results")
        print_table(
            ["logged rows", *names, "interpreter start-up and exit"],
            [
                [f"{size:,}"]
                + [sec(e.phases.get(n, 0.0)) for n in names]
                + [sec(max(e.wall - sum(e.phases.values()), 0.0))]
                for size in sorted(evidently)
                for e in [best(evidently[size])]
            ],
        )

    ok = True
    if TARGET_ROWS in monitor and TARGET_ROWS in evidently:
        m, e = best(monitor[TARGET_ROWS]), best(evidently[TARGET_ROWS])
        differ = disagreements(m, e)
        measured = {
            "speed": e.wall / m.wall,
            "rss": m.peak_mib / e.peak_mib,
            "differ": float(len(differ)),
        }
        rows, ok = judge(TARGETS, measured)
        print(
            f"\n### Targets at {TARGET_ROWS:,} logged rows against the {REFERENCE_ROWS:,}-row reference\n"
        )
        print_table(["target", "wanted", "measured", "result"], rows)
        print(
            f"\npeak RSS: monitor {mib(m.peak_mib)}, Evidently {mib(e.peak_mib)}; columns whose "
            f"verdicts differ: {', '.join(differ) or 'none'}"
        )
        results.targets = [
            {"target": t, "wanted": w, "measured": got, "ok": result == "pass"}
            for t, w, got, result in rows
        ]
        print(
            f"\n### Per column at {TARGET_ROWS:,} rows (drift put in: {', '.join(sorted(DRIFTED))})\n"
        )
        print_table(
            [
                "column",
                "test",
                "drift put in",
                "monitor score",
                "monitor",
                "Evidently score",
                "Evidently",
                "monitor - Evidently",
            ],
            [
                [
                    c,
                    m.verdicts[c]["method"],
                    "yes" if c in DRIFTED else "no",
                    f"{float(m.verdicts[c]['score']):.4f}",
                    "drift" if m.verdicts[c]["drifted"] else "-",
                    f"{float(e.verdicts[c]['score']):.4f}",
                    "drift" if e.verdicts[c]["drifted"] else "-",
                    f"{score(m, c) - score(e, c):+.4f}",
                ]
                for c in FEATURES
            ],
        )
    else:
        print(f"\nTargets not judged: they need both programs at {TARGET_ROWS:,} rows.")
    print("\n### Verdicts against the drift put in, and the margins to the threshold\n")
    rows = []
    for size in sorted(windows):
        for tool, runs in (("monitor", monitor), ("Evidently", evidently)):
            if size in runs:
                m = best(runs[size])
                wrong = wrong_verdicts(m)
                calm = max((c for c in FEATURES if c not in DRIFTED), key=lambda c: score(m, c))
                moved = min(DRIFTED, key=lambda c: score(m, c))
                rows.append(
                    [
                        f"{size:,}",
                        tool,
                        drifted_text(m),
                        "all right" if not wrong else "wrong: " + ", ".join(wrong),
                        f"{score(m, calm):.4f} ({calm})",
                        f"{score(m, moved):.4f} ({moved})",
                    ]
                )
    print_table(
        [
            "logged rows",
            "program",
            "columns found drifting",
            "against the drift put in",
            "highest score, no drift put in",
            "lowest score, drift put in",
        ],
        rows,
    )
    rows = []
    for size in sorted(set(monitor) & set(evidently)):
        m, e = best(monitor[size]), best(evidently[size])
        largest = [f"{size:,}"]
        for group in (NUMERIC, CATEGORICAL):
            worst = max(group, key=lambda c: abs(score(m, c) - score(e, c)))
            largest.append(f"{score(m, worst) - score(e, worst):+.4f} ({worst})")
        rows.append(largest)
    if rows:
        print("\n### Scores: largest difference, monitor - Evidently\n")
        print_table(
            ["logged rows", "numeric (Wasserstein / std)", "categorical (Jensen-Shannon)"], rows
        )
    return ok


def skipped_reason(size: int, evidently: Mapping[int, list[Measured]]) -> str:
    known = [s for s in sorted(evidently) if s < size]
    if not known:
        return "not in --evidently-sizes"
    last = best(evidently[known[-1]])
    # Evidently holds the reference and the current rows in memory (pandas frames, copies per
    # metric): scaling its peak by the rows it holds is an estimate, not a measurement.
    scale = (REFERENCE_ROWS + size) / (REFERENCE_ROWS + last.rows)
    return (
        f"not in --evidently-sizes; it holds both tables in memory: at {last.rows:,} rows it "
        f"took {sec(last.wall)} and {mib(last.peak_mib)}, and scaled by the rows it would hold "
        f"(x{scale:.1f}) that is about {sec(last.wall * scale)} and "
        f"{last.peak_mib * scale / 1024:.0f} GiB, of this machine's {memory_gib():.0f} GiB: "
        "an estimate, not a measurement"
    )


# --- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path, results: Results) -> bool:
    venv_python = args.venv / "bin" / "python"
    # Not made yet (no interpreter there): a quick run with the default tools leaves it out.
    quick_default = args.quick and args.tools_default
    if "evidently" in args.tools and quick_default and not venv_python.is_file():
        args.tools.discard("evidently")
        print(
            f"Evidently: skipped (--quick does not make its virtualenv {args.venv}; "
            "a run without --quick, or with --tools monitor,evidently, makes it)"
        )
    if "evidently" in args.tools:
        venv_python, found = ensure_venv(args.venv)
        results.evidently = found
        print(f"Evidently: {args.venv} (" + ", ".join(f"{k} {v}" for k, v in found.items()) + ")")
    data = work / "data" / "train.parquet"
    print("  writing the training data ...", file=sys.stderr, flush=True)
    write_training_data(data)
    project = build_project(work)
    print("  training ...", file=sys.stderr, flush=True)
    training = train(project)
    reference = work / "reference.parquet"
    reference_rows = write_reference(project, data, reference)
    results.training = asdict(training)
    print(
        f"data: {TRAIN_ROWS:,} rows ({len(NUMERIC)} float + {len(CATEGORICAL)} category "
        f"features, binary target), Parquet {data.stat().st_size / 2**20:.0f} MiB; train stage "
        f"{sec(training.seconds)} ({training.summary}); reference: the training split, "
        f"{reference_rows:,} rows"
    )
    print(
        f"drift put in: {', '.join(SHIFTED)} shifted by {SHIFT} standard deviations; "
        f"c1's mix {MIX['c1']} -> {DRIFT_MIX['c1']}; the other columns as in training"
    )
    missing = monitor_missing(project)
    if missing and "monitor" in args.tools:
        raise BenchError(f"cannot measure the project's monitor: {missing}")
    log_dir = (
        project
        / json.loads((project / "config.json").read_text())["serving"]["prediction_log"]["dir"]
    )

    monitor: dict[int, list[Measured]] = {}
    evidently: dict[int, list[Measured]] = {}
    windows: dict[int, Window] = {}
    skipped = (
        [s for s in args.sizes if s not in args.evidently_sizes]
        if "evidently" in args.tools
        else []
    )
    for size in sorted(
        set(args.sizes) | set(args.evidently_sizes if "evidently" in args.tools else [])
    ):
        with_evidently = "evidently" in args.tools and size in args.evidently_sizes
        with_monitor = "monitor" in args.tools and size in args.sizes
        print(f"  {size:,} rows: writing the prediction log ...", file=sys.stderr, flush=True)
        current = work / "current.parquet" if with_evidently else None
        if current is not None:
            current.unlink(missing_ok=True)
        window = write_window(
            log_dir,
            size,
            current,
            model=training.model,
            version=training.version,
            run_id=training.run_id,
        )
        windows[size] = window
        results.windows.append({**asdict(window), "current": str(window.current or "")})
        runs = args.runs if size <= TARGET_ROWS else 1
        for index in range(1, runs + 1):
            if with_monitor:
                print(
                    f"  {size:,} rows: monitor, run {index}/{runs} ...", file=sys.stderr, flush=True
                )
                m = run_monitor(project, work, size, index)
                check_methods(m)
                monitor.setdefault(size, []).append(m)
                results.runs.append(asdict(m))
            if with_evidently:
                assert current is not None
                print(
                    f"  {size:,} rows: Evidently, run {index}/{runs} ...",
                    file=sys.stderr,
                    flush=True,
                )
                e = run_evidently(venv_python, work, reference, current, size, index)
                check_methods(e)
                evidently.setdefault(size, []).append(e)
                results.runs.append(asdict(e))
        print(f"  {size:,} rows done; load average {load_text()}", file=sys.stderr, flush=True)
    return report(results, monitor, evidently, windows, skipped)


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__, quick=f"{QUICK_REFERENCE_ROWS:,}-row reference, one 10K window, one run each"
    )
    parser_.add_argument(
        "--sizes",
        type=sizes_arg,
        default=sizes_arg(DEFAULT_SIZES),
        help=f"logged rows for the monitor (default {DEFAULT_SIZES})",
    )
    parser_.add_argument(
        "--evidently-sizes",
        type=sizes_arg,
        default=sizes_arg(DEFAULT_EVIDENTLY_SIZES),
        help=f"logged rows for Evidently (default {DEFAULT_EVIDENTLY_SIZES})",
    )
    parser_.add_argument(
        "--runs", type=int, default=2, help="runs of each program per size up to 1M (10M: one)"
    )
    parser_.add_argument(
        "--tools",
        help="which programs to run: monitor, evidently or both (default)",
    )
    parser_.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Evidently's virtualenv")
    add_output(parser_)
    args = parser_.parse_args(argv)
    args.tools_default = args.tools is None
    tools = "monitor,evidently" if args.tools is None else args.tools
    args.tools = {t.strip() for t in tools.split(",") if t.strip()}
    if args.runs < 1 or not args.tools or not args.tools <= {"monitor", "evidently"}:
        parser_.error("--runs must be >= 1; --tools takes monitor, evidently or both")
    if args.quick:
        global REFERENCE_ROWS, TRAIN_ROWS, TARGET_ROWS
        REFERENCE_ROWS = QUICK_REFERENCE_ROWS
        TRAIN_ROWS = round(REFERENCE_ROWS / (1 - TEST_SIZE))
        TARGET_ROWS = QUICK_SIZES[-1]
        args.sizes = args.evidently_sizes = QUICK_SIZES
        args.runs = 1

    started = time.perf_counter()
    results = Results(
        started=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command_line("monitor_speed.py", argv),
        machine=(
            f"nproc {os.cpu_count()}, {cpu_model()}, {memory_gib():.0f} GiB, "
            f"{platform.system()} {platform.release()}"
        ),
        python=f"{platform.python_version()}; {versions(PACKAGES)}",
        revision=revision(),
        evidently={},
        load_start=load_text(),
    )
    print(f"date: {results.started}")
    print(f"machine: {results.machine}")
    print(f"python: {results.python}")
    print(f"runtime, templates and compiler: commit {results.revision}")
    print(f"load average (1/5/15 min) at start: {results.load_start}")
    print(f"command: {results.command.strip()}")
    code = 0
    with workdir("mlops-monitor-bench-", keep=args.keep) as work:
        try:
            ok = run(args, work, results)
            judged = "every target met" if ok else "a target was MISSED"
            print(f"\nsummary: {judged if results.targets else 'no target judged'}")
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 1
        finally:
            results.load_end = load_text()
            results.seconds = time.perf_counter() - started
            print(f"load average (1/5/15 min) at end: {results.load_end}")
            print(f"benchmark wall time: {results.seconds:.0f} s")
            write_json(args.json, results)
    return code


if __name__ == "__main__":
    sys.exit(main())

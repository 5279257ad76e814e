"""Serving speed benchmark: the generated model server beside `mlflow models serve`.

    python benchmarks/serve_speed.py [--quick] [--profile] [--wait-quiet SECONDS] [--json PATH]
    python benchmarks/serve_speed.py --against GIT_REF [--against-rounds N] [--quick]

(--quick: 1 s wrk runs after 1 s of warm-up, batches of 100 and 1,000 rows, a 4 s soak; the
Starlette floor and the two-worker server left out: every other server and path once, in
about a minute.)

(--against GIT_REF: before and after, in one run. The project is trained as below; then only
the single-record `POST /predict` scenario runs, on two generated servers: one importing
`mlops_runtime` from GIT_REF's runtime/ tree (extracted with `git archive` into the temp dir,
first on the server's PYTHONPATH) and one from the working tree's runtime/, local changes
included. Both are up together on their own ports; the wrk runs alternate between them,
--against-rounds rounds (3; 1 with --quick), the order reversed every other round, the same
wrk settings for both. Printed: req/s, p50 and p99 of every run, their medians per side, and
now / before; a ratio worse than the tolerance in AGAINST_TARGETS is MISSED.)

The script trains a real project from `specs/breast-cancer.mlops.yaml` in a temp dir
(`python -m mlops_compiler run SPEC train`, which runs `python -m mlops_runtime train` in the
project folder: MLflow registry in the project's SQLite file, alias `champion`), and then
measures, with the same registered model and the same load generator (wrk,
`apt-get install wrk`; benchmarks/wrk/post_json.lua posts a fixed JSON body):

1. single-record requests, 16 connections and 2 wrk threads by default, a warm-up run and then
   a measured run for each server, one server up at a time:
   - a Starlette hello-world (constant JSON) under uvicorn, and a raw-ASGI one: the floors;
   - the generated app (`python -m mlops_runtime serve`): `POST /predict` with one record,
     and `POST /invocations` with `{"dataframe_records": [record]}`; and `POST /predict` once
     more with two worker processes (WEB_CONCURRENCY=2);
   - `mlflow models serve -m models:/NAME@champion --env-manager local -w 1`: `/invocations`.
2. the batch path, 1,000 and 10,000 rows per request (one keep-alive connection,
   http.client), rows/s from the median of the repetitions, in every batch format, each to
   both servers where the server supports it:
   - records JSON: `/invocations` `{"dataframe_records": [...]}` (both), and the generated
     app's `POST /predict` with a list of records;
   - `/invocations` `{"dataframe_split": {"columns", "data"}}` (both);
   - Open Inference Protocol JSON tensors, one per column (generated app only: MLflow's
     scoring server does not speak it);
   - the same with the binary tensor extension, inputs and outputs (generated app only);
   and in-process floors on the same rows (the pipeline's bare `predict`, and the app's own
   parse / validate / predict steps without HTTP).
3. a soak: constant wrk load on `POST /predict` for 300 s while the server's RSS
   (/proc/PID/status VmRSS) and the prediction log folder are sampled every 5 s.

Every server binds 127.0.0.1 on a free port, is started by this script in its own process
group and is always stopped. The spec copy raises `serving.max_body_bytes` (default 1 MB) to
--max-body-bytes so that a 10,000-record body (7.6 MB) is accepted; nothing else changes.

A missed target is printed as MISSED; the exit code is non-zero only on errors (a server that
does not start, a wrk failure, a non-2xx answer or socket error from the generated app, a batch
answer with the wrong number of predictions).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from harness import (
    LUA,
    PYTHON,
    ROOT,
    BackgroundWrk,
    BenchError,
    Server,
    Target,
    add_output,
    add_quiet,
    child_env,
    command_line,
    cpu_model,
    free_port,
    http_get,
    judge,
    parser,
    require_wrk,
    run_checked,
    run_wrk,
    table,
    utc_now,
    verdict,
    versions,
    wait_quiet,
    workdir,
    write_json,
    wrk_command,
    wrk_figures,
)
from harness.baseline import (
    Figure,
    check_import,
    compare,
    extract_runtime,
    order,
    working_tree,
)
from harness.baseline import medians as side_medians

SPEC = ROOT / "specs" / "breast-cancer.mlops.yaml"
POST_JSON = LUA / "post_json.lua"
ALIAS = "champion"

WORKERS = 2
WORKERS_LABEL = f"generated /predict, {WORKERS} workers"
ROWS_TARGET = 200_000.0  # batch rows/s, every format and size of the generated app


def _rps(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


# Single records under wrk; keys as report() measures them.
TARGETS = (
    Target(
        "generated / MLflow throughput", "ratio", 50.0, at_least=True, show=lambda x: f"{x:,.1f}x"
    ),
    Target("generated /predict req/s", "rps", 5_000.0, at_least=True, show=_rps),
    Target("generated /predict req/s (stretch)", "rps", 10_000.0, at_least=True, show=_rps),
    Target(f"{WORKERS_LABEL} req/s (stretch)", "workers_rps", 10_000.0, at_least=True, show=_rps),
    Target(f"{WORKERS_LABEL} p99", "workers_p99", 25.0, show=_ms),
    Target("generated /predict p99", "p99", 25.0, show=_ms),
    Target("generated /predict non-2xx", "non_2xx", 0, show=lambda x: f"{x:.0f}"),
)
# --against: now / before of the medians; the tolerance is the run-to-run noise of this
# machine (2 cores shared with wrk), not a target of the project.
AGAINST_FIGURES = (
    Figure("rps", "req/s", digits=0),
    Figure("p50_ms", "p50", " ms"),
    Figure("p99_ms", "p99", " ms"),
)
AGAINST_TARGETS = (
    Target("req/s now / before", "rps", 0.9, at_least=True),
    Target("p99 now / before", "p99_ms", 1.15),
)
FORMATS = ("records JSON", "dataframe_split", "V2 JSON", "V2 binary")
RSS_GROWTH_MIB = 10.0  # soak: end - start
RSS_SLOPE_MIB_MIN = 0.5  # soak: least-squares slope over the second half

PACKAGES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "fastapi",
    "orjson",
    "mlflow",
    "scikit-learn",
    "numpy",
    "pandas",
    "prometheus-client",
    "mlops-runtime",
)


@dataclass(frozen=True)
class Settings:
    duration: int
    warmup: int
    connections: int
    threads: int
    soak: int
    sample_every: float
    batch_sizes: tuple[int, ...]
    batch_reps: int
    max_body_bytes: int
    profile: int  # seconds of py-spy sampling, 0 = off
    single: bool = True  # the single-record wrk runs
    extras: bool = True  # the Starlette floor and the two-worker server (not with --quick)


@dataclass
class WrkRun:
    name: str
    url: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    mean_batch: float | None = None  # generated app: rows per model call during the run


@dataclass
class BatchRun:
    name: str
    rows: int
    reps: int
    seconds: list[float]
    body_bytes: int
    server: str = ""  # "mlflow" or "generated"
    fmt: str = ""  # one of FORMATS

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.median


@dataclass
class Soak:
    seconds: int
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, RSS MiB, log B)
    wrk: WrkRun | None = None
    log_rows: int = 0
    dropped: float = 0.0

    def rss(self) -> list[float]:
        return [s[1] for s in self.samples]

    def slope(self, second_half: bool = False) -> float:
        """Least-squares RSS slope in MiB per minute."""
        points = self.samples[len(self.samples) // 2 :] if second_half else self.samples
        if len(points) < 2:
            return 0.0
        xs = [p[0] / 60.0 for p in points]
        ys = [p[1] for p in points]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return (
            0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
        )


@dataclass
class Results:
    started: str = ""
    command: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    model: dict[str, Any] = field(default_factory=dict)
    mlflow_command: str = ""
    single: list[WrkRun] = field(default_factory=list)
    batch: list[BatchRun] = field(default_factory=list)
    floors: dict[str, Any] = field(default_factory=dict)
    soak: Soak | None = None
    rss_ready_mib: float = 0.0
    profile: list[tuple[float, float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    against: dict[str, Any] = field(default_factory=dict)  # --against: the two sides' runs


# --- the project ------------------------------------------------------------------------------


def build_project(work: Path, spec: Path, max_body: int) -> Path:
    """Train the spec's project in `work`; returns the project dir."""
    shutil.copytree(spec.parent, work / "specs")
    spec_copy = work / "specs" / spec.name
    text = spec_copy.read_text()
    if max_body:
        spec_copy.write_text(with_max_body(text, max_body))
    document = yaml.safe_load(text)
    env = child_env(PYTHONPATH=str(ROOT))
    run_checked(
        [PYTHON, "-m", "mlops_compiler", "run", f"specs/{spec.name}", "train"], cwd=work, env=env
    )
    project = work / "generated" / str(document["name"])
    if not (project / "mlruns.db").is_file():
        raise BenchError(f"training left no registry at {project / 'mlruns.db'}")
    config = project / "config.json"
    stages = json.loads(config.read_text()).get("stages", []) if config.is_file() else []
    if "serve" not in stages:
        raise BenchError(f"{config} names no serve stage (stages: {stages})")
    return project


def with_max_body(text: str, max_body: int) -> str:
    """The spec text with serving.max_body_bytes set (a text edit: a YAML round trip would
    turn keys such as `on:` into `true:`)."""
    lines = text.splitlines()
    key = f"max_body_bytes: {max_body}"
    for i, line in enumerate(lines):
        if line.rstrip() == "serving:":
            indent = next(
                (
                    len(x) - len(x.lstrip())
                    for x in lines[i + 1 :]
                    if x.strip() and not x.lstrip().startswith("#")
                ),
                2,
            )
            body = [j for j in range(i + 1, len(lines)) if lines[j].strip()]
            block = []
            for j in body:
                if len(lines[j]) - len(lines[j].lstrip()) < indent:
                    break
                block.append(j)
            block = [j for j in block if lines[j].lstrip().startswith("max_body_bytes:")]
            if block:
                lines[block[0]] = " " * indent + key
            else:
                lines.insert(i + 1, " " * indent + key)
            return "\n".join(lines) + "\n"
        if line.startswith("serving:"):
            raise BenchError("serving: is not a block mapping in the spec; use --max-body-bytes 0")
    return text.rstrip("\n") + f"\nserving:\n  {key}\n"


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def dataset_records(spec: Path) -> list[dict[str, Any]]:
    """The spec's training rows as JSON records typed by the contract, target removed."""
    import csv

    document = yaml.safe_load(spec.read_text())
    data = document["data"]
    columns = data["contract"]["columns"]
    target = data["target"]
    parsers: dict[str, Callable[[str], Any]] = {"float": float, "int": int, "bool": _parse_bool}
    convert = {name: parsers.get(rule["type"], str) for name, rule in columns.items()}
    records = []
    with (spec.parent / data["train"]).open(newline="") as handle:
        for row in csv.DictReader(handle):
            row.pop(target, None)
            records.append(
                {k: (None if v == "" else convert.get(k, str)(v)) for k, v in row.items()}
            )
    if not records:
        raise BenchError(f"no rows in {data['train']}")
    return records


def cycle(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [records[i % len(records)] for i in range(n)]


# --- load generation --------------------------------------------------------------------------


def wrk(name: str, url: str, body: Path, seconds: float, s: Settings) -> WrkRun:
    cmd = wrk_command(
        url, POST_JSON, str(body), seconds=seconds, connections=s.connections, threads=s.threads
    )
    return WrkRun(name=name, url=url, **wrk_figures(run_wrk(cmd, seconds)))


def measure(name: str, url: str, body: Path, s: Settings) -> WrkRun:
    print(f"  {name}: warm-up {s.warmup} s, run {s.duration} s ...", flush=True)
    wrk(name, url, body, s.warmup, s)
    run = wrk(name, url, body, s.duration, s)
    print(
        f"    {run.rps:,.0f} req/s  p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms  "
        f"non-2xx {run.non_2xx}  socket errors {run.socket_errors}",
        flush=True,
    )
    return run


def metric_values(base: str, names: Sequence[str]) -> dict[str, float]:
    """Unlabelled samples of the app's /metrics (absent ones are 0)."""
    status, body = http_get(base + "/metrics", timeout=10)
    if status != 200:
        raise BenchError(f"GET /metrics answered {status}")
    out = dict.fromkeys(names, 0.0)
    for line in body.decode().splitlines():
        key, _, value = line.partition(" ")
        if key in out:
            out[key] = float(value)
    return out


@dataclass(frozen=True)
class BatchRequest:
    """One batch format at one size: what to POST and how to count the predictions."""

    fmt: str
    path: str
    body: bytes
    headers: dict[str, str]
    count: Callable[[Mapping[str, str], bytes], int]


def _count_json(key: str) -> Callable[[Mapping[str, str], bytes], int]:
    def count(headers: Mapping[str, str], data: bytes) -> int:
        return len(json.loads(data)[key])

    return count


def _count_v2(headers: Mapping[str, str], data: bytes) -> int:
    length = headers.get("inference-header-content-length")
    head = json.loads(data[: int(length)] if length is not None else data)
    predict = next(o for o in head["outputs"] if o["name"] == "predict")
    if length is not None and "binary_data_size" not in predict.get("parameters", {}):
        raise BenchError("binary request answered without binary outputs")
    return int(predict["shape"][0])


V2_TYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "str": "BYTES"}


def _binary(datatype: str, values: list[Any]) -> bytes:
    import numpy as np

    if datatype == "BYTES":
        parts = []
        for value in values:
            raw = str(value).encode()
            parts += [len(raw).to_bytes(4, "little"), raw]
        return b"".join(parts)
    dtype = {"FP64": "<f8", "INT64": "<i8", "BOOL": "?"}[datatype]
    return np.array(values, dtype=dtype).tobytes()


def batch_requests(
    rows: list[dict[str, Any]], types: Mapping[str, str], model: str
) -> dict[str, BatchRequest]:
    """The same rows in every batch format, keyed by format (plus "/predict records")."""
    columns = list(rows[0])
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    tensors: list[dict[str, Any]] = [
        {"name": c, "shape": [len(rows)], "datatype": V2_TYPE[types.get(c, "float")],
         "data": [r[c] for r in rows]}
        for c in columns
    ]  # fmt: skip
    chunks = [_binary(t["datatype"], t.pop("data")) for t in tensors]
    for tensor, chunk in zip(tensors, chunks, strict=True):
        tensor["parameters"] = {"binary_data_size": len(chunk)}
    head = json.dumps(
        {"inputs": tensors, "outputs": [
            {"name": "predict", "parameters": {"binary_data": True}},
            {"name": "predict_proba", "parameters": {"binary_data": True}}]}
    ).encode()  # fmt: skip
    json_tensors = [
        {"name": c, "shape": [len(rows)], "datatype": V2_TYPE[types.get(c, "float")],
         "data": [r[c] for r in rows]}
        for c in columns
    ]  # fmt: skip
    infer = f"/v2/models/{model}/infer"
    plain = {"Content-Type": "application/json"}
    return {
        "records JSON": BatchRequest(
            "records JSON", "/invocations", json.dumps({"dataframe_records": rows}).encode(),
            plain, _count_json("predictions")),
        "/predict records": BatchRequest(
            "records JSON", "/predict", json.dumps(rows).encode(), plain,
            _count_json("predictions")),
        "dataframe_split": BatchRequest(
            "dataframe_split", "/invocations", json.dumps({"dataframe_split": split}).encode(),
            plain, _count_json("predictions")),
        "V2 JSON": BatchRequest(
            "V2 JSON", infer, json.dumps({"inputs": json_tensors}).encode(), plain, _count_v2),
        "V2 binary": BatchRequest(
            "V2 binary", infer, head + b"".join(chunks),
            {"Content-Type": "application/octet-stream",
             "Inference-Header-Content-Length": str(len(head))}, _count_v2),
    }  # fmt: skip


def post_batches(
    name: str, server: str, base: str, requests: Mapping[int, BatchRequest], reps: int
) -> list[BatchRun]:
    """Time POSTs of big bodies on one keep-alive connection: 1 warm-up + `reps` each."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    out = []
    try:
        for rows, request in requests.items():
            times = []
            for rep in range(reps + 1):
                start = time.perf_counter()
                conn.request("POST", request.path, request.body, request.headers)
                response = conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - start
                if response.status != 200:
                    raise BenchError(
                        f"{name}: {rows} rows answered {response.status}: {data[:300]!r}"
                    )
                headers = {k.lower(): v for k, v in response.getheaders()}
                got = request.count(headers, data)
                if got != rows:
                    raise BenchError(f"{name}: {rows} rows gave {got} predictions")
                if rep:
                    times.append(elapsed)
            run = BatchRun(name, rows, reps, times, len(request.body), server, request.fmt)
            print(f"    {name} {rows:,} rows: {run.rows_per_s:,.0f} rows/s", flush=True)
            out.append(run)
    finally:
        conn.close()
    return out


# --- in-process floors ------------------------------------------------------------------------

# Runs in the project folder with the server's OMP_NUM_THREADS=1. argv: alias, then
# "rows=path" pairs of JSON bodies (lists of records). Prints one JSON object.
FLOOR = r"""
import json, os, sys, time
import numpy as np, orjson, pandas as pd
import mlflow, mlflow.sklearn
from mlops_runtime.project import load_project

project = load_project()  # config.json and contract.json, as `python -m mlops_runtime serve`
CONFIG, CONTRACT = project.config, project.contract

alias = sys.argv[1]
name = CONFIG.get("tracking", {}).get("registered_model") or CONFIG["name"]
client = mlflow.MlflowClient()
version = client.get_model_version_by_alias(name, alias)
pipeline = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
out = {"model": {"name": name, "version": str(version.version), "run_id": version.run_id,
                 "estimator": type(pipeline.steps[-1][1]).__name__}, "sizes": {}}

def best(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]

app = None
try:
    from mlops_runtime.features.columns import feature_split
    from mlops_runtime.serve.model_source import ModelRef, prepare
    from mlops_runtime.serve.record_validation import Door
    numeric, categorical = feature_split(CONFIG, CONTRACT)
    loaded = prepare(ModelRef(name, str(version.version), version.run_id, ""), pipeline,
                     CONFIG, CONTRACT)
    door = Door(CONFIG, CONTRACT, numeric, categorical).with_known_categories(
        loaded.known_categories)
    app = (door, loaded)
    out["compiled"] = bool(loaded.predictor.fast)
except Exception as exc:
    out["app_error"] = f"{type(exc).__name__}: {exc}"

for arg in sys.argv[2:]:
    rows, path = arg.split("=", 1)
    body = open(path, "rb").read()
    records = orjson.loads(body)
    columns = [c for c in pipeline.feature_names_in_] if hasattr(pipeline, "feature_names_in_") \
        else list(records[0])
    frame = pd.DataFrame.from_records(records)[columns]
    reps = 5
    r = {"pipeline.predict": best(lambda: pipeline.predict(frame), reps),
         "pipeline.predict_proba": best(lambda: pipeline.predict_proba(frame), reps),
         "DataFrame from records": best(lambda: pd.DataFrame.from_records(records)[columns], reps),
         "orjson.loads(body)": best(lambda: orjson.loads(body), reps)}
    if app is not None:
        door, loaded = app
        from mlops_runtime.serve.rows import Rows
        batch = door.validate(records)
        r["door.validate (per record)"] = best(lambda: door.validate(records), reps)
        rows_ = Rows(len(records), records=records)
        r["door.validate_columns (records)"] = best(lambda: door.validate_columns(rows_), reps)
        table = {c: [x[c] for x in records] for c in records[0]}
        cols_ = Rows(len(records), columns=table)
        r["door.validate_columns (lists)"] = best(lambda: door.validate_columns(cols_), reps)
        arrays = Rows(len(records), columns={c: np.array(v) for c, v in table.items()})
        r["door.validate_columns (FP64 arrays)"] = best(
            lambda: door.validate_columns(arrays), reps)
        r["compiled predict"] = best(lambda: loaded.predictor.predict(batch.numeric,
                                                                      batch.categorical), reps)
        def whole():
            parsed = orjson.loads(body)
            b = door.validate_columns(Rows(len(parsed), records=parsed))
            p = loaded.predictor.predict(b.numeric, b.categorical)
            return orjson.dumps({"predictions": p.labels.tolist(), "probabilities": p.proba},
                                option=orjson.OPT_SERIALIZE_NUMPY)
        r["records: parse+validate+predict+dumps"] = best(whole, reps)
    out["sizes"][rows] = r
print(json.dumps(out))
"""


def floors(project: Path, work: Path, bodies: Mapping[int, Path], uri: str) -> dict[str, Any]:
    script = work / "floor.py"
    script.write_text(FLOOR)
    args = [f"{rows}={path}" for rows, path in bodies.items()]
    env = child_env(
        MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", OMP_NUM_THREADS="1"
    )
    proc = run_checked([PYTHON, str(script), ALIAS, *args], cwd=project, env=env)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- soak -------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise BenchError(f"no VmRSS for pid {pid}")


def folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of the files directly in `path`."""
    total = 0
    files = 0
    if path.is_dir():
        for entry in os.scandir(path):
            if entry.is_file():
                total += entry.stat().st_size
                files += 1
    return total, files


def count_lines(path: Path) -> int:
    lines = 0
    for file in path.glob("*.jsonl"):
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                lines += block.count(b"\n")
    return lines


def soak(server: Server, body: Path, log_dir: Path, s: Settings) -> Soak:
    result = Soak(seconds=s.soak)
    lines_before = count_lines(log_dir)
    dropped_before = metric_values(server.base, ["mlops_prediction_log_dropped_total"])
    out_file = log_dir.parent / "soak-wrk.txt"
    cmd = wrk_command(
        f"{server.base}/predict",
        POST_JSON,
        str(body),
        seconds=s.soak,
        connections=s.connections,
        threads=s.threads,
    )
    print(f"  soak: {s.soak} s of wrk on /predict, RSS every {s.sample_every:g} s ...", flush=True)
    with BackgroundWrk(cmd, out_file) as load:
        start = time.monotonic()
        next_sample = start
        while load.running:
            now = time.monotonic()
            if now >= next_sample:
                result.samples.append((now - start, rss_mib(server.pid), folder_size(log_dir)[0]))
                next_sample += s.sample_every
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        result.samples.append(
            (time.monotonic() - start, rss_mib(server.pid), folder_size(log_dir)[0])
        )
        data = load.wait(timeout=10)
    result.wrk = WrkRun("generated /predict (soak)", f"{server.base}/predict", **wrk_figures(data))
    time.sleep(1.0)  # let the log writer drain
    after = metric_values(server.base, ["mlops_prediction_log_dropped_total"])
    key = "mlops_prediction_log_dropped_total"
    result.dropped = after[key] - dropped_before[key]
    result.log_rows = count_lines(log_dir) - lines_before
    return result


# --- profile ----------------------------------------------------------------------------------


def profile(
    server: Server, body: Path, seconds: int, s: Settings, work: Path
) -> list[tuple[float, float, str]]:
    """py-spy samples the server under wrk load: (inclusive %, self %, frame), top 30 frames
    by inclusive share of the samples, start-up frames (runpy, asyncio.run, ...) left out."""
    if shutil.which("py-spy") is None:
        print("  py-spy not on PATH: no profile (pip install py-spy)", flush=True)
        return []
    raw = work / "serve.pyspy.txt"
    cmd = wrk_command(
        f"{server.base}/predict",
        POST_JSON,
        str(body),
        seconds=seconds + 4,
        connections=s.connections,
        threads=s.threads,
        timeout_s=None,
        latency=False,
    )
    with BackgroundWrk(cmd, work / "profile-wrk.txt") as load:
        time.sleep(2)
        run_checked(
            [
                "py-spy",
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
            ]
        )
        load.wait(timeout=seconds + 30)
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    if not total:
        return []
    boring = ("<frozen runpy>", "asyncio/runners.py", "uvicorn/server.py", "uvicorn/_compat.py",
              "mlops_runtime/__main__.py", "mlops_runtime/serve/stage.py",
              "threading.py")  # fmt: skip
    top = [
        (n / total * 100, own.get(frame, 0) / total * 100, frame)
        for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])
        if not any(b in frame for b in boring)
    ]
    return top[:30]


# --- reporting --------------------------------------------------------------------------------


def report(r: Results, s: Settings) -> str:
    out: list[str] = []
    by_name = {run.name: run for run in r.single}
    gen = by_name.get("generated /predict")
    mlf = by_name.get("mlflow /invocations")
    out.append(
        f"### Single records: {s.connections} connections, {s.threads} wrk threads, "
        f"{s.duration} s after a {s.warmup} s warm-up\n"
    )
    if not s.extras:
        out.append("(--quick: the Starlette hello-world and the two-worker server left out)\n")
    rows = []
    for run in r.single:
        ratio = f"{run.rps / mlf.rps:,.1f}x" if mlf is not None and mlf.rps > 0 else "-"
        rows.append(
            [
                run.name,
                f"{run.rps:,.0f}",
                f"{run.p50_ms:.2f}",
                f"{run.p90_ms:.2f}",
                f"{run.p99_ms:.2f}",
                f"{run.max_ms:.1f}",
                f"{run.non_2xx}",
                f"{run.socket_errors}",
                "-" if run.mean_batch is None else f"{run.mean_batch:.1f}",
                ratio,
            ]
        )
    out.append(
        table(
            [
                "server, endpoint",
                "req/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "non-2xx",
                "socket errors",
                "rows per model call",
                "x MLflow",
            ],
            rows,
        )
    )
    out.append("")
    measured: dict[str, float] = {}
    if gen is not None:
        if mlf is not None and mlf.rps > 0:
            measured["ratio"] = gen.rps / mlf.rps
        measured.update(rps=gen.rps, p99=gen.p99_ms, non_2xx=gen.non_2xx)
        workers2 = by_name.get(WORKERS_LABEL)
        if workers2 is not None:
            measured.update(workers_rps=workers2.rps, workers_p99=workers2.p99_ms)
    targets, _ = judge(TARGETS, measured, bold=True)
    for batch in r.batch:
        if batch.server == "generated":
            targets.append(
                [
                    f"batch of {batch.rows:,} rows, {batch.name.removeprefix('generated ')}",
                    f"≥ {ROWS_TARGET:,.0f} rows/s",
                    f"{batch.rows_per_s:,.0f} rows/s",
                    verdict(bold=True, ok=batch.rows_per_s >= ROWS_TARGET),
                ]
            )
    if r.soak is not None and r.soak.samples:
        rss = r.soak.rss()
        growth = rss[-1] - rss[0]
        slope2 = r.soak.slope(second_half=True)
        ok = growth <= RSS_GROWTH_MIB and slope2 <= RSS_SLOPE_MIB_MIN
        targets.append(
            [
                f"RSS flat over {r.soak.seconds} s",
                f"growth ≤ {RSS_GROWTH_MIB:.0f} MiB, 2nd-half slope ≤ {RSS_SLOPE_MIB_MIN} MiB/min",
                f"{growth:+.1f} MiB, {slope2:+.2f} MiB/min",
                verdict(bold=True, ok=ok),
            ]
        )
    out.append("### Targets\n")
    out.append(table(["target", "wanted", "measured", "result"], targets))
    out.append("")

    if r.batch:
        out.append(
            "### Batches by format: one keep-alive connection, median of "
            f"{s.batch_reps} after 1 warm-up\n"
        )
        side = []
        for fmt in FORMATS:
            for rows_n in s.batch_sizes:
                runs = {
                    b.server: b
                    for b in r.batch
                    if b.fmt == fmt and b.rows == rows_n and not b.name.endswith("/predict records")
                }
                gen_run, mlf_run = runs.get("generated"), runs.get("mlflow")
                if gen_run is None:
                    continue
                side.append(
                    [
                        fmt,
                        f"{rows_n:,}",
                        f"{gen_run.body_bytes / 1e6:.2f} MB",
                        "-" if mlf_run is None else f"{mlf_run.rows_per_s:,.0f}",
                        f"{gen_run.rows_per_s:,.0f}",
                        "-"
                        if mlf_run is None
                        else f"{gen_run.rows_per_s / mlf_run.rows_per_s:.1f}x",
                        verdict(bold=True, ok=gen_run.rows_per_s >= ROWS_TARGET),
                    ]
                )
        out.append(
            table(
                [
                    "format",
                    "rows",
                    "body",
                    "MLflow rows/s",
                    "generated rows/s",
                    "x MLflow",
                    f"≥ {ROWS_TARGET:,.0f} rows/s",
                ],
                side,
            )
        )
        out.append("")
        out.append("Every request, and the in-process floors on the same rows:\n")
        rows = [
            [
                run.name,
                f"{run.rows:,}",
                f"{run.body_bytes / 1e6:.2f} MB",
                f"{run.median * 1000:.1f}",
                f"{min(run.seconds) * 1000:.1f}",
                f"{run.rows_per_s:,.0f}",
            ]
            for run in r.batch
        ]
        sizes = r.floors.get("sizes", {})
        for rows_n, steps in sizes.items():
            for step, seconds in steps.items():
                rows.append(
                    [
                        f"in-process: {step}",
                        f"{int(rows_n):,}",
                        "-",
                        f"{seconds * 1000:.1f}",
                        "-",
                        f"{int(rows_n) / seconds:,.0f}",
                    ]
                )
        out.append(table(["path", "rows", "body", "median ms", "min ms", "rows/s"], rows))
        out.append("")
        if "app_error" in r.floors:
            out.append(
                f"(the app's in-process steps could not be timed: {r.floors['app_error']})\n"
            )

    if r.soak is not None and r.soak.samples:
        sk = r.soak
        rss = sk.rss()
        log_bytes = sk.samples[-1][2] - sk.samples[0][2]
        out.append(
            f"### Soak: {sk.seconds} s of constant load on `POST /predict`, RSS every {s.sample_every:g} s\n"
        )
        rows = [
            ["server RSS when ready (idle, before any load)", f"{r.rss_ready_mib:.1f} MiB"],
            [
                "RSS at soak start / end / max / min",
                f"{rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f} / {min(rss):.1f} MiB",
            ],
            [
                "RSS slope (all samples / second half)",
                f"{sk.slope():+.2f} / {sk.slope(True):+.2f} MiB/min",
            ],
            ["samples", f"{len(sk.samples)}"],
        ]
        if sk.wrk is not None:
            w = sk.wrk
            rows.append(
                [
                    "load",
                    f"{w.requests:,} requests, {w.rps:,.0f} req/s, p50 {w.p50_ms:.2f} ms, p99 {w.p99_ms:.2f} ms, max {w.max_ms:.0f} ms, non-2xx {w.non_2xx}, socket errors {w.socket_errors}",
                ]
            )
        rows.append(
            [
                "prediction log written during the soak",
                f"{log_bytes / 2**20:,.1f} MiB, {sk.log_rows:,} lines ({(log_bytes / sk.log_rows if sk.log_rows else 0):,.0f} B/line), {log_bytes / 2**20 / sk.seconds * 3600 / 1024:,.1f} GiB/hour at this rate",
            ]
        )
        rows.append(
            ["log lines dropped (mlops_prediction_log_dropped_total)", f"{sk.dropped:,.0f}"]
        )
        out.append(table(["measure", "value"], rows))
        out.append("")
        trace = ", ".join(f"{t:.0f}s {m:.1f}" for t, m, _ in sk.samples)
        out.append(f"RSS trace (s MiB): {trace}\n")

    if r.profile:
        out.append("### Where the time goes (py-spy, inclusive share of the sampled stacks)\n")
        rows = [[f"{inc:.1f} %", f"{own:.1f} %", f"`{frame}`"] for inc, own, frame in r.profile]
        out.append(table(["inclusive", "self", "frame (all threads)"], rows))
        out.append("")
    return "\n".join(out)


# --- main -------------------------------------------------------------------------------------

HELLO_STARLETTE = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def predict(request):
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/", predict)])
"""

HELLO_ASGI = """\
BODY = b'{"hello":"world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


def uvicorn_cmd(target: str, port: int, *, lifespan: str = "auto") -> list[str]:
    """The same uvicorn settings as mlops_runtime/serve/stage.py (uvloop, httptools, no access
    log)."""
    return [
        PYTHON,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        lifespan,
        "--backlog",
        "2048",
    ]


def run(args: argparse.Namespace, s: Settings, r: Results, work: Path) -> None:
    spec = Path(args.spec).resolve()
    print(f"training {spec.name} in {work} ...", flush=True)
    project = build_project(work, spec, s.max_body_bytes)
    uri = f"sqlite:///{project / 'mlruns.db'}"  # absolute path: four slashes
    records = dataset_records(spec)
    name = str(yaml.safe_load(spec.read_text())["name"])
    one = work / "one.json"
    one.write_bytes(json.dumps(records[0]).encode())
    inv = work / "invocations.json"
    inv.write_bytes(json.dumps({"dataframe_records": [records[0]]}).encode())
    document = yaml.safe_load(spec.read_text())
    types = {c: rule["type"] for c, rule in document["data"]["contract"]["columns"].items()}
    batches = {n: batch_requests(cycle(records, n), types, name) for n in s.batch_sizes}
    batch_files = {}
    for n, formats in batches.items():
        batch_files[n] = work / f"batch-{n}.json"
        batch_files[n].write_bytes(formats["/predict records"].body)
    if args.against:
        run_against(args.against, args.against_rounds, s, r, work, project, one)
        return

    print("floors: hello-world apps under uvicorn ...", flush=True)
    (work / "hello_starlette.py").write_text(HELLO_STARLETTE)
    (work / "hello_asgi.py").write_text(HELLO_ASGI)
    hellos = [
        ("Starlette hello-world", "hello_starlette:app", "auto"),
        ("raw ASGI hello-world", "hello_asgi:app", "off"),
    ]
    for label, target, lifespan in (hellos if s.extras else hellos[1:]) if s.single else ():
        port = free_port()
        with Server(
            label,
            uvicorn_cmd(target, port, lifespan=lifespan),
            cwd=work,
            env=child_env(),
            port=port,
            ready_path="/",
            log=work / f"{target.split(':')[0]}.log",
            ready=lambda status, body: status in (200, 405),
        ) as server:
            r.single.append(measure(label, f"{server.base}/predict", one, s))

    print("MLflow: mlflow models serve ...", flush=True)
    port = free_port()
    mlflow_cmd = [
        PYTHON,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{name}@{ALIAS}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    r.mlflow_command = shlex.join(["mlflow", *mlflow_cmd[3:-4], "-p", "PORT", "-w", "1"])
    mlflow_env = child_env(MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    with Server(
        "mlflow models serve",
        mlflow_cmd,
        cwd=project,
        env=mlflow_env,
        port=port,
        ready_path="/ping",
        log=work / "mlflow.log",
        timeout=180,
    ) as server:
        if s.single:
            r.single.append(measure("mlflow /invocations", f"{server.base}/invocations", inv, s))
        print("  batches ...", flush=True)
        # MLflow's scoring server takes the two pandas layouts; it has no V2 endpoint.
        for fmt in ("records JSON", "dataframe_split"):
            r.batch += post_batches(
                f"mlflow {fmt}",
                "mlflow",
                server.base,
                {n: formats[fmt] for n, formats in batches.items()},
                s.batch_reps,
            )

    if s.single and s.extras:
        # The same server with two worker processes (serving.workers / WEB_CONCURRENCY).
        print(f"generated app, {WORKERS} workers ...", flush=True)
        port = free_port()
        env = child_env(
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY=str(WORKERS),
            MLOPS_PREDICTION_LOG_DIR=str(work / "prediction_log_workers"),
        )
        with Server(
            f"generated app, {WORKERS} workers",
            [PYTHON, "-m", "mlops_runtime", "serve"],
            cwd=project,
            env=env,
            port=port,
            ready_path="/ready",
            log=work / "serve-workers.log",
        ) as server:
            run_ = measure(WORKERS_LABEL, f"{server.base}/predict", one, s)
            r.single.append(run_)
            if run_.non_2xx or run_.socket_errors:
                r.errors.append(
                    f"{WORKERS_LABEL}: {run_.non_2xx} non-2xx answers and "
                    f"{run_.socket_errors} socket errors"
                )

    print("generated app: python -m mlops_runtime serve ...", flush=True)
    port = free_port()
    log_dir = work / "prediction_log"
    serve_env = child_env(
        HOST="127.0.0.1",
        PORT=str(port),
        MLOPS_PREDICTION_LOG_DIR=str(log_dir),
    )

    def model_ready(status: int, body: bytes) -> bool:
        return status == 200 and bool(json.loads(body).get("ready"))

    with Server(
        "generated app",
        [PYTHON, "-m", "mlops_runtime", "serve"],
        cwd=project,
        env=serve_env,
        port=port,
        ready_path="/health",
        log=work / "serve.log",
        ready=model_ready,
    ) as server:
        r.rss_ready_mib = rss_mib(server.pid)
        health = json.loads(http_get(server.base + "/health")[1])
        r.model["served"] = health.get("models")
        keys = ["mlops_batch_size_sum", "mlops_batch_size_count"]
        for label, path, body_file in (
            (
                ("generated /predict", "/predict", one),
                ("generated /invocations", "/invocations", inv),
            )
            if s.single
            else ()
        ):
            before = metric_values(server.base, keys)
            run_ = measure(label, f"{server.base}{path}", body_file, s)
            after = metric_values(server.base, keys)
            calls = after[keys[1]] - before[keys[1]]
            # The warm-up's calls are in the difference too; the mean is what matters.
            run_.mean_batch = (after[keys[0]] - before[keys[0]]) / calls if calls else None
            r.single.append(run_)
            if run_.non_2xx or run_.socket_errors:
                r.errors.append(
                    f"{label}: {run_.non_2xx} non-2xx answers and {run_.socket_errors} socket errors"
                )
        print("  batches ...", flush=True)
        for fmt in ("/predict records", *FORMATS):
            r.batch += post_batches(
                f"generated {fmt}",
                "generated",
                server.base,
                {n: formats[fmt] for n, formats in batches.items()},
                s.batch_reps,
            )
        print("  in-process floors ...", flush=True)
        r.floors = floors(project, work, batch_files, uri)
        r.model.update(r.floors.get("model", {}))
        if s.profile:
            print(f"  py-spy: {s.profile} s under load ...", flush=True)
            r.profile = profile(server, one, s.profile, s, work)
        if not s.soak:
            return
        r.soak = soak(server, one, log_dir, s)
        if r.soak.wrk is not None and (r.soak.wrk.non_2xx or r.soak.wrk.socket_errors):
            r.errors.append(
                f"soak: {r.soak.wrk.non_2xx} non-2xx answers and {r.soak.wrk.socket_errors} socket errors"
            )


def run_against(
    ref: str, rounds: int, s: Settings, r: Results, work: Path, project: Path, one: Path
) -> None:
    """`POST /predict` of one record on the generated server of `ref`'s runtime and of the
    working tree's, both up, the wrk runs alternating between them."""
    before = extract_runtime(ref, work / "against")
    sides = [before, working_tree()]
    for side in sides:
        check_import(PYTHON, side)
        print(f"{side.label}: mlops_runtime from {side.runtime}", flush=True)
    r.against = {"ref": ref, "sides": [x.label for x in sides], "rounds": rounds, "runs": []}
    runs: dict[str, list[WrkRun]] = {x.label: [] for x in sides}
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for i, side in enumerate(sides):
            port = free_port()
            env = side.env(
                HOST="127.0.0.1",
                PORT=str(port),
                MLOPS_PREDICTION_LOG_DIR=str(work / f"prediction_log_against_{i}"),
            )
            servers[side.label] = stack.enter_context(
                Server(
                    side.label,
                    [PYTHON, "-m", "mlops_runtime", "serve"],
                    cwd=project,
                    env=env,
                    port=port,
                    log=work / f"serve-against-{i}.log",
                )
            )
        for round_ in range(rounds):
            for side in order(sides, round_):
                run_ = measure(
                    f"{side.label} /predict", f"{servers[side.label].base}/predict", one, s
                )
                runs[side.label].append(run_)
                r.against["runs"].append({"side": side.label, "round": round_ + 1, **asdict(run_)})
                if run_.non_2xx or run_.socket_errors:
                    r.errors.append(
                        f"{side.label}: {run_.non_2xx} non-2xx answers and "
                        f"{run_.socket_errors} socket errors"
                    )
    r.against["medians"] = {
        label: side_medians([asdict(x) for x in side_runs], AGAINST_FIGURES)
        for label, side_runs in runs.items()
    }


def report_against(r: Results, s: Settings) -> str:
    a = r.against
    before, now = a["sides"]
    out = [
        f"### Before and after: generated `POST /predict`, single records, {s.connections} "
        f"connections, {s.threads} wrk threads, {s.duration} s after a {s.warmup} s warm-up, "
        f"{a['rounds']} round(s) alternating\n"
    ]
    rows = [
        [x["side"], str(x["round"]), f"{x['rps']:,.0f}", f"{x['p50_ms']:.2f}",
         f"{x['p99_ms']:.2f}", str(x["non_2xx"]), str(x["socket_errors"])]
        for x in a["runs"]
    ]  # fmt: skip
    out.append(
        table(["runtime", "round", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"], rows)
    )
    out.append("")
    if a.get("medians"):
        rows, ratios = compare(a["medians"][before], a["medians"][now], AGAINST_FIGURES)
        a["ratios"] = ratios
        out.append(f"medians; before = {before}, now = {now}:\n")
        out.append(table(["figure", "before", "now", "now / before"], rows))
        out.append("")
        targets, _ = judge(AGAINST_TARGETS, ratios)
        out.append("### No regression (within this machine's noise)\n")
        out.append(table(["target", "wanted", "measured", "result"], targets))
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__,
        quick="1 s wrk runs, batches of 100 and 1,000 rows, 4 s soak, no Starlette floor or "
        "two-worker server",
    )
    parser_.add_argument("--spec", default=str(SPEC), help="spec to train (default breast-cancer)")
    parser_.add_argument("--duration", type=int, help="seconds per measured wrk run (default 30)")
    parser_.add_argument("--warmup", type=int, help="seconds of wrk warm-up per run (default 5)")
    parser_.add_argument("--soak", type=int, help="seconds of the RSS soak (default 300)")
    parser_.add_argument("--skip-soak", action="store_true", help="no RSS soak")
    parser_.add_argument(
        "--skip-single", action="store_true", help="no single-record runs: batches and floors only"
    )
    parser_.add_argument("--connections", type=int, default=16)
    parser_.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser_.add_argument("--batch-sizes", help="rows per batch request (default 1000,10000)")
    parser_.add_argument("--batch-reps", type=int, help="timed repetitions per batch (default 5)")
    parser_.add_argument(
        "--max-body-bytes",
        type=int,
        default=32_000_000,
        help="serving.max_body_bytes for the spec copy (0 keeps the spec's, 1 MB by default)",
    )
    parser_.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=15,
        default=0,
        help="also sample the generated server with py-spy for N s (default 15) under load",
    )
    parser_.add_argument(
        "--against",
        metavar="GIT_REF",
        help="before and after: single-record /predict on GIT_REF's runtime/ and the working "
        "tree's, in one run (nothing else is measured)",
    )
    parser_.add_argument(
        "--against-rounds", type=int, help="wrk runs per side with --against (3; --quick 1)"
    )
    add_quiet(parser_)
    add_output(parser_)
    args = parser_.parse_args(argv)

    quick = args.quick
    if args.against_rounds is None:
        args.against_rounds = 1 if quick else 3
    batch_sizes = args.batch_sizes or ("100,1000" if quick else "1000,10000")
    s = Settings(
        duration=args.duration or (1 if quick else 30),
        warmup=args.warmup or (1 if quick else 5),
        connections=args.connections,
        threads=args.threads,
        soak=0 if args.skip_soak else args.soak or (4 if quick else 300),
        sample_every=2.0 if quick else 5.0,
        batch_sizes=tuple(int(x) for x in batch_sizes.split(",") if x.strip()),
        batch_reps=args.batch_reps or (1 if quick else 5),
        max_body_bytes=args.max_body_bytes,
        profile=args.profile,
        single=not args.skip_single,
        extras=not quick,
    )
    missing = require_wrk()
    if missing is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 1

    wait_quiet(args.wait_quiet, args.quiet_load)
    r = Results(
        started=utc_now(),
        command=command_line("serve_speed.py", argv),
        machine={
            "nproc": str(os.cpu_count()),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "packages": versions(PACKAGES, wrk=True),
        },
        load_before=os.getloadavg(),
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in r.load_before)}", flush=True)
    failed: str | None = None
    with workdir("mlops-serve-bench-", keep=args.keep) as work:
        try:
            run(args, s, r, work)
        except BenchError as exc:
            failed = str(exc)
        finally:
            r.load_after = os.getloadavg()

    print()
    print(f"- date: {r.started}")
    print(f"- command: `{r.command}`")
    print(
        f"- machine: {r.machine['nproc']} CPUs, {r.machine['cpu']}, Python {r.machine['python']}, Linux {r.machine['kernel']}"
    )
    print(f"- packages: {r.machine['packages']}")
    print(
        f"- load average before: {' '.join(f'{x:.2f}' for x in r.load_before)}, after: {' '.join(f'{x:.2f}' for x in r.load_after)}"
    )
    if r.against:
        print()
        print(report_against(r, s))
    else:
        print(
            f"- model: {json.dumps(r.model.get('name'))} version {r.model.get('version')} ({r.model.get('estimator')}), compiled fast path: {r.floors.get('compiled')}"
        )
        print(f"- MLflow: `{r.mlflow_command}`")
        print()
        print(report(r, s))
    write_json(args.json, r)
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    if r.errors:
        for message in r.errors:
            print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

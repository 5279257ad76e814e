"""`score --engine spark`: the same score run on Apache Spark (`mlops-runtime[spark]`).

The driver does what the in-process engine does before any row is read: the same parts
(`find_parts`), the same column check, the same model resolved and hash-checked by the
server's code, the same staging folder. The rows are then read by Spark's CSV (every column as
text, as in-process) or Parquet reader and scored by `mapInArrow` over the same `Scorer`: each
executor process unpickles the driver's scorer once, from a broadcast whose sha256 it checks
first, so the contract check and the prediction code are the in-process engine's, not a copy.

A CSV part must be UTF-8 throughout, as in-process: Spark's CSV reader would decode a bad
byte to U+FFFD and read on, so a pass of its text reader (which keeps the bytes) looks first.

Row positions are the in-process engine's: a first pass counts the rows of each (file, Spark
partition); Spark keeps a file's splits in file order, so the driver turns the counts into each
partition's first position in its file, and the scoring pass adds the rows it has seen.

One `mapInArrow` returns predictions and rejects together, told apart by a `kind` column; the
result is persisted and written twice, filtered (`predictions/`, `rejects/`), so rows are scored
once. The prediction log is written by the executors, one log per executor process flushed
at the end of each task (complete files, named by process id), so the driver never holds the
rows. A task Spark runs again logs its rows again. The serving history line and `_summary.json`
are the driver's, as in-process.

Run it as `python -m mlops_runtime score --engine spark` (master from `--spark-master`,
`$MLOPS_SPARK_MASTER`, or `local[2]`), or `spark-submit THIS_FILE score --input ...` from the
project folder, which uses the session spark-submit made (its `--master`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from mlops_runtime.project import Project
from mlops_runtime.score.inputs import InputError, Part, find_parts, typed
from mlops_runtime.score.output import Staging
from mlops_runtime.score.scoring import REJECTS, Scorer

DEFAULT_MASTER = "local[2]"
T = TypeVar("T")
KIND = "kind"
SOURCE = "_mlops_source"
EXIT_USAGE, EXIT_NO_MODEL = 2, 3


@dataclass(frozen=True)
class Job:
    """What every task needs, pickled with the function `mapInArrow` runs."""

    model: Any  # a Broadcast of the pickled Scorer
    digest: str  # its sha256, checked on each executor before unpickling
    csv: bool
    columns: Mapping[str, Mapping[str, Any]]  # the contract's columns, for `typed`
    names: Mapping[str, str]  # Spark's file path -> the part's name
    indexes: Mapping[str, int]  # the part's name -> its index
    offsets: Any  # a Broadcast of {(file path, partition): first row}
    run: str
    arm: str
    schema: pa.Schema  # predictions' columns + the rejects' own + `kind`
    log_dir: str
    log_rotate_mb: float
    log_keep: int | None
    batch_rows: int


def run(args: argparse.Namespace, project: Project) -> int:
    from mlops_runtime.score import stage
    from mlops_runtime.score.model import ModelMissing, find, load

    config, contract = project.config, project.contract
    if project.settings.feature_store:
        print(
            "error: score reads every feature from the input; rows completed from the feature "
            "store are scored through the server (`predict --file`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.resume:
        print(
            "error: --resume is for the in-process engine; a Spark run is one job, started "
            "again from the beginning (a leftover .partial folder is discarded)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        import pyspark  # noqa: F401
    except ImportError:
        print(
            "error: --engine spark needs pyspark: pip install 'mlops-runtime[spark]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        parts = find_parts(args.input)
        kinds = {p.kind for p in parts}
        if len(kinds) > 1:
            raise InputError(
                f"{args.input}: holds both CSV and Parquet parts; --engine spark reads one format"
            )
        door = stage.serving_door(config, contract)
        stage.check_columns(parts, door.columns, args.key)
        _check_headers(parts)
        staging = Staging(args.output, args.format, resume=False)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        found = find(config, args.model)
    except ModelMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_MODEL
    started = time.monotonic()
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit
    # The model loads (skops, the compiled predictor and its check) in a thread while Spark's
    # JVM starts: each takes seconds and neither needs the other. `phases`: where the run's
    # time goes, for _summary.json.
    phases: dict[str, float] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="mlops-model") as pool:
        loading = pool.submit(
            _timed,
            phases,
            "model loaded (beside the session's start)",
            load,
            found,
            config,
            contract,
        )
        spark = session(args.spark_master, args.batch_rows, submitted=submitted)
        phases["Spark session"] = time.monotonic() - started
        try:
            model = loading.result()
        except ModelMissing as exc:  # its file did not match its recorded hash
            if not submitted:
                spark.stop()
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_NO_MODEL
    arm = found.arm
    scorer = Scorer(model, door, args.key)
    settings = project.settings.serving.prediction_log
    log_dir = project.root / (os.environ.get("MLOPS_PREDICTION_LOG_DIR") or settings.dir)
    master = spark.sparkContext.master
    try:
        totals = _score(
            spark,
            scorer,
            parts,
            staging,
            args,
            arm,
            log=(str(log_dir.resolve()), settings.rotate_mb, settings.keep_files),
            phases=phases,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        shutil.rmtree(staging.dir, ignore_errors=True)  # a Spark run is never resumed
        return EXIT_USAGE
    finally:
        stopping = time.monotonic()
        if not submitted:  # spark-submit's session is spark-submit's to stop
            spark.stop()
        phases["Spark stopped"] = time.monotonic() - stopping
    for checksum in staging.dir.rglob(".*.crc"):  # Hadoop's local checksums of each file
        checksum.unlink()
    return stage.finish(
        project,
        args,
        staging,
        parts,
        model,
        arm,
        totals,
        started,
        str(totals["run"]),
        on=f" on Spark {master}",
        extra={
            "engine": "spark",
            "spark_master": master,
            "spark_phases": {k: round(v, 3) for k, v in phases.items()},
        },
    )


def _timed(phases: dict[str, float], name: str, call: Callable[..., T], *args: Any) -> T:
    began = time.monotonic()
    try:
        return call(*args)
    finally:
        phases[name] = time.monotonic() - began


def _check_headers(parts: Sequence[Part]) -> None:
    """Spark reads every CSV part with one schema: the parts' headers must be the same."""
    from mlops_runtime.score.inputs import column_names

    if parts[0].kind != "csv":
        return
    first = column_names(parts[0])
    for part in parts[1:]:
        if column_names(part) != first:
            raise InputError(
                f"{part.path}: its header is not {parts[0].path}'s; --engine spark reads every "
                "CSV part with the same columns, in the same order"
            )


def session(master: str | None, batch_rows: int, *, submitted: bool) -> Any:
    """The session spark-submit made, or one on `master` ($MLOPS_SPARK_MASTER, local[2])."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("mlops-score")
    if not submitted:
        builder = (
            builder.master(master or os.environ.get("MLOPS_SPARK_MASTER") or DEFAULT_MASTER)
            .config("spark.ui.enabled", "false")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
        )
    spark = builder.getOrCreate()
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
    return spark


def _read(spark: Any, parts: Sequence[Part]) -> Any:
    paths = [str(p.path.resolve()) for p in parts]
    if parts[0].kind == "parquet":
        return spark.read.parquet(*paths)
    from pyspark.sql.types import StringType, StructField, StructType

    from mlops_runtime.score.inputs import column_names

    header = column_names(parts[0])
    schema = StructType([StructField(name, StringType()) for name in header])
    return (
        spark.read.option("header", True)
        .option("enforceSchema", False)  # every part's header must name the same columns
        .option("escape", '"')  # RFC 4180 quoting, as Arrow's reader
        .option("encoding", "UTF-8")
        .schema(schema)
        .csv(paths)
    )


def _check_utf8(spark: Any, parts: Sequence[Part]) -> None:
    """Every CSV part must be UTF-8 throughout, as Arrow's reader in-process requires.

    Spark's CSV reader decodes a byte that is not UTF-8 to U+FFFD and reads on, so a file in
    another encoding would be scored (or rejected row by row) instead of refused. Spark's text
    reader keeps each line's bytes as they are, so `is_valid_utf8` sees them; the scan runs on
    the executors and stops at the first bad line."""
    if parts[0].kind != "csv":
        return
    from pyspark.sql import functions

    lines = spark.read.text([str(p.path.resolve()) for p in parts])
    bad = (
        lines.filter(~functions.is_valid_utf8("value"))
        .select(functions.col("_metadata.file_path").alias("path"))
        .limit(1)
        .collect()
    )
    if bad:
        part = _part_of(bad[0]["path"], {str(p.path.resolve()): p for p in parts})
        raise InputError(
            f"{part.path}: cannot be read: a line holds bytes that are not UTF-8; CSV input "
            "must be UTF-8 throughout"
        )


def _score(
    spark: Any,
    scorer: Scorer,
    parts: Sequence[Part],
    staging: Staging,
    args: argparse.Namespace,
    arm: str,
    log: tuple[str, float, int | None],
    phases: dict[str, float],
) -> dict[str, Any]:
    from pyspark import StorageLevel
    from pyspark.sql import functions
    from pyspark.sql.pandas.types import from_arrow_schema

    began = time.monotonic()
    _check_utf8(spark, parts)
    if parts[0].kind == "csv":
        phases["UTF-8 check (CSV)"] = time.monotonic() - began
    began = time.monotonic()
    frame = _read(spark, parts).withColumn(SOURCE, functions.col("_metadata.file_path"))
    # Pass 1: rows per (file, partition), in file order, for the rows' positions.
    counted = (
        frame.select(SOURCE, functions.spark_partition_id().alias("p")).groupBy(SOURCE, "p").count()
    ).collect()
    by_path = {str(p.path.resolve()): p for p in parts}
    names = {row[SOURCE]: _part_of(row[SOURCE], by_path).name for row in counted}
    offsets: dict[tuple[str, int], int] = {}
    rows: dict[str, int] = {}
    for row in sorted(counted, key=lambda r: (r[SOURCE], r["p"])):
        offsets[(row[SOURCE], row["p"])] = rows.get(row[SOURCE], 0)
        rows[row[SOURCE]] = rows.get(row[SOURCE], 0) + row["count"]
    phases["rows counted per split (pass 1)"] = time.monotonic() - began
    key_type = None
    if args.key is not None:
        from pyspark.sql.pandas.types import to_arrow_type

        key_type = to_arrow_type(frame.schema[args.key].dataType)
    schemas = scorer.schemas(key_type)
    schema = _union(schemas)
    from pyspark import cloudpickle  # the door's and predictor's closures go by value

    pickled = cloudpickle.dumps(scorer, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-untyped-call]
    run_id = f"score-{uuid.uuid4().hex[:12]}"
    job = Job(
        model=spark.sparkContext.broadcast(pickled),
        digest=hashlib.sha256(pickled).hexdigest(),
        csv=parts[0].kind == "csv",
        columns=scorer.door.contract.get("columns", {}),
        names=names,
        indexes={p.name: i for i, p in enumerate(parts)},
        offsets=spark.sparkContext.broadcast(offsets),
        run=run_id,
        arm=arm,
        schema=schema,
        log_dir=log[0],
        log_rotate_mb=log[1],
        log_keep=log[2],
        batch_rows=args.batch_rows,
    )
    needed = [c.name for c in scorer.door.columns]
    if scorer.names is None:  # the door refuses extra columns: it sees them all
        needed = [c for c in frame.columns if c != SOURCE]
    if args.key is not None and args.key not in needed:
        needed.append(args.key)
    scored = (
        frame.select(*needed, SOURCE)
        .mapInArrow(score_partition(job), from_arrow_schema(schema))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        # Pass 2 scores (once: the result is persisted), then the two filtered writes.
        began = time.monotonic()
        kinds = scored.groupBy("source", KIND).count().collect()
        phases["read, contract check, predict, log (pass 2)"] = time.monotonic() - began
        for kind, fields in schemas.items():
            began = time.monotonic()
            chosen = scored.filter(functions.col(KIND) == kind).select(*fields.names)
            writer = chosen.write.mode("overwrite")
            target = str(staging.dir.resolve() / kind)
            if args.format == "csv":
                writer.option("header", True).option("escape", '"').csv(target)
            else:
                writer.parquet(target)
            phases[f"{kind} written"] = time.monotonic() - began
    finally:
        scored.unpersist()
    by_name = {p.name: {"rows": 0, "scored": 0, "rejected": 0} for p in parts}
    for path, count in rows.items():
        by_name[names[path]]["rows"] = count
    for row in kinds:
        column = "scored" if row[KIND] == "predictions" else "rejected"
        by_name[row["source"]][column] += row["count"]
    totals: dict[str, Any] = {"rows": 0, "scored": 0, "rejected": 0, "run": run_id}
    for index, part in enumerate(parts):
        record = {"source": part.name, **by_name[part.name]}
        staging.write_record(index, record)
        for key in ("rows", "scored", "rejected"):
            totals[key] += record[key]
    return totals


def _part_of(path: str, by_path: Mapping[str, Part]) -> Part:
    """The part Spark's file path (a URI, escaped) names."""
    from urllib.parse import unquote, urlparse

    local = os.path.realpath(unquote(urlparse(path).path))
    for known, part in by_path.items():
        if os.path.realpath(known) == local:
            return part
    raise InputError(f"Spark read a file that is not a part of the input: {path}")


def _union(schemas: Mapping[str, pa.Schema]) -> pa.Schema:
    """The predictions' columns, then the rejects' own, then `kind`."""
    fields = list(schemas["predictions"])
    fields += [f for f in REJECTS if f.name not in schemas["predictions"].names]
    return pa.schema([*fields, pa.field(KIND, pa.string())])


def score_partition(job: Job) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def scored(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _score_task(job, batches)

    return scored


_SCORERS: dict[str, Scorer] = {}
_LOGS: dict[str, Any] = {}


def _scorer(job: Job) -> Scorer:
    """The driver's scorer, unpickled once per executor process after its sha256 check."""
    scorer = _SCORERS.get(job.digest)
    if scorer is None:
        pickled: bytes = job.model.value
        digest = hashlib.sha256(pickled).hexdigest()
        if digest != job.digest:
            raise RuntimeError(f"the model broadcast has sha256 {digest}, not {job.digest}")
        scorer = _SCORERS[job.digest] = pickle.loads(pickled)  # checked above
    return scorer


def _log(job: Job) -> Any:
    """One prediction log per executor process: its files are named by the process id."""
    log = _LOGS.get(job.log_dir)
    if log is None:
        from mlops_runtime.serve.prediction_log import PredictionLog

        log = PredictionLog(
            Path(job.log_dir),
            job.log_rotate_mb,
            max_rows=4 * job.batch_rows,
            keep_files=job.log_keep,
        )
        log.start()
        _LOGS[job.log_dir] = log
    return log


def _score_task(job: Job, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    from pyspark import TaskContext

    from mlops_runtime.score import stage

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    scorer = _scorer(job)
    log = _log(job)
    offsets: Mapping[tuple[str, int], int] = job.offsets.value
    seen: dict[str, int] = {}
    number = 0
    for batch in batches:
        paths = batch.column(SOURCE).to_pylist()
        rows = batch.drop_columns([SOURCE])
        start = 0
        while start < len(paths):  # a batch may end one file and begin the next
            path = paths[start]
            end = start + 1
            while end < len(paths) and paths[end] == path:
                end += 1
            chunk = rows.slice(start, end - start)
            if job.csv:
                chunk = typed(chunk, job.columns)
            name = job.names[path]
            first = offsets[(path, partition)] + seen.get(path, 0)
            request_id = f"{job.run}-{job.indexes[name]}-{partition}-{number}"
            began = time.perf_counter()
            scored = scorer.score(chunk, name, first, request_id)
            stage.log_scored(log, scorer, scored, request_id, job.arm, began)
            yield _tagged(scored.predictions, "predictions", job.schema)
            yield _tagged(scored.rejects, "rejects", job.schema)
            seen[path] = seen.get(path, 0) + (end - start)
            number += 1
            start = end
    if not log.flush(timeout=300.0):
        raise RuntimeError(f"the prediction log in {job.log_dir} took no rows for 5 minutes")


def _tagged(batch: pa.RecordBatch, kind: str, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for field in schema:
        if field.name == KIND:
            arrays.append(pa.repeat(pa.scalar(kind, pa.string()), batch.num_rows))
        elif field.name in batch.schema.names:
            arrays.append(batch.column(field.name).cast(field.type))
        else:
            arrays.append(pa.nulls(batch.num_rows, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


if __name__ == "__main__":  # spark-submit .../score/spark.py score --input ... --output ...
    import runpy

    argv = sys.argv[1:]
    if argv[:1] == ["score"] and not any(a.startswith("--engine") for a in argv):
        argv += ["--engine", "spark"]
    sys.argv = ["mlops_runtime", *argv]  # as `python -m mlops_runtime score ...` runs
    runpy.run_module("mlops_runtime", run_name="__main__", alter_sys=True)

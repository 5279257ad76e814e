"""`python -m mlops_runtime score --input PATH --output DIR`: score a file of rows as the server
would, without a server.

The model is resolved exactly as serving resolves it (the registry alias, or the level-0 model
file, each checked against its recorded sha256 before it is loaded), and every row is held to
the contract by the serving door: rows that break it go to `rejects` with every rule they
broke, the rest are scored, and rows in = scored + rejected. Predictions carry the row's
position in its input part (and `--key`'s value), the model version and its run id. The
scored rows go to the prediction log as the server logs a big batch (Parquet), with endpoint
`score`, so the monitor covers batch scoring as it is. A finished run adds one `batch_scored`
line to the serving history; it never moves an alias.

Exit codes: 0 every row scored; 1 some rows rejected (the output is complete, rejects
included); 2 bad usage or input (missing, unreadable, no rows, a contract column missing from
a part, an existing --output): nothing written under the output name; 3 no model to score
with; 130/143 stopped by SIGINT/SIGTERM (finished parts are kept for `--resume`).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlops_runtime.project import Project, Stopped, stop_on_signals
from mlops_runtime.score.inputs import InputError, Part, find_parts, read_batches
from mlops_runtime.score.output import FORMATS, PartWriter, Staging
from mlops_runtime.score.scoring import Scored, Scorer

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_NO_MODEL = 3
DEFAULT_BATCH_ROWS = 65_536
ENDPOINT = "score"
HISTORY_EVENT = "batch_scored"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_runtime score",
        description="Score a CSV or Parquet file (or a folder of parts) with the served model.",
    )
    parser.add_argument("--input", required=True, type=Path, help="a file or a folder of parts")
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="a folder, created by the run; {date} and {time} are replaced by the run's UTC "
        "start (a schedule's runs each get their own)",
    )
    parser.add_argument(
        "--model",
        default="champion",
        help="champion (default), challenger, or a registered version number",
    )
    parser.add_argument("--format", default="parquet", choices=FORMATS)
    parser.add_argument("--key", help="an input column copied to each prediction (an id)")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS)
    parser.add_argument(
        "--resume", action="store_true", help="keep the parts an interrupted run finished"
    )
    parser.add_argument(
        "--engine",
        default="local",
        choices=("local", "spark"),
        help="local (this process, default) or spark (Apache Spark, mlops-runtime[spark])",
    )
    parser.add_argument(
        "--spark-master",
        help="with --engine spark: the master (default $MLOPS_SPARK_MASTER, else local[2]; "
        "under spark-submit, its own)",
    )
    return parser


def main(argv: list[str], project: Project) -> int:
    args = _parser().parse_args(argv)
    args.output = expand_output(args.output)
    name = project.settings.name
    if args.batch_rows < 1:
        print("error: --batch-rows must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        with stop_on_signals():
            if args.engine == "spark":
                from mlops_runtime.score import spark

                return spark.run(args, project)
            return _run(args, project)
    except Stopped as stop:
        print(
            f"{name}: scoring stopped by {stop.name}: nothing under {args.output}; finished "
            "parts are kept for --resume",
            file=sys.stderr,
        )
        return stop.exit_code


def expand_output(path: Path, now: float | None = None) -> Path:
    """`{date}` (YYYY-MM-DD) and `{time}` (HHMMSS) in the output path, in UTC."""
    stamp = time.gmtime(time.time() if now is None else now)
    text = str(path)
    text = text.replace("{date}", time.strftime("%Y-%m-%d", stamp))
    return Path(text.replace("{time}", time.strftime("%H%M%S", stamp)))


def _run(args: argparse.Namespace, project: Project) -> int:
    from mlops_runtime.score.model import ModelMissing, resolve

    # The serving door and the model source read config.json's sections as serve/ does.
    config, contract = project.config, project.contract
    if project.settings.feature_store:
        print(
            "error: score reads every feature from the input; rows completed from the feature "
            "store are scored through the server (`predict --file`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        parts = find_parts(args.input)
        scorer_door = serving_door(config, contract)
        check_columns(parts, scorer_door.columns, args.key)
        staging = Staging(args.output, args.format, resume=args.resume)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        model, arm = resolve(config, contract, args.model)
    except ModelMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_MODEL
    scorer = Scorer(model, scorer_door, args.key)
    started = time.monotonic()
    progress = Progress(sys.stderr)
    log = _prediction_log(project, args.batch_rows)
    run = f"score-{uuid.uuid4().hex[:12]}"
    totals = {"rows": 0, "scored": 0, "rejected": 0}
    try:
        for index, part in enumerate(parts):
            done = staging.finished(index, part.name)
            if done is None:
                done = _score_part(scorer, staging.part(index), part, args, log, run, arm, progress)
            for key in totals:
                totals[key] += int(done[key])
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        log.flush(timeout=60.0)
        log.close()
        progress.clear()
    return finish(project, args, staging, parts, model, arm, totals, started, run)


def finish(
    project: Project,
    args: argparse.Namespace,
    staging: Staging,
    parts: Sequence[Part],
    model: Any,
    arm: str,
    counts: Mapping[str, Any],
    started: float,
    request_prefix: str,
    *,
    on: str = "",
    extra: Mapping[str, Any] | None = None,
) -> int:
    """The end every engine shares: no rows is an error; otherwise the summary, the output
    renamed into place, the serving-history line and the summary line. `on` names the engine
    in that line, `extra` adds to the summary."""
    if counts["rows"] == 0:
        print(f"error: {args.input}: no rows to score", file=sys.stderr)
        return EXIT_USAGE
    seconds = time.monotonic() - started
    ref = model.ref
    summary = {
        "input": str(args.input),
        "parts": len(parts),
        **{k: counts[k] for k in ("rows", "scored", "rejected")},
        "model": ref.name,
        "model_version": ref.version,
        "run_id": ref.run_id,
        "arm": arm,
        "format": args.format,
        "seconds": round(seconds, 3),
        "log_request_prefix": request_prefix,
        **(extra or {}),
    }
    staging.commit(summary)
    _history(project, summary, args.output)
    rate = counts["rows"] / seconds if seconds > 0 else float("inf")
    print(
        f"{ref.name}: scored {counts['scored']:,} of {counts['rows']:,} rows "
        f"({counts['rejected']:,} rejected) with version {ref.version}{on} in {seconds:.1f} s "
        f"({rate:,.0f} rows/s): {args.output}"
    )
    return EXIT_REJECTED if counts["rejected"] else 0


def serving_door(config: Mapping[str, Any], contract: Mapping[str, Any]) -> Any:
    """The serving door of the project's contract, as the server builds it."""
    from mlops_runtime.features.columns import feature_split
    from mlops_runtime.serve.record_validation import Door

    numeric, categorical = feature_split(config, contract)
    return Door(config, contract, numeric, categorical)


def check_columns(parts: Sequence[Part], columns: Sequence[Any], key: str | None) -> None:
    """A column the door needs that a whole part lacks is a wrong file, not bad rows."""
    from mlops_runtime.score.inputs import column_names

    needed = [c.name for c in columns]
    if key is not None:
        needed.append(key)
    for part in parts:
        present = set(column_names(part))
        missing = [n for n in needed if n not in present]
        if missing:
            raise InputError(f"{part.path}: no column {', '.join(map(repr, missing))}")


def _score_part(
    scorer: Scorer,
    writer: PartWriter,
    part: Part,
    args: argparse.Namespace,
    log: Any,
    run: str,
    arm: str,
    progress: Progress,
) -> dict[str, Any]:
    counts = {"rows": 0, "scored": 0, "rejected": 0}
    schemas: dict[str, pa.Schema] = {}
    try:
        for number, batch in enumerate(read_batches(part, scorer.door.contract, args.batch_rows)):
            began = time.perf_counter()
            request_id = f"{run}-{writer.index}-{number}"
            scored = scorer.score(batch, part.name, counts["rows"], request_id)
            for kind, out in (("predictions", scored.predictions), ("rejects", scored.rejects)):
                schemas[kind] = out.schema
                writer.write(kind, out)
            log_scored(log, scorer, scored, request_id, arm, began)
            counts["rows"] += batch.num_rows
            counts["scored"] += scored.predictions.num_rows
            counts["rejected"] += scored.rejects.num_rows
            progress.add(batch.num_rows)
    except BaseException:
        writer.abandon()
        raise
    if not schemas:  # a part with a header and no rows: its files are empty but typed
        schemas = scorer.schemas()
    record = {"source": part.name, **counts}
    writer.close(record, schemas)
    return record


def _prediction_log(project: Project, batch_rows: int) -> Any:
    import os

    from mlops_runtime.serve.prediction_log import PredictionLog

    settings = project.settings.serving.prediction_log
    log = PredictionLog(
        project.root / (os.environ.get("MLOPS_PREDICTION_LOG_DIR") or settings.dir),
        settings.rotate_mb,
        max_rows=4 * batch_rows,
        keep_files=settings.keep_files,
    )
    log.start()
    return log


def log_scored(
    log: Any, scorer: Scorer, scored: Scored, request_id: str, arm: str, began: float
) -> None:
    """The scored rows as the server logs a big batch; waits for room rather than drop.
    Every engine logs through this, the Spark executors too."""
    from mlops_runtime.serve.prediction_log import Entry

    if not len(scored.batch):
        return
    ref = scorer.model.ref
    entry = Entry(
        request_id,
        time.time(),
        ref.name,
        ref.version,
        ref.run_id,
        arm,
        ENDPOINT,
        None,
        scored.labels,
        scored.proba,
        (time.perf_counter() - began) * 1000.0,
        scorer.door.input_columns(scored.batch),
    )
    if not log.put(entry, timeout=300.0):
        raise RuntimeError(f"the prediction log in {log.directory} took no rows for 5 minutes")


def _history(project: Project, summary: Mapping[str, Any], output: Path) -> None:
    from mlops_runtime.tracking import serving_history as history

    version = str(summary["model_version"])
    entry = history.record(
        HISTORY_EVENT,
        alias=str(summary["arm"]),
        from_version=version,
        to_version=version,
        why={k: summary[k] for k in ("input", "rows", "scored", "rejected")}
        | {"output": str(output)},
        by=history.actor(),
    )
    history.append(history.history_path(project.root, project.config), entry)


class Progress:
    """A live line with rows and rows/s on a terminal; nothing otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self.rows = 0
        self.started = time.monotonic()
        self.shown = 0.0

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if self.live and now - self.shown >= 0.2:
            self.shown = now
            rate = self.rows / max(now - self.started, 1e-9)
            self.stream.write(f"\r  scored {self.rows:,} rows ({rate:,.0f} rows/s)  ")
            self.stream.flush()

    def clear(self) -> None:
        if self.live and self.rows:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()

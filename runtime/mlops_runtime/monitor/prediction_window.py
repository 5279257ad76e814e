"""The window of the prediction log a monitor run looks at, read file by file, column-wise.

The serving app writes JSON lines (single records, small batches, failed requests) and
Parquet files (big batches); see serve/prediction_log.py. Both are read with Arrow's C++
readers into the same flat columns, one file (a partition) at a time, so a window of any
size is summarised without holding it in memory: the caller folds each partition into
mergeable statistics. A JSONL file whose values Arrow cannot type consistently (category
codes sent as numbers by one client and as text by another) is parsed line by line instead;
a line that is not JSON is counted as corrupt and skipped.

Choosing the window takes a first pass over the timestamps only (cheap for Parquet, whose
columns are read separately): the last `duration_s` before `end`, or the newest `records`
rows (rows sharing the cutoff timestamp are all kept).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

BASE_COLUMNS = ("request_id", "row", "ts", "model_version", "run_id", "endpoint", "latency_ms")
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Partition:
    """One log file's rows inside the window, as flat columns."""

    path: Path
    rows: int
    # BASE_COLUMNS, "status", "prediction", "input.<name>": numpy arrays, and pandas
    # Categoricals for the repeated identifiers
    columns: dict[str, Any]
    probabilities: np.ndarray | None  # (rows, classes) or None


@dataclass
class WindowScan:
    files: list[Path] = field(default_factory=list)
    corrupt_files: list[str] = field(default_factory=list)
    corrupt_lines: int = 0
    start: float | None = None  # epoch seconds of the window's bounds
    end: float | None = None


def log_files(directory: Path) -> list[Path]:
    """Complete log files, oldest first (a `.parquet.part` is still being written)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.suffix in (".jsonl", ".parquet") and p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def _epoch_seconds(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(ts.type) or pa.types.is_large_string(ts.type):
        ts = pc.cast(ts, _TS)
    micros = pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype="float64") / 1e6


def _read_jsonl(path: Path, scan: WindowScan) -> pa.Table:
    try:
        return pajson.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    records = []
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except ValueError:
                scan.corrupt_lines += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                scan.corrupt_lines += 1
    return _records_table(records)


def _records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Arrow columns from parsed lines; input values keep the type each line gave them."""
    base = {name: [r.get(name) for r in records] for name in (*BASE_COLUMNS, "status")}
    inputs = [r.get("inputs") or {} for r in records]
    names = sorted({k for record in inputs if isinstance(record, dict) for k in record})
    outputs = [r.get("output") or {} for r in records]
    if all(v is None for v in base["status"]):
        del base["status"]  # as Arrow's reader leaves it out: no line failed
    arrays: dict[str, Any] = {k: pa.array(v, from_pandas=True) for k, v in base.items()}
    arrays["ts"] = pc.cast(pa.array([str(t) for t in base["ts"]]), _TS)
    for name in names:
        values = [_scalar(rec.get(name)) if isinstance(rec, dict) else None for rec in inputs]
        if _mixed(values):
            # One column has one type: a value some lines sent as text is text in all of
            # them, each other value spelled as its line wrote it (17, 3.5, true).
            values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
            arrays[f"inputs.{name}"] = pa.array(values, type=pa.string())
        else:
            arrays[f"inputs.{name}"] = pa.array(values)
    arrays["output.prediction"] = pa.array([_scalar(o.get("prediction")) for o in outputs])
    if any(o.get("probabilities") is not None for o in outputs):
        arrays["output.probabilities"] = pa.array([o.get("probabilities") for o in outputs])
    return pa.table(arrays)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _mixed(values: Sequence[Any]) -> bool:
    kinds = {type(v) for v in values if v is not None}
    return len(kinds - {int, float}) > 0 and len(kinds) > 1


def _read(path: Path, scan: WindowScan, columns: list[str] | None = None) -> pa.Table | None:
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path, columns=columns)
        else:
            table = _read_jsonl(path, scan)
    except (OSError, pa.ArrowException, ValueError) as exc:
        scan.corrupt_files.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
        return None
    return table.flatten() if columns is None else table


def _timestamps(path: Path, scan: WindowScan) -> np.ndarray | None:
    table = _read(path, scan, ["ts"] if path.suffix == ".parquet" else None)
    if table is None or "ts" not in table.column_names:
        return None
    return _epoch_seconds(table.column("ts"))


def choose_window(
    files: list[Path],
    scan: WindowScan,
    *,
    duration_s: float | None,
    records: int | None,
    end: float | None = None,
) -> tuple[float, float]:
    """The window's (start, end) in epoch seconds; files wholly before it are dropped."""
    end = time.time() if end is None else end
    if records is None:
        start = end - float(duration_s or 3600)
        # A file last written before the window starts holds nothing in it.
        scan.files = [p for p in files if p.stat().st_mtime >= start]
        scan.start, scan.end = start, end
        return start, end
    # A file's rows are never newer than its mtime (JSON lines are appended, a Parquet file is
    # renamed into place when complete), but a Parquet file of old rows can be completed late:
    # files are read newest mtime first until no unread file can hold a row newer than the
    # N-th newest row seen so far.
    newest: list[np.ndarray] = []
    kept: list[Path] = []
    start = -np.inf
    for path in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True):
        if path.stat().st_mtime < start:
            break
        ts = _timestamps(path, scan)
        if ts is None:
            continue
        kept.append(path)
        newest.append(ts[ts <= end])
        stamps = np.concatenate(newest)
        if len(stamps) >= records:
            start = float(np.partition(stamps, len(stamps) - records)[len(stamps) - records])
    if start == -np.inf:  # fewer rows than asked for: all of them
        stamps = np.concatenate(newest) if newest else np.empty(0)
        start = float(stamps.min()) if len(stamps) else end
    scan.files = sorted(kept, key=files.index)
    scan.start, scan.end = start, end
    return start, end


# What the monitor reads of a log line (the model's name, the arm and the endpoint it does not
# need), and how many rows at a time: memory follows a batch, not a file or the window.
READ_COLUMNS = ("request_id", "row", "ts", "model_version", "run_id", "latency_ms", "status",
                "inputs", "output")  # fmt: skip
BATCH_ROWS = 65_536
# Identifiers repeat across rows (a version, a run, a batch request's id): as categoricals they
# cost a code per row instead of a Python string per row.
_REPEATED = ("request_id", "model_version", "run_id")


def _tables(path: Path, scan: WindowScan) -> Iterator[pa.Table]:
    if path.suffix != ".parquet":
        table = _read(path, scan)
        if table is not None:
            yield table
        return
    try:
        handle = pq.ParquetFile(path)
        names = [n for n in READ_COLUMNS if n in handle.schema_arrow.names]
        for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=names):
            yield pa.Table.from_batches([batch]).flatten()
    except (OSError, pa.ArrowException, ValueError) as exc:
        scan.corrupt_files.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])


def _column(table: pa.Table, name: str) -> Any:
    column = table.column(name)
    if name in _REPEATED and (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        return column.to_pandas(strings_to_categorical=True).array
    return column.to_numpy(zero_copy_only=False)


def partitions(scan: WindowScan, start: float, end: float) -> Iterator[Partition]:
    """Each file's rows with start <= ts <= end, a Parquet file a batch of rows at a time."""
    for path in scan.files:
        for table in _tables(path, scan):
            part = _partition(path, table, start, end)
            if part is not None:
                yield part


def _partition(path: Path, table: pa.Table, start: float, end: float) -> Partition | None:
    if "ts" not in table.column_names:
        return None
    ts = _epoch_seconds(table.column("ts"))
    keep = (ts >= start) & (ts <= end)
    if not keep.any():
        return None
    if not keep.all():
        table = table.filter(pa.array(keep))
    columns: dict[str, Any] = {"ts": ts[keep]}
    for name in table.column_names:
        if name == "ts" or name == "output.probabilities":
            continue
        key = name.replace("inputs.", "input.", 1).replace("output.", "", 1)
        columns[key] = _column(table, name)
    if "status" not in columns:
        columns["status"] = np.full(table.num_rows, 200, dtype="int64")
    else:
        status = table.column("status").fill_null(200)
        columns["status"] = status.to_numpy(zero_copy_only=False).astype("int64")
    return Partition(path, table.num_rows, columns, _probabilities(table))


def _probabilities(table: pa.Table) -> np.ndarray | None:
    """(rows, classes) with NaN rows for failed requests, which carry no probabilities."""
    if "output.probabilities" not in table.column_names:
        return None
    column = table.column("output.probabilities").combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return None
    present = column.filter(pa.array(valid))
    flat = np.asarray(pc.list_flatten(present).to_numpy(zero_copy_only=False), dtype="float64")
    width = len(flat) // len(present)
    out = np.full((len(column), width), np.nan)
    out[valid] = flat.reshape(len(present), width)
    return out


def restrict(part: Partition, version: str) -> Partition | None:
    """The rows one model version served (for judging each A/B arm or a new champion alone)."""
    column = part.columns.get("model_version")
    if column is None:
        return None
    mask = np.asarray(column.astype(str) == version, dtype=bool)
    if not mask.any():
        return None
    if mask.all():
        return part
    columns = {name: values[mask] for name, values in part.columns.items()}
    probabilities = None if part.probabilities is None else part.probabilities[mask]
    return Partition(part.path, int(mask.sum()), columns, probabilities)

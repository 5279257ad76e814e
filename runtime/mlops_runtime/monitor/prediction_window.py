"""The window of the prediction log a monitor run looks at, read file by file, column-wise.

The serving app writes JSON lines (single records, small batches, failed requests) and
Parquet files (big batches); see serve/prediction_log.py. Both are read with Arrow's C++
readers into the same flat columns, one file (a partition) at a time, so a window of any
size is summarised without holding it in memory: the caller folds each partition into
mergeable statistics. A JSONL file whose values Arrow cannot type consistently (category
codes sent as numbers by one client and as text by another), or types in a way no record of
the server's has, is parsed line by line instead, each line through `parse_record`: the one
gate of what a record is. A line that is not one (not JSON or not UTF-8, not an object, no
time in `ts`, a known field of the wrong type) is counted as corrupt and skipped, and the rest
of its file is still read; a Parquet file whose columns are not the log's is a corrupt file.

Choosing the window takes a first pass over the timestamps only (cheap for Parquet, whose
columns are read separately): the last `duration_s` before `end`, or the newest `records`
rows (rows sharing the cutoff timestamp are all kept).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    # By file, because choosing a window of the newest N records reads a file twice: once for
    # its timestamps, once for its rows. A problem is counted once however often it is met.
    bad_files: dict[Path, str] = field(default_factory=dict)  # file: why it cannot be read
    bad_lines: dict[Path, int] = field(default_factory=dict)  # file: lines that are no record
    start: float | None = None  # epoch seconds of the window's bounds
    end: float | None = None

    @property
    def corrupt_files(self) -> list[str]:
        return list(self.bad_files.values())

    @property
    def corrupt_lines(self) -> int:
        return sum(self.bad_lines.values())

    def unreadable(self, path: Path, exc: BaseException) -> None:
        self.bad_files.setdefault(path, f"{path.name}: {type(exc).__name__}: {exc}"[:300])


def log_files(directory: Path) -> list[Path]:
    """Complete log files, oldest first (a `.parquet.part` is still being written)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.suffix in (".jsonl", ".parquet") and p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def _epoch_seconds(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    # Through microseconds in UTC whatever the unit Arrow inferred (whole seconds for
    # "2026-12-01T10:00:00+00:00"), so every spelling of a time lands on the same instant.
    micros = pc.cast(pc.cast(ts, _TS), pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype="float64") / 1e6


# The fields the monitor reads, and the JSON types a record may give each (besides null).
_TEXT = ("request_id", "model_version", "run_id", "endpoint")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def parse_record(raw: bytes) -> dict[str, Any] | None:
    """The record a log line holds, normalised (`ts` in microseconds since the epoch, inputs
    and prediction as scalars, probabilities as floats), or None when the line is none.

    The one gate of what the monitor reads: every line-by-line read goes through it, and the
    columnar fast path is held to the same types (`_conforming`)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser
        return None
    if not isinstance(value, dict):
        return None
    ts = _micros(value.get("ts"))
    if ts is None:
        return None
    out: dict[str, Any] = {"ts": ts}
    for name in _TEXT:
        text = value.get(name)
        if text is not None and not isinstance(text, str):
            return None
        out[name] = text
    row, status = value.get("row"), value.get("status")
    if row is not None and not (_is_int(row) and _INT64_MIN <= row <= _INT64_MAX):
        return None
    if status is not None and not (_is_int(status) and 100 <= status <= 599):
        return None
    latency = _number(value.get("latency_ms"))
    if latency is False:
        return None
    inputs, output = value.get("inputs"), value.get("output")
    if not isinstance(inputs, dict | None) or not isinstance(output, dict | None):
        return None
    output = output or {}
    probabilities = output.get("probabilities")
    if probabilities is not None:
        if not isinstance(probabilities, list):
            return None
        numbers = [_number(p) for p in probabilities]
        if any(n is None or n is False for n in numbers):
            return None
        probabilities = numbers
    out.update(
        row=row,
        status=status,
        latency_ms=latency,
        inputs={str(k): _scalar(v) for k, v in (inputs or {}).items()},
        prediction=_scalar(output.get("prediction")),
        probabilities=probabilities,
    )
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float | bool | None:
    """The float of a JSON number, None for null, False for anything else (a wrong type)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return float(value)
    except OverflowError:  # an integer past any float
        return False


def _micros(value: object) -> int | None:
    """Microseconds since the epoch of an ISO 8601 time (no zone: UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return (moment - _EPOCH) // _MICROSECOND
    except OverflowError:
        return None


def _read_jsonl(path: Path, scan: WindowScan) -> pa.Table:
    data = path.read_bytes()
    table = _fast_jsonl(data)
    if table is not None:
        scan.bad_lines[path] = 0
        return table
    records, bad = [], 0
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue  # as Arrow's reader: a blank line holds nothing, not a broken record
        record = parse_record(raw)
        if record is None:
            bad += 1
        else:
            records.append(record)
    scan.bad_lines[path] = bad
    return _records_table(records)


# A line that does not open an object. pyarrow 26's JSON reader dies of a segmentation fault
# on a file whose first value is `null`, so only files of objects are handed to it.
# (A literal newline first: an alternation with ^ made the search slower than the parse.)
_NOT_AN_OBJECT = re.compile(rb"\n[ \t\r]*[^{ \t\r\n]")


def _fast_jsonl(data: bytes) -> pa.Table | None:
    """The file through Arrow's reader when every line is a record as the server writes it."""
    if _NOT_AN_OBJECT.search(b"\n" + data):
        return None
    try:
        table = pajson.read_json(pa.BufferReader(data))
        return table if _conforming(table, inferred=True) else None
    except (pa.ArrowException, ValueError):  # ValueError: UnicodeDecodeError of a field name
        return None


_PRIMITIVE = (pa.types.is_null, pa.types.is_boolean, pa.types.is_integer, pa.types.is_floating,
              pa.types.is_string, pa.types.is_large_string)  # fmt: skip


def _scalar_type(kind: pa.DataType, *, inferred: bool) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if any(test(kind) for test in _PRIMITIVE):
        return True
    # Arrow's JSON reader turns text that looks like a time into a timestamp; a line read
    # alone keeps it as text, so such a file is read line by line. A Parquet file's inputs are
    # typed by the contract, times included.
    return not inferred and (pa.types.is_temporal(kind) or pa.types.is_decimal(kind))


def _text_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_null(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
    )


def _conforming(table: pa.Table, *, inferred: bool) -> bool:
    """Whether the table's columns are typed as `parse_record` would read each line: then the
    columnar path and the line-by-line path see the same records. Unknown columns are the
    writer's business and are not looked at."""
    table.validate(full=True)  # raises on text that is not UTF-8
    schema = table.schema
    names = schema.names  # raises on a field name that is not UTF-8
    for name in names:
        _decode_names(schema.field(name).type)
    if "ts" not in names:
        return False
    ts = table.column("ts")
    if not (pa.types.is_timestamp(ts.type) or _text_type(ts.type)) or ts.null_count:
        return False
    try:
        pc.cast(ts, _TS)  # text that is no time
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    kinds = {name: schema.field(name).type for name in names}
    if any(not _text_type(kinds[n]) for n in _TEXT if n in kinds):
        return False
    for name, low, high in (("row", _INT64_MIN, _INT64_MAX), ("status", 100, 599)):
        if name not in kinds:
            continue
        if not (pa.types.is_integer(kinds[name]) or pa.types.is_null(kinds[name])):
            return False
        bounds = pc.min_max(table.column(name))
        least, most = bounds["min"].as_py(), bounds["max"].as_py()
        if least is not None and not (low <= least and most <= high):
            return False
    latency = kinds.get("latency_ms")
    if latency is not None and not (
        pa.types.is_integer(latency) or pa.types.is_floating(latency) or pa.types.is_null(latency)
    ):
        return False
    return _struct_conforms(table, kinds.get("inputs"), inferred) and _output_conforms(
        table, kinds.get("output"), inferred
    )


def _decode_names(kind: pa.DataType) -> None:
    """Raise UnicodeDecodeError on a nested field name that is not UTF-8 (Arrow keeps the bytes
    and fails only when the name is read, much later)."""
    if pa.types.is_struct(kind):
        for i in range(kind.num_fields):
            child = kind.field(i)
            child.name  # noqa: B018 - decoding is the check
            _decode_names(child.type)
    elif (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    ):
        _decode_names(kind.value_type)


def _struct_conforms(table: pa.Table, kind: pa.DataType | None, inferred: bool) -> bool:
    if kind is None or pa.types.is_null(kind):
        return True
    if not pa.types.is_struct(kind):
        return False
    return all(_scalar_type(kind.field(i).type, inferred=inferred) for i in range(kind.num_fields))


def _output_conforms(table: pa.Table, kind: pa.DataType | None, inferred: bool) -> bool:
    if kind is None or pa.types.is_null(kind):
        return True
    if not pa.types.is_struct(kind):
        return False
    for i in range(kind.num_fields):
        child = kind.field(i)
        if child.name == "prediction" and not _scalar_type(child.type, inferred=inferred):
            return False
        if child.name == "probabilities":
            if pa.types.is_null(child.type):
                continue
            if not (pa.types.is_list(child.type) or pa.types.is_fixed_size_list(child.type)):
                return False
            item = child.type.value_type
            if not (pa.types.is_floating(item) or pa.types.is_integer(item)):
                return False
            values = pc.struct_field(table.column("output"), [i])
            if pc.list_flatten(values).null_count:
                return False
    return True


def _records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Arrow columns from the records of `parse_record`; input values keep the type each line
    gave them."""
    arrays: dict[str, Any] = {
        "ts": pa.array([r["ts"] for r in records], type=pa.int64()).cast(_TS),
        **{name: pa.array([r[name] for r in records], type=pa.string()) for name in _TEXT},
        "row": pa.array([r["row"] for r in records], type=pa.int64()),
        "latency_ms": pa.array([r["latency_ms"] for r in records], type=pa.float64()),
    }
    if any(r["status"] is not None for r in records):  # else, as Arrow's reader: none failed
        arrays["status"] = pa.array([r["status"] for r in records], type=pa.int64())
    inputs: list[Mapping[str, Any]] = [r["inputs"] for r in records]
    for name in sorted({k for record in inputs for k in record}):
        values = [record.get(name) for record in inputs]
        arrays[f"inputs.{name}"] = _column_of(values)
    arrays["output.prediction"] = _column_of([r["prediction"] for r in records])
    if any(r["probabilities"] is not None for r in records):
        arrays["output.probabilities"] = pa.array(
            [r["probabilities"] for r in records], type=pa.list_(pa.float64())
        )
    return pa.table(arrays)


def _column_of(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds == {int, float}:
        # Arrow refuses an integer a double cannot hold exactly; a number column is floats.
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if not _mixed(values):
        return pa.array(values)
    # One column has one type: a value some lines sent as text is text in all of
    # them, each other value spelled as its line wrote it (17, 3.5, true).
    values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
    return pa.array(values, type=pa.string())


def _scalar(value: Any) -> Any:
    """A JSON value as one cell: nested values as their JSON text, integers past int64 as
    floats (or text, past any float)."""
    if _is_int(value) and not _INT64_MIN <= value <= _INT64_MAX:
        try:
            return float(value)
        except OverflowError:
            return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value)


def _mixed(values: Sequence[Any]) -> bool:
    kinds = {type(v) for v in values if v is not None}
    return len(kinds - {int, float}) > 0 and len(kinds) > 1


class LogSchemaError(ValueError):
    """A Parquet file whose columns are not typed as the prediction log's."""


def _read(path: Path, scan: WindowScan, columns: list[str] | None = None) -> pa.Table | None:
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path, columns=columns)
            if not _conforming(table, inferred=False):
                raise LogSchemaError("its columns are not the prediction log's")
        else:
            table = _read_jsonl(path, scan)
    except (OSError, pa.ArrowException, ValueError) as exc:
        scan.unreadable(path, exc)
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
            table = pa.Table.from_batches([batch])
            if not _conforming(table, inferred=False):
                raise LogSchemaError("its columns are not the prediction log's")
            yield table.flatten()
    except (OSError, pa.ArrowException, ValueError) as exc:
        scan.unreadable(path, exc)


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
        if name in ("ts", "output.probabilities", "status", "latency_ms", "row"):
            continue
        key = name.replace("inputs.", "input.", 1).replace("output.", "", 1)
        columns[key] = _column(table, name)
    rows = table.num_rows
    for name in ("request_id", "model_version"):
        # Only `ts` makes a record: one without the identifiers is counted under none.
        if name not in columns:
            columns[name] = np.full(rows, None, dtype=object)
    columns["status"] = _numbers(table, "status", pa.int64(), 200)
    columns["row"] = _numbers(table, "row", pa.int64(), 0)  # a request of one row
    columns["latency_ms"] = _numbers(table, "latency_ms", pa.float64(), None)
    return Partition(path, rows, columns, _probabilities(table))


def _numbers(table: pa.Table, name: str, kind: pa.DataType, missing: int | None) -> np.ndarray:
    if name not in table.column_names:
        column = pa.nulls(table.num_rows, type=kind)
    else:
        column = pc.cast(table.column(name), kind)
    if missing is not None:
        column = column.fill_null(missing)
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype="float64" if missing is None else kind.to_pandas_dtype())


def _probabilities(table: pa.Table) -> np.ndarray | None:
    """(rows, classes) with NaN rows for failed requests, which carry no probabilities."""
    if "output.probabilities" not in table.column_names:
        return None
    column = table.column("output.probabilities").combine_chunks()
    if pa.types.is_null(column.type):
        return None
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return None
    # The width most rows have: a line with another number of probabilities cannot be put
    # beside them and has none, as a failed request.
    widths, counts = np.unique(lengths[valid].astype("int64"), return_counts=True)
    width = int(widths[np.argmax(counts)])
    valid &= lengths == width
    present = column.filter(pa.array(valid))
    flat = np.asarray(pc.list_flatten(present).to_numpy(zero_copy_only=False), dtype="float64")
    out = np.full((len(column), width), np.nan)
    out[valid] = flat.reshape(int(valid.sum()), width)
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

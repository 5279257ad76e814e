"""The prediction log: one record per prediction, in rotating files, never blocking a request.

Requests hand entries to a bounded in-memory queue (`submit` never waits); one background
thread serialises and appends them. Entries that carry records (single records, small batches)
become JSON lines in `<dir>/predictions-<start time>-<pid>-<n>.jsonl`. Entries that carry
columns (big batches) become row groups of `<dir>/predictions-<start time>-<pid>-<n>.parquet`:
encoding 10,000 JSON lines would cost the server ~30 ms of GIL time per request, Arrow takes
the numpy columns as they are. Either file type starts anew at `rotate_mb`; a Parquet file is
written as `.parquet.part` and renamed when complete (at `rotate_mb`, after a second without
batches, on flush and on close), so readers only ever see whole files. When the queue is full
the entry is dropped and counted (exported as `mlops_prediction_log_dropped_total`): a slow
disk costs log lines, never latency. Memory is bounded by `max_rows` queued predictions.

JSON line: {"request_id", "row", "ts", "model", "model_version", "run_id", "arm", "endpoint",
            "inputs", "output", "latency_ms"}
A failed prediction request (4xx or 5xx) is one JSON line with `inputs` and `output` null plus
"status" (the HTTP status) and "error" (the message), so the monitor can count the error rate.
Parquet: the same fields as columns; `inputs` and `output` are structs (inputs: one field per
contract column, typed by the contract, as validated), `ts` a UTC timestamp in microseconds.
A request completed from the feature store logs what the model saw: `inputs` is the assembled
record (its entity key, the request-time values and the looked-up and derived features), and
"stale_features" lists the views that were older than their ttl for that row (Parquet: the
entity keys are fields of `inputs`, and `stale_features` a list column).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

DEFAULT_MAX_ROWS = 100_000
_IDLE_S = 1.0  # a Parquet file is completed after this long without new entries
_FLUSH = "flush"  # queue marker: complete the open Parquet file now
_PER_REQUEST = ("request_id", "model", "model_version", "run_id", "arm", "endpoint")
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Entry:
    request_id: str
    ts: float
    model: str
    model_version: str
    run_id: str | None
    arm: str
    endpoint: str
    inputs: Sequence[Any] | None  # the records as received (None: see columns)
    predictions: Sequence[Any] | np.ndarray  # one per record (a batch's labels as an array)
    probabilities: Any  # one list per record or an (n, classes) array; None: regression
    latency_ms: float
    columns: Mapping[str, np.ndarray] | None = None  # validated inputs, one array per column
    status: int = 200  # a failed request: no predictions, one line with its status and error
    error: str | None = None
    stale: Sequence[Sequence[str]] | None = None  # per row: stale views (assembled rows only)

    @property
    def rows(self) -> int:
        return len(self.predictions) or (1 if self.status >= 400 else 0)


class PredictionLog:
    def __init__(
        self,
        directory: Path,
        rotate_mb: float,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        keep_files: int | None = None,
        on_drop: Callable[[int], None] | None = None,
    ):
        self.directory = directory
        self.rotate_bytes = int(rotate_mb * 1024 * 1024)
        self.keep_files = keep_files
        self.max_rows = max_rows
        self.on_drop = on_drop
        self.dropped = 0
        self._queue: queue.SimpleQueue[Entry | str | None] = queue.SimpleQueue()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._handle: BinaryIO | None = None
        self._size = 0
        self._files = 0
        self._stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._idle = threading.Event()
        self._idle.set()
        self._parquet: Any = None  # pyarrow.parquet.ParquetWriter of the open .part file
        self._parquet_path: Path | None = None
        self._pending_flushes = 0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> bool:
        """Queue an entry; False (and counted) when the queue is full."""
        rows = entry.rows
        with self._lock:
            if self._queued_rows + rows > self.max_rows or self._thread is None:
                self.dropped += rows
                full = True
            else:
                self._queued_rows += rows
                full = False
        if full:
            if self.on_drop is not None:
                self.on_drop(rows)
            return False
        self._idle.clear()
        self._queue.put(entry)
        return True

    def put(self, entry: Entry, timeout: float) -> bool:
        """Queue an entry, waiting up to `timeout` s for room rather than dropping it (batch
        scoring, which must log every row it scored); False if none came by then. An entry
        larger than the queue goes in once the queue is empty."""
        deadline = time.monotonic() + timeout
        rows = entry.rows
        while True:
            with self._lock:
                if self._thread is None:
                    return False
                if self._queued_rows == 0 or self._queued_rows + rows <= self.max_rows:
                    self._queued_rows += rows
                    break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        self._idle.clear()
        self._queue.put(entry)
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is in complete files (tests and shutdown)."""
        if self._thread is not None:
            with self._lock:
                self._pending_flushes += 1
            self._idle.clear()
            self._queue.put(_FLUSH)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._queued_rows == 0 and self._pending_flushes == 0 and self._idle.is_set():
                    return True
            time.sleep(0.005)
        return False

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        with contextlib.suppress(ImportError):
            # Imported here, once, rather than on the first big batch (0.2 s of GIL).
            import pyarrow.parquet  # noqa: F401
        while True:
            try:
                entry = self._queue.get(timeout=_IDLE_S)
            except queue.Empty:
                # Quiet for a while: complete the Parquet file so readers can see it.
                self._finish_parquet()
                continue
            batch = [entry]
            # Drain whatever else is waiting so one write and one flush serve many requests.
            while len(batch) < 1024:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            flushes = 0
            lines: list[bytes] = []
            tables: list[Entry] = []
            rows = 0
            for item in batch:
                if item is None:
                    stop = True
                    continue
                if item is _FLUSH:
                    flushes += 1
                    continue
                assert isinstance(item, Entry)
                rows += item.rows
                if item.columns is not None:
                    tables.append(item)
                else:
                    lines.extend(_lines(item))
            try:
                if lines:
                    self._write(lines)
                for run in _runs(tables):
                    self._write_parquet(run)
                if flushes or stop:
                    self._finish_parquet()
            except Exception:  # noqa: BLE001 - a full disk or an odd value must not kill the writer
                # The entries are lost and counted; a half-written Parquet file is abandoned.
                self._abandon_parquet()
                with self._lock:
                    self.dropped += rows
                if self.on_drop is not None:
                    self.on_drop(rows)
            with self._lock:
                self._queued_rows -= rows
                self._pending_flushes -= flushes
                if self._queued_rows == 0 and self._pending_flushes == 0:
                    self._idle.set()
            if stop:
                if self._handle is not None:
                    self._handle.close()
                    self._handle = None
                return

    def _write_parquet(self, entries: list[Entry]) -> None:
        import pyarrow.parquet as pq

        table = _table(entries)
        if self._parquet is not None and not self._parquet.schema.equals(table.schema):
            self._finish_parquet()  # e.g. a new model version with other classes
        if self._parquet is None:
            self._files += 1
            name = f"predictions-{self._stamp}-{os.getpid()}-{self._files:05d}.parquet"
            self._parquet_path = self.directory / (name + ".part")
            # Measured on 10,000 rows x 30 floats: zstd level 1 with dictionaries only for the
            # per-request text takes 15 ms and 1.2 MB (default settings: 32 ms, 1.7 MB).
            self._parquet = pq.ParquetWriter(
                self._parquet_path,
                table.schema,
                compression="zstd",
                compression_level=1,
                use_dictionary=list(_PER_REQUEST),
                write_statistics=["ts", "row", *_PER_REQUEST],
            )
        self._parquet.write_table(table)
        assert self._parquet_path is not None
        if self._parquet_path.stat().st_size >= self.rotate_bytes:
            self._finish_parquet()

    def _abandon_parquet(self) -> None:
        writer, path = self._parquet, self._parquet_path
        self._parquet = self._parquet_path = None
        if writer is not None and path is not None:
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(OSError):
                path.unlink()

    def _finish_parquet(self) -> None:
        if self._parquet is None or self._parquet_path is None:
            return
        writer, path = self._parquet, self._parquet_path
        self._parquet = self._parquet_path = None
        writer.close()
        os.replace(path, path.with_suffix(""))  # drop ".part": the file is complete
        self._prune("*.parquet")

    def _write(self, lines: list[bytes]) -> None:
        """Append lines, starting a new file whenever the current one reaches rotate_mb."""
        start = 0
        while start < len(lines):
            if self._handle is None or self._size >= self.rotate_bytes:
                self._rotate()
            assert self._handle is not None
            room = self.rotate_bytes - self._size
            end = start
            taken = 0
            while end < len(lines) and (taken < room or end == start):
                taken += len(lines[end])
                end += 1
            self._handle.write(b"".join(lines[start:end]))
            self._size += taken
            start = end
        assert self._handle is not None
        self._handle.flush()

    def _rotate(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._files += 1
        name = f"predictions-{self._stamp}-{os.getpid()}-{self._files:05d}.jsonl"
        self._handle = (self.directory / name).open("ab")
        self._size = 0
        self._prune("*.jsonl")

    def _prune(self, pattern: str) -> None:
        """Keep the newest `keep_files` files of each kind, so a busy server cannot fill its
        disk."""
        if self.keep_files is None:
            return
        files = sorted(
            self.directory.glob("predictions-" + pattern), key=lambda p: (p.stat().st_mtime, p.name)
        )
        for old in files[: max(0, len(files) - self.keep_files)]:
            with contextlib.suppress(OSError):  # another server process may have pruned it
                old.unlink()


def _runs(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive entries whose tables share a schema's fields (one table each)."""
    out: list[list[Entry]] = []
    shape: tuple[Any, ...] | None = None
    for entry in entries:
        assert entry.columns is not None
        this = (tuple(entry.columns), entry.stale is not None)
        if not out or this != shape:
            out.append([])
            shape = this
        out[-1].append(entry)
    return out


def _table(entries: list[Entry]) -> Any:
    """One Arrow table of column entries; per-request values repeat without per-row work."""
    import pyarrow as pa

    counts = np.array([e.rows for e in entries], dtype=np.int64)
    total = int(counts.sum())
    request = np.repeat(np.arange(len(entries)), counts)

    def repeated(values: list[Any], kind: Any) -> Any:
        # Dictionary-encoded: each request's value once. Parquet wants nulls in the indices.
        missing = np.array([v is None for v in values])
        indices = pa.array(
            request.astype(np.int32), mask=missing[request] if missing.any() else None
        )
        return pa.DictionaryArray.from_arrays(
            indices, pa.array(["" if v is None else v for v in values], type=kind)
        )

    first = entries[0]
    assert first.columns is not None
    inputs = [
        _arrow_column(np.concatenate([np.asarray(e.columns[name]) for e in entries if e.columns]))
        for name in first.columns
    ]
    labels = np.concatenate([np.asarray(e.predictions) for e in entries])
    output_fields = [pa.array(labels.tolist() if labels.dtype == object else labels)]
    output_names = ["prediction"]
    if first.probabilities is not None:
        proba = np.concatenate([np.asarray(e.probabilities, dtype=np.float64) for e in entries])
        width = proba.shape[1] if proba.ndim == 2 else 1
        output_fields.append(pa.FixedSizeListArray.from_arrays(pa.array(proba.reshape(-1)), width))
        output_names.append("probabilities")
    starts = np.repeat(np.array([e.ts for e in entries]) * 1e6, counts).astype(np.int64)
    row = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    extra: dict[str, Any] = {}
    if first.stale is not None:
        stale = [list(views) for e in entries for views in (e.stale or [[]] * e.rows)]
        extra["stale_features"] = pa.array(stale, type=pa.list_(pa.string()))
    return pa.table(
        {
            "request_id": repeated([e.request_id for e in entries], pa.string()),
            "row": pa.array(row.astype(np.int64)),
            "ts": pa.array(starts, type=pa.timestamp("us", tz="UTC")),
            "model": repeated([e.model for e in entries], pa.string()),
            "model_version": repeated([e.model_version for e in entries], pa.string()),
            "run_id": repeated([e.run_id for e in entries], pa.string()),
            "arm": repeated([e.arm for e in entries], pa.string()),
            "endpoint": repeated([e.endpoint for e in entries], pa.string()),
            "inputs": pa.StructArray.from_arrays(inputs, names=list(first.columns)),
            "output": pa.StructArray.from_arrays(output_fields, names=output_names),
            "latency_ms": pa.array(np.repeat(np.round([e.latency_ms for e in entries], 3), counts)),
            **extra,
        }
    )


def _arrow_column(values: np.ndarray) -> Any:
    """float64 columns as they are (NaN = null); object columns (text, ints, booleans with
    None or NaN for null) through Arrow's type inference."""
    import pyarrow as pa

    if values.dtype == np.float64:
        return pa.array(values, mask=np.isnan(values))
    return pa.array(values, from_pandas=True)


def _lines(entry: Entry) -> list[bytes]:
    ts = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry.ts))
        + f".{int(entry.ts % 1 * 1e6):06d}Z"
    )
    head = {
        "request_id": entry.request_id,
        "row": 0,
        "ts": ts,
        "model": entry.model,
        "model_version": entry.model_version,
        "run_id": entry.run_id,
        "arm": entry.arm,
        "endpoint": entry.endpoint,
        "inputs": None,
        "output": None,
        "latency_ms": round(entry.latency_ms, 3),
    }
    if entry.status >= 400:
        head["status"] = entry.status
        head["error"] = entry.error
        return [orjson.dumps(head, option=_OPTIONS)]
    out = []
    inputs = entry.inputs or []
    probabilities = entry.probabilities
    if probabilities is None:
        probabilities = [None] * len(inputs)
    elif isinstance(probabilities, np.ndarray):
        probabilities = probabilities.tolist()
    rows = zip(inputs, entry.predictions, probabilities, strict=True)
    stale = entry.stale
    for row, (record, prediction, proba) in enumerate(rows):
        head["row"] = row
        head["inputs"] = record
        if stale is not None:
            head["stale_features"] = stale[row]
        head["output"] = (
            {"prediction": prediction}
            if proba is None
            else {"prediction": prediction, "probabilities": proba}
        )
        try:
            out.append(orjson.dumps(head, option=_OPTIONS))
        except TypeError:
            # Something orjson cannot encode (e.g. an int beyond 64 bits): keep the line anyway.
            out.append(json.dumps(head, default=str).encode() + b"\n")
    return out

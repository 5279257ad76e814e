"""The prediction log: one JSON line per prediction, in rotating files, never blocking a request.

Requests hand entries to a bounded in-memory queue (`submit` never waits); one background
thread serialises and appends them to `<dir>/predictions-<start time>-<pid>-<n>.jsonl`, starting
a new file when the current one reaches `rotate_mb`. When the queue is full the entry is dropped
and counted (exported as `mlops_prediction_log_dropped_total`): a slow disk costs log lines,
never latency. Memory is bounded by `max_rows` queued predictions.

Line: {"request_id", "row", "ts", "model", "model_version", "run_id", "arm", "endpoint",
       "inputs", "output", "latency_ms"}
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

DEFAULT_MAX_ROWS = 100_000
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
    inputs: Sequence[Any]  # the records as received
    predictions: Sequence[Any]  # one per record
    probabilities: Sequence[Any] | None  # one list per record (classifiers), else None
    latency_ms: float


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
        self._queue: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._handle: BinaryIO | None = None
        self._size = 0
        self._files = 0
        self._stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, entry: Entry) -> bool:
        """Queue an entry; False (and counted) when the queue is full."""
        rows = len(entry.inputs)
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

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is on disk (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._queued_rows == 0 and self._idle.is_set():
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
        while True:
            entry = self._queue.get()
            batch = [entry]
            # Drain whatever else is waiting so one write and one flush serve many requests.
            while len(batch) < 1024:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            lines: list[bytes] = []
            rows = 0
            for item in batch:
                if item is None:
                    stop = True
                    continue
                rows += len(item.inputs)
                lines.extend(_lines(item))
            try:
                if lines:
                    self._write(lines)
            except OSError:
                # A full or read-only disk must not kill the writer; the lines are lost.
                with self._lock:
                    self.dropped += rows
                if self.on_drop is not None:
                    self.on_drop(rows)
            with self._lock:
                self._queued_rows -= rows
                if self._queued_rows == 0:
                    self._idle.set()
            if stop:
                if self._handle is not None:
                    self._handle.close()
                    self._handle = None
                return

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
        self._prune()

    def _prune(self) -> None:
        """Keep the newest `keep_files` log files, so a busy server cannot fill its disk."""
        if self.keep_files is None:
            return
        files = sorted(
            self.directory.glob("predictions-*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name)
        )
        for old in files[: max(0, len(files) - self.keep_files)]:
            with contextlib.suppress(OSError):  # another server process may have pruned it
                old.unlink()


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
    out = []
    probabilities = entry.probabilities or [None] * len(entry.inputs)
    rows = zip(entry.inputs, entry.predictions, probabilities, strict=True)
    for row, (record, prediction, proba) in enumerate(rows):
        head["row"] = row
        head["inputs"] = record
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

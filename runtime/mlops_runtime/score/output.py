"""Where a score run writes: `<output>.partial/` while it runs, renamed to `<output>/` once
every part is done, so nothing half-written is ever found under the final name.

    <output>/predictions/part-00000.parquet   scored rows of input part 0 (or .csv)
    <output>/rejects/part-00000.parquet       rows that broke the contract, with their faults
    <output>/_parts/00000.json                 what part 0 held: its source and counts
    <output>/_summary.json                     the run: input, model, counts, time

A part's files are written as `*.tmp` and renamed, then its `_parts` record; `--resume`
keeps the records (and files) of an interrupted run's finished parts and scores the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlops_runtime.score.inputs import InputError

FORMATS = ("parquet", "csv")


class Staging:
    def __init__(self, output: Path, fmt: str, *, resume: bool) -> None:
        if fmt not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if output.exists():
            raise InputError(
                f"{output} already exists: a finished run's output is never overwritten; "
                "choose another --output or remove it"
            )
        self.output = output
        self.fmt = fmt
        self.dir = output.with_name(output.name + ".partial")
        if self.dir.exists() and not resume:
            shutil.rmtree(self.dir)  # an earlier run that did not finish: start again
        for sub in ("predictions", "rejects", "_parts"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def finished(self, index: int, source: str) -> Mapping[str, Any] | None:
        """The record of part `index` if an earlier run finished it from the same source."""
        try:
            record: dict[str, Any] = json.loads(self._record(index).read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("source") == source else None

    def part(self, index: int) -> PartWriter:
        return PartWriter(self, index)

    def write_record(self, index: int, record: Mapping[str, Any]) -> None:
        """Part `index` is finished: what it held (its source and counts)."""
        write_text(self._record(index), json.dumps(dict(record)) + "\n")

    def _record(self, index: int) -> Path:
        return self.dir / "_parts" / f"{index:05d}.json"

    def commit(self, summary: Mapping[str, Any]) -> None:
        write_text(self.dir / "_summary.json", json.dumps(summary, indent=2) + "\n")
        os.replace(self.dir, self.output)


class PartWriter:
    """One input part's predictions and rejects, streamed batch by batch."""

    def __init__(self, staging: Staging, index: int) -> None:
        self.staging = staging
        self.index = index
        suffix = "parquet" if staging.fmt == "parquet" else "csv"
        self.paths = {
            kind: staging.dir / kind / f"part-{index:05d}.{suffix}"
            for kind in ("predictions", "rejects")
        }
        self._writers: dict[str, Any] = {}

    def write(self, kind: str, batch: pa.RecordBatch) -> None:
        writer = self._writers.get(kind)
        if writer is None:
            writer = self._writers[kind] = _open(self.paths[kind], batch.schema, self.staging.fmt)
        writer.write_batch(batch)

    def close(self, record: Mapping[str, Any], schemas: Mapping[str, pa.Schema]) -> None:
        """Complete the part: every file renamed into place, then its record."""
        for kind, path in self.paths.items():
            writer = self._writers.pop(kind, None)
            if writer is None:  # no batch of this kind: an empty file, with its columns
                writer = _open(path, schemas[kind], self.staging.fmt)
            writer.close()
            os.replace(_tmp(path), path)
        self.staging.write_record(self.index, record)

    def abandon(self) -> None:
        for kind, writer in self._writers.items():
            writer.close()
            _tmp(self.paths[kind]).unlink(missing_ok=True)
        self._writers.clear()


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _open(path: Path, schema: pa.Schema, fmt: str) -> Any:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(_tmp(path), schema)
    import pyarrow.csv as csv

    return csv.CSVWriter(_tmp(path), schema)


def write_text(path: Path, text: str) -> None:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

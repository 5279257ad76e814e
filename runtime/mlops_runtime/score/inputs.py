"""The rows a score run reads: a CSV or Parquet file, or a folder of such parts, as Arrow
record batches of at most `batch_rows` rows, so memory follows the batch, not the file.

CSV columns of the contract are read as text and cast to the contract's type batch by batch
(`typed`): a value that does not cast is left as its text, and the record check then rejects
that row alone with the same message serving gives, instead of the whole file failing to read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


class InputError(Exception):
    """The input cannot be scored at all: said in one line, nothing is written."""


@dataclass(frozen=True)
class Part:
    path: Path
    name: str  # relative to the input folder (the file's own name for a single file)
    kind: str  # "csv" | "parquet"


def find_parts(path: Path) -> list[Part]:
    """The file, or the folder's data files in name order (Spark's `_SUCCESS` and hidden
    files skipped); an error naming what was looked for when there is none."""
    if path.is_file():
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise InputError(f"{path}: not a CSV or Parquet file (.csv, .parquet, .pq)")
        return [Part(path, path.name, kind)]
    if path.is_dir():
        found = [
            Part(p, p.relative_to(path).as_posix(), FORMATS[p.suffix.lower()])
            for p in sorted(path.rglob("*"))
            if p.is_file()
            and p.suffix.lower() in FORMATS
            and not any(s.startswith(("_", ".")) for s in p.relative_to(path).parts)
        ]
        if not found:
            raise InputError(f"{path}: no .csv, .parquet or .pq file in this folder")
        return found
    raise InputError(f"input not found: {path}")


def column_names(part: Part) -> list[str]:
    """The part's column names, from its header or Parquet footer (no rows are read)."""
    try:
        if part.kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(part.path).schema_arrow.names)
        return _header(part.path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{part.path}: cannot be read: {_first_line(exc)}") from None


def read_batches(
    part: Part, contract: Mapping[str, Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """The part's rows, `batch_rows` at a time."""
    try:
        if part.kind == "parquet":
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(part.path)
            yield from handle.iter_batches(batch_size=batch_rows)
            return
        yield from _csv_batches(part.path, contract, batch_rows)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{part.path}: cannot be read: {_first_line(exc)}") from None


def _csv_batches(
    path: Path, contract: Mapping[str, Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as csv

    columns = contract.get("columns", {})
    # Every column as text first (a key column too, so its type cannot change between
    # blocks): a cast per batch keeps one bad value to one rejected row.
    convert = csv.ConvertOptions(
        column_types=dict.fromkeys(_header(path), pa.string()),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    # About 200 bytes a row: blocks near the batch size, so one block is one batch or two.
    read = csv.ReadOptions(block_size=max(1 << 20, batch_rows * 200))
    with csv.open_csv(path, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                yield typed(batch.slice(start, batch_rows), columns)


def _header(path: Path) -> list[str]:
    import csv as text_csv

    with path.open(newline="", encoding="utf-8") as handle:
        return next(text_csv.reader(handle), [])


def typed(batch: pa.RecordBatch, columns: Mapping[str, Mapping[str, Any]]) -> pa.RecordBatch:
    """Text columns of number and boolean contract columns cast to their type where every
    value casts; a column with any value that does not stays text for the record check."""
    import pyarrow.compute as pc

    arrays = []
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        rule = columns.get(name)
        target = _ARROW_TYPES.get(rule["type"]) if rule is not None else None
        if target is not None and pa.types.is_string(array.type):
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                array = pc.cast(pc.utf8_trim_whitespace(array), target)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

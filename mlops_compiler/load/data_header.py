"""The column names of a data file, read without loading it: the compiler checks that the
columns a spec names exist, while reading data stays the runtime's job."""

from __future__ import annotations

import csv
from pathlib import Path

PARQUET_SUFFIXES = (".parquet", ".pq")


class HeaderError(Exception):
    """The file is missing or unreadable; the message says which."""


def columns_of(path: Path) -> list[str] | None:
    """The file's columns; None when they cannot be known here (Parquet without pyarrow)."""
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            try:
                import pyarrow.parquet as pq  # the runtime's dependency; only for Parquet files
            except ImportError:
                return None
            return list(pq.read_schema(path).names)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except FileNotFoundError:
        raise HeaderError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HeaderError(f"cannot read the columns of {path.name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors: a damaged Parquet footer
        raise HeaderError(f"cannot read the columns of {path.name}: {exc}") from None

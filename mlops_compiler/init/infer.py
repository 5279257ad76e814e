"""Infer a data contract and a task from a CSV or Parquet file, in one streaming pass.

CSV is read with the stdlib so `mlops init` needs no pandas; the reading rules mirror what the
generated project's pandas reader will see (null spellings, blank lines, header names), so
the contract accepts the very file it was inferred from.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from mlops_compiler.errors import UsageError, display_path
from mlops_compiler.spec.estimators import Task

ColumnType = Literal["int", "float", "bool", "category", "str"]
Kind = Literal["int", "float", "bool", "text", "null"]
Number = int | float
Value = str | int | float | bool

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
# pandas.read_csv's default NA spellings: the generated project reads with pandas, so any
# other choice would make a cell null here and a value there (or the other way round).
NULL_TEXTS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
BOOL_WORDS = frozenset({"true", "false"})
CATEGORY_MAX_DISTINCT = 20
CATEGORY_MAX_SHARE = 0.5  # of non-null cells: more distinct than that looks like free text
CLASSIFICATION_MAX_CLASSES = 20  # an int target with more distinct values is a quantity
DISTINCT_CAP = 1000  # past this many distinct values no decision changes; memory stays bounded
NULL_MARGIN = 0.02  # headroom over the observed null fraction so a refresh is not rejected
MIN_ROWS_SHARE = 0.5
MAX_COLUMN_NAME = 200  # the schema's ColumnName limit
INT64 = (-(2**63), 2**63 - 1)

_INT = re.compile(r"\s*[+-]?[0-9]+\s*")
_FLOAT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
_INF = re.compile(r"\s*([+-]?)inf(inity)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class InferredColumn:
    name: str
    type: ColumnType
    nullable: bool = False
    max_null_fraction: float | None = None
    min: Number | None = None
    max: Number | None = None
    values: tuple[Value, ...] | None = None


@dataclass(frozen=True)
class Inferred:
    """Everything `mlops init` learnt from the data, ready to be written as a spec."""

    source: Path
    rows: int
    target: str
    task: Task
    reason: str  # why this task, for a comment in the spec
    columns: tuple[InferredColumn, ...]
    min_rows: int
    stratify: bool | None  # None: keep the default
    warnings: tuple[str, ...]


def parse_number(text: str) -> Number | None:
    """The number pandas would read from a CSV cell, or None when it is not one."""
    if _INT.fullmatch(text):
        value = int(text)
        return value if INT64[0] <= value <= INT64[1] else float(value)
    if _FLOAT.fullmatch(text):
        return float(text)
    inf = _INF.fullmatch(text)
    if inf:
        return -math.inf if inf.group(1) == "-" else math.inf
    return None


class ColumnScan:
    """One column's running summary; only a bounded number of distinct values is kept."""

    def __init__(self, name: str, kind: Kind | None = None) -> None:
        self.name = name
        self.declared = kind  # Parquet knows the type; CSV text is typed by what it parses as
        self.rows = 0
        self.nulls = 0
        self.can_int = self.can_float = self.can_bool = True
        self.saw_bool_word = False
        self.low: Number | None = None
        self.high: Number | None = None
        self.pos_inf = self.neg_inf = False
        self.counts: dict[Value, int] | None = {}

    def add_text(self, cell: str) -> None:
        self.rows += 1
        if cell in NULL_TEXTS:
            self.nulls += 1
            return
        self._count(cell)
        if self.can_bool:
            word = cell.strip().lower()
            if word in BOOL_WORDS:
                self.saw_bool_word = True
            elif word not in {"0", "1"}:
                self.can_bool = False
        if self.can_float:
            number = parse_number(cell)
            if number is None:
                self.can_int = self.can_float = False
            else:
                if isinstance(number, float):
                    self.can_int = False
                self._extremes(number)

    def add_value(self, value: Any) -> None:
        self.rows += 1
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.nulls += 1
            return
        self._count(value)
        if self.declared in ("int", "float") and not isinstance(value, bool):
            self._extremes(value)

    def _count(self, value: Value) -> None:
        if self.counts is None:
            return
        if value in self.counts:
            self.counts[value] += 1
        elif len(self.counts) < DISTINCT_CAP:
            self.counts[value] = 1
        else:
            self.counts = None

    def _extremes(self, number: Number) -> None:
        if math.isinf(number):
            self.pos_inf |= number > 0
            self.neg_inf |= number < 0
            return
        if self.low is None or number < self.low:
            self.low = number
        if self.high is None or number > self.high:
            self.high = number

    @property
    def kind(self) -> Kind:
        if self.rows == self.nulls:
            return "null"
        if self.declared is not None:
            return self.declared
        if self.can_bool and self.saw_bool_word:
            return "bool"
        if self.can_int:
            return "int"
        if self.can_float:
            return "float"
        return "text"

    @property
    def distinct(self) -> int | None:
        return None if self.counts is None else len(self.counts)


@dataclass(frozen=True)
class Scanned:
    columns: list[ColumnScan]
    rows: int
    text_values: bool  # True for CSV: the project reads category cells as text
    warnings: list[str]


def scan(path: Path) -> Scanned:
    if not path.exists():
        raise UsageError(f"{display_path(path)}: no such file")
    if path.is_dir():
        raise UsageError(f"{display_path(path)}: is a folder, not a data file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _scan_csv(path)
    if suffix in PARQUET_SUFFIXES:
        return _scan_parquet(path)
    raise UsageError(f"{display_path(path)}: unsupported file type; use .csv, .parquet or .pq")


def _dedup(names: list[str]) -> list[str]:
    """Header names as pandas makes them: 'Unnamed: i' for blanks, 'a.1' for a repeated 'a'."""
    counts: dict[str, int] = {}
    out: list[str] = []
    for i, raw in enumerate(names):
        name = raw or f"Unnamed: {i}"
        seen = counts.get(name, 0)
        while seen > 0:
            counts[name] = seen + 1
            name = f"{name}.{seen}"
            seen = counts.get(name, 0)
        counts[name] = seen + 1
        out.append(name)
    return out


def _scan_csv(path: Path) -> Scanned:
    shown = display_path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            # pandas skips blank lines everywhere, the header's position included.
            rows = (row for row in reader if row)
            header = next(rows, None)
            if header is None:
                raise UsageError(f"{shown}: the file is empty")
            columns = [ColumnScan(name) for name in _dedup(header)]
            width = len(columns)
            count = 0
            for row in rows:
                if len(row) > width:
                    raise UsageError(
                        f"{shown}: line {reader.line_num} has {len(row)} fields, the header {width}"
                    )
                for column, cell in zip(columns, row, strict=False):
                    column.add_text(cell)
                for column in columns[len(row) :]:  # pandas fills short rows with nulls
                    column.add_text("")
                count += 1
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise UsageError(f"{shown}: not readable as CSV: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    if count == 0:
        raise UsageError(f"{shown}: no data rows below the header")
    return Scanned(columns, count, text_values=True, warnings=[])


def _arrow_kind(arrow_type: Any) -> Kind | None:
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if types.is_null(arrow_type):
        return "null"
    if types.is_boolean(arrow_type):
        return "bool"
    if types.is_integer(arrow_type):
        return "int"
    if types.is_floating(arrow_type):
        return "float"
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        return "text"
    return None


def _scan_parquet(path: Path) -> Scanned:
    shown = display_path(path)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{shown}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"{shown}: not a readable Parquet file: {exc}") from None
    # pandas turns its stored index back into an index, so it is not a column to contract.
    index = {
        name
        for name in (schema.pandas_metadata or {}).get("index_columns", [])
        if isinstance(name, str)
    }
    warnings: list[str] = []
    columns: list[ColumnScan] = []
    seen: set[str] = set()
    for field in schema:
        if field.name in index:
            continue
        if field.name in seen:
            raise UsageError(f"{shown}: column {field.name!r} appears twice")
        seen.add(field.name)
        kind = _arrow_kind(field.type)
        if kind is None:
            warnings.append(
                f"column {field.name!r} ({field.type}) left out of the contract: no contract "
                "type fits it, and extra columns are ignored by default"
            )
            continue
        columns.append(ColumnScan(field.name, None if kind == "null" else kind))
    if not columns:
        raise UsageError(f"{shown}: no columns the contract can describe")
    try:
        rows = _feed(columns, parquet.iter_batches(columns=[c.name for c in columns]))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{shown}: not a readable Parquet file: {exc}") from None
    if rows == 0:
        raise UsageError(f"{shown}: no data rows")
    return Scanned(columns, rows, text_values=False, warnings=warnings)


def _feed(columns: list[ColumnScan], batches: Iterable[Any]) -> int:
    rows = 0
    for batch in batches:
        for column, array in zip(columns, batch.columns, strict=True):
            for value in array.to_pylist():
                column.add_value(value)
        rows += batch.num_rows
    return rows


def null_allowance(nulls: int, rows: int) -> float:
    """The observed null fraction plus a margin, rounded up to two decimals, at most 1."""
    fraction = nulls / rows + NULL_MARGIN
    return min(1.0, math.ceil(round(fraction * 100, 9)) / 100)


def _sorted_values(values: Iterable[Value], numeric_text: bool) -> tuple[Value, ...]:
    if numeric_text:  # '2' before '10': the text compares as the number it spells
        return tuple(sorted(values, key=lambda v: (float(str(v)), str(v))))
    return tuple(sorted(values, key=lambda v: (type(v).__name__, v)))


def _bounds(scan: ColumnScan) -> tuple[Number | None, Number | None]:
    # An infinite cell would fail any finite bound, and the schema cannot hold infinity.
    return (None if scan.neg_inf else scan.low), (None if scan.pos_inf else scan.high)


def _infer_task(target: ColumnScan) -> tuple[Task, str]:
    kind, distinct = target.kind, target.distinct
    name = repr(target.name)
    if kind == "float":
        return "regression", f"{name} holds non-integral numbers"
    if kind == "int":
        if distinct is not None and distinct <= CLASSIFICATION_MAX_CLASSES:
            return "classification", f"{name} holds {distinct} distinct integers"
        many = f"{distinct}" if distinct is not None else f"more than {DISTINCT_CAP}"
        return "regression", f"{name} holds {many} distinct integers"
    if kind == "bool":
        return "classification", f"{name} is true/false"
    return "classification", f"{name} holds text labels"


def _column(scan: ColumnScan, rows: int) -> InferredColumn:
    nullable = scan.nulls > 0
    fraction = null_allowance(scan.nulls, rows) if nullable else None
    kind = scan.kind
    if kind in ("int", "float"):
        low, high = _bounds(scan)
        return InferredColumn(scan.name, kind, nullable, fraction, min=low, max=high)
    if kind == "bool":
        return InferredColumn(scan.name, "bool", nullable, fraction)
    if kind == "null":
        # pandas reads an all-empty column as float; the numeric pipeline copes with it.
        return InferredColumn(scan.name, "float", nullable, fraction)
    counts = scan.counts
    present = rows - scan.nulls
    if (
        counts is not None
        and len(counts) <= CATEGORY_MAX_DISTINCT
        and len(counts) <= CATEGORY_MAX_SHARE * present
    ):
        values = _sorted_values(counts, numeric_text=False)
        return InferredColumn(scan.name, "category", nullable, fraction, values=values)
    return InferredColumn(scan.name, "str", nullable, fraction)


def _target_column(
    scan: ColumnScan, task: Task, rows: int, *, text_values: bool
) -> tuple[InferredColumn, list[str]]:
    warnings: list[str] = []
    if scan.nulls:
        # The schema forbids a nullable target: unlabeled rows cannot be fitted or scored.
        warnings.append(
            f"target {scan.name!r} is empty in {scan.nulls} of {rows} rows; the contract "
            "requires a label in every row, so remove those rows before training"
        )
    kind = scan.kind
    if task == "regression" or kind == "bool":
        rule = replace(_column(scan, rows), nullable=False, max_null_fraction=None)
        return rule, warnings
    if kind == "int" and not text_values:
        # Parquet integers reach the project as numbers, which a category contract rejects.
        low, high = _bounds(scan)
        return InferredColumn(scan.name, "int", min=low, max=high), warnings
    if scan.counts is None:
        warnings.append(
            f"target {scan.name!r} has more than {DISTINCT_CAP} distinct labels; "
            "is it really the column to predict?"
        )
        return InferredColumn(scan.name, "str"), warnings
    # CSV cells reach the project as text, so the allowed labels are the text as written.
    values = _sorted_values(scan.counts, numeric_text=kind == "int")
    if len(values) < 2:
        warnings.append(f"target {scan.name!r} has a single label; a classifier needs two")
    return InferredColumn(scan.name, "category", values=values), warnings


def _suggestion(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(repr(n) for n in names[:10])
    return f"; columns: {shown}{', ...' if len(names) > 10 else ''}"


def _usable(columns: list[ColumnScan], warnings: list[str]) -> Iterator[ColumnScan]:
    for column in columns:
        if len(column.name) > MAX_COLUMN_NAME:
            warnings.append(
                f"column {column.name[:40]!r}... left out of the contract: names are limited "
                f"to {MAX_COLUMN_NAME} characters, and extra columns are ignored by default"
            )
            continue
        yield column


def infer(path: Path, target: str) -> Inferred:
    """Scan `path` and decide every column's rule, the task and the split."""
    scanned = scan(path)
    shown = display_path(path)
    warnings = list(scanned.warnings)
    columns = list(_usable(scanned.columns, warnings))
    names = [c.name for c in columns]
    if target not in names:
        if target in {c.name for c in scanned.columns}:
            raise UsageError(f"{shown}: target {target!r} cannot be described by the contract")
        raise UsageError(f"{shown}: target {target!r} is not a column{_suggestion(target, names)}")
    target_scan = columns[names.index(target)]
    if target_scan.kind == "null":
        raise UsageError(f"{shown}: target {target!r} is empty in every row")
    if len(columns) < 2:
        raise UsageError(f"{shown}: the target is the only column; there is nothing to learn from")
    task, reason = _infer_task(target_scan)
    rows = scanned.rows
    inferred: list[InferredColumn] = []
    for column in columns:
        if column is target_scan:
            rule, found = _target_column(column, task, rows, text_values=scanned.text_values)
            warnings.extend(found)
        else:
            rule = _column(column, rows)
            if column.kind == "null":
                warnings.append(
                    f"column {column.name!r} is empty in every row; consider dropping it"
                )
        inferred.append(rule)
    stratify: bool | None = None
    counts = target_scan.counts
    label = inferred[names.index(target)]
    if label.type == "category" and counts and min(counts.values()) < 2:
        # A stratified split needs two rows of every class; with fewer it cannot split at all.
        stratify = False
    return Inferred(
        source=path,
        rows=rows,
        target=target,
        task=task,
        reason=reason,
        columns=tuple(inferred),
        min_rows=max(1, math.floor(rows * MIN_ROWS_SHARE)),
        stratify=stratify,
        warnings=tuple(warnings),
    )

"""A request's rows as they arrived, before any check: what every protocol decodes a body into.

Records stay the client's own objects and columns stay the decoded lists or arrays, so the
record checks can pick the per-record or the column-wise path without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A column of a request: the JSON values as parsed, or a 1-D array (binary tensors).
Column = Sequence[Any] | np.ndarray


@dataclass
class Rows:
    """A request's rows as they arrived: a list of records, or columns of equal length."""

    count: int
    records: list[Any] | None = None
    columns: dict[str, Column] | None = None

    def first(self) -> Any:
        """The first record (the A/B sticky key is read from it)."""
        if self.records is not None:
            return self.records[0] if self.records else None
        if not self.count or self.columns is None:
            return None
        return {name: _python(column[0]) for name, column in self.columns.items()}

    def as_records(self) -> list[Any]:
        if self.records is not None:
            return self.records
        return columns_to_records(self.columns or {})

    def record(self, i: int) -> Any:
        if self.records is not None:
            return self.records[i]
        return {name: _python(column[i]) for name, column in (self.columns or {}).items()}


def rows_to_columns(names: list[str], data: list[list[Any]]) -> Rows:
    """Rows of values (lists in `names` order) as columns; a repeated name keeps its last."""
    if not data:
        return Rows(0, records=[])
    if not names:  # rows without fields: columns could not carry their count
        return Rows(len(data), records=[{} for _ in data])
    return Rows(len(data), columns=dict(zip(names, zip(*data, strict=True), strict=True)))


def columns_to_records(columns: Mapping[str, Column]) -> list[dict[str, Any]]:
    names = list(columns)
    lists = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def _python(value: Any) -> Any:
    """A binary tensor element as the JSON value a client would have sent."""
    return value.item() if isinstance(value, np.generic) else value

"""An Arrow record batch as the serving door's rows: each column as the array or list the
door's column checks read fastest, nulls as None."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pyarrow as pa

from mlops_runtime.serve.rows import Column, Rows


def door_rows(batch: pa.RecordBatch, names: Collection[str] | None = None) -> Rows:
    """The batch's columns, or only `names` of them (the door reads its own columns alone,
    unless it refuses extra ones)."""
    columns: dict[str, Column] = {}
    for name, array in zip(batch.schema.names, batch.columns, strict=True):
        if names is None or name in names:
            columns[name] = _column(array)
    return Rows(batch.num_rows, columns=columns)


def _column(array: pa.Array) -> Column:
    kind = array.type
    if array.null_count == 0 and pa.types.is_floating(kind):
        # Zero copy; the door certifies a whole float column with numpy.
        values: np.ndarray[Any, Any] = array.to_numpy(zero_copy_only=False)
        return values
    if array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        listed: list[Any] = array.to_numpy(zero_copy_only=False).tolist()
        return listed
    values_as_python: list[Any] = array.to_pylist()
    return values_as_python

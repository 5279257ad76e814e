"""The named transforms of derived features: the one piece of code that computes them.

The offline path (a view's source before materialisation, a training set after its
point-in-time join) calls `derive` on a frame; the online path (a request after its lookup)
calls `derive_records` on the request's rows. Both reduce their columns to float64 arrays and
run the same element-wise `compute`, so a row's online value equals its offline value bit for
bit, and a one-row request costs microseconds, not a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400.0
INTEGER_OUTPUTS = frozenset({"bucketize"})


Floats = np.ndarray[Any, np.dtype[np.float64]]


def _floats(values: Any) -> Floats:
    if not isinstance(values, pd.Series):
        try:
            return np.asarray(values, dtype="float64")
        except (TypeError, ValueError):
            values = pd.Series(values, dtype="object")
    numbers: Floats = pd.to_numeric(values, errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    return numbers


def _epoch_seconds(values: Any) -> Floats:
    """Timestamps (datetimes or ISO text; naive ones are UTC) as float seconds since 1970."""
    stamps = pd.to_datetime(
        pd.Series(values, dtype="object"), utc=True, errors="coerce", format="ISO8601"
    )
    nanos: Floats = stamps.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
    nanos[stamps.isna().to_numpy()] = np.nan
    return nanos / 1e9


def compute(
    definition: Mapping[str, Any], inputs: Sequence[Floats], as_of_s: Floats | None
) -> Floats:
    """One derived feature as float64 (NaN for null), from its inputs as float64 arrays
    (days_since: epoch seconds) and each row's event time in epoch seconds."""
    kind = definition["transform"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "ratio":
            a, b = inputs
            out: Floats = np.where(b == 0, np.nan, a / b)
        elif kind == "difference":
            out = inputs[0] - inputs[1]
        elif kind == "log1p":
            out = np.where(inputs[0] <= -1, np.nan, np.log1p(inputs[0]))
        elif kind == "bucketize":
            edges = np.asarray(definition["boundaries"], dtype="float64")
            index = np.searchsorted(edges, inputs[0], side="right").astype("float64")
            out = np.where(np.isnan(inputs[0]), np.nan, index)
        elif kind == "days_since":
            if as_of_s is None:
                raise ValueError("days_since needs the rows' event times")
            out = (as_of_s - inputs[0]) / SECONDS_PER_DAY
        else:
            raise ValueError(f"unknown transform {kind!r}")
    return out


def _inputs(definition: Mapping[str, Any], column: Any) -> list[Floats]:
    convert = _epoch_seconds if definition["transform"] == "days_since" else _floats
    return [convert(column(name)) for name in definition["inputs"]]


def derive(
    frame: pd.DataFrame,
    definitions: Mapping[str, Mapping[str, Any]],
    as_of: pd.Series | None = None,
) -> pd.DataFrame:
    """`frame` with each derived feature added, in the given order (inputs first); `as_of`
    holds each row's event time, which days_since counts from."""
    out = frame.copy()
    as_of_s = None if as_of is None else _epoch_seconds(as_of.to_numpy())
    for name, definition in definitions.items():
        values = compute(definition, _inputs(definition, lambda c: out[c]), as_of_s)
        if definition["transform"] in INTEGER_OUTPUTS:
            out[name] = pd.array(np.nan_to_num(values).astype("int64"), dtype="Int64")
            out.loc[np.isnan(values), name] = pd.NA
        else:
            out[name] = values
    return out


def derive_records(
    records: Sequence[dict[str, Any]],
    definitions: Mapping[str, Mapping[str, Any]],
    as_of: datetime,
) -> None:
    """Add each derived feature to every record, in place, as of `as_of`: the online path."""
    as_of_s = np.full(len(records), as_of.timestamp())
    for name, definition in definitions.items():
        values = compute(
            definition, _inputs(definition, lambda c: [r.get(c) for r in records]), as_of_s
        )
        whole = definition["transform"] in INTEGER_OUTPUTS
        for record, value in zip(records, values.tolist(), strict=True):
            record[name] = None if value != value else (int(value) if whole else value)

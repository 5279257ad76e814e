"""The named transforms of derived features: the one piece of code that computes them.

The offline path (a view's source before materialisation, the training set after its
point-in-time join) and the online path (a request after its lookup) both call `derive`, on
frames of any length: every transform is element-wise, so a row's value does not depend on the
rows beside it, and the online value of a row equals its offline value bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400.0


def _number(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _timestamps(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, errors="coerce")


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out[b == 0] = np.nan
    return out


def _log1p(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log1p(a)
    out[a <= -1] = np.nan
    return out


def _bucketize(a: np.ndarray, boundaries: list[float]) -> pd.Series:
    index = np.searchsorted(np.asarray(boundaries, dtype="float64"), a, side="right")
    return pd.Series(index, dtype="Int64").mask(np.isnan(a))


def _days_since(moment: pd.Series, as_of: pd.Series) -> np.ndarray:
    seconds = (as_of.reset_index(drop=True) - _timestamps(moment).reset_index(drop=True)).dt
    return seconds.total_seconds().to_numpy(dtype="float64", na_value=np.nan) / SECONDS_PER_DAY


def apply_one(
    frame: pd.DataFrame, definition: Mapping[str, Any], as_of: pd.Series | None
) -> pd.Series:
    """One derived feature's values for every row of `frame`, in its row order."""
    kind = definition["transform"]
    inputs = [frame[name] for name in definition["inputs"]]
    values: Any
    if kind == "ratio":
        values = _ratio(_number(inputs[0]), _number(inputs[1]))
    elif kind == "difference":
        values = _number(inputs[0]) - _number(inputs[1])
    elif kind == "log1p":
        values = _log1p(_number(inputs[0]))
    elif kind == "bucketize":
        values = _bucketize(_number(inputs[0]), list(definition["boundaries"]))
    elif kind == "days_since":
        if as_of is None:
            raise ValueError("days_since needs the rows' event times")
        values = _days_since(inputs[0], _timestamps(as_of))
    else:
        raise ValueError(f"unknown transform {kind!r}")
    return pd.Series(values, index=frame.index, name=None)


def derive(
    frame: pd.DataFrame,
    definitions: Mapping[str, Mapping[str, Any]],
    as_of: pd.Series | None = None,
) -> pd.DataFrame:
    """`frame` with each derived feature added, in the given order (inputs first); `as_of` is
    each row's event time, which days_since counts from."""
    out = frame.copy()
    for name, definition in definitions.items():
        out[name] = apply_one(out, definition, as_of)
    return out

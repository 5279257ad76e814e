"""How a value of each contract type is read: one cell (`coerce_value`, the serving door's
per-record path) or a whole column (`coerce_series`, `coerce_frame`, the batch path), with the
same verdicts, so a value is accepted or rejected the same way in both. Part of the contract's
rules; `data` reads files with it and the contract's checks type with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime.contract.rules import contract_category_text, is_null

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
STRINGLIKE = ("category", "str", "bool")

# Target pandas dtype per contract type; nullable extension types keep ints ints despite nulls.
PANDAS_DTYPES: dict[str, Any] = {
    "int": pd.Int64Dtype(),
    "float": np.dtype("float64"),
    "bool": pd.BooleanDtype(),
    "category": pd.StringDtype(),
    "str": pd.StringDtype(),
}


def coerce_value(value: Any, kind: str) -> tuple[bool, Any]:
    """(ok, typed value) for one cell; None means null. Same rules as `coerce_series`."""
    if is_null(value):
        return True, None
    if kind == "str":
        return (True, value) if isinstance(value, str) else (False, None)
    if kind == "category":
        text = contract_category_text(value)
        return (False, None) if text is None else (True, text)
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return True, bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE or text in _FALSE:
                return True, text in _TRUE
            return False, None
        number = _as_number(value)
        if number is not None and number in (0, 1):
            return True, bool(number)
        return False, None
    if isinstance(value, (bool, np.bool_)):
        return False, None  # True is not the number 1 in a contract
    number = _as_number(value)
    if number is None:
        return False, None
    if isinstance(number, float) and math.isnan(number):
        return True, None
    if kind == "float":
        try:
            return True, float(number)
        except OverflowError:  # an int too large for a double
            return False, None
    if kind == "int":
        if isinstance(number, int):
            return (True, number) if INT64_MIN <= number <= INT64_MAX else (False, None)
        if math.isfinite(number) and number.is_integer() and INT64_MIN <= number <= INT64_MAX:
            return True, int(number)
        return False, None
    raise ValueError(f"unknown contract type {kind!r}")


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None


def coerce_series(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """(typed series, boolean mask of cells whose value does not fit `kind`)."""
    dtype = PANDAS_DTYPES[kind]
    if _is_numeric(series):
        return _coerce_numeric(series, kind)
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return _coerce_distinct(series, kind)
    # Mixed objects: decide once per distinct value (few in practice), then broadcast.
    decided: dict[Any, tuple[bool, Any]] = {}

    def decide(value: Any) -> tuple[bool, Any]:
        key = _key(value)
        try:
            return decided[key]
        except KeyError:
            decided[key] = verdict = coerce_value(value, kind)
            return verdict
        except TypeError:  # unhashable (a list inside a JSON record): never a valid cell
            return coerce_value(value, kind)

    verdicts = [decide(v) for v in series.to_numpy(dtype=object)]
    bad = pd.Series([not ok for ok, _ in verdicts], index=series.index, dtype=bool)
    values = [None if not ok else v for ok, v in verdicts]
    return pd.Series(pd.array(values, dtype=dtype), index=series.index, name=series.name), bad


def _coerce_distinct(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """Factorize, decide once per distinct value, then broadcast.

    Only for cells all of one type (str or null, or one numeric dtype): factorize's equality
    would merge 1, True and "1" in mixed objects, which keep the per-cell path above.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    verdicts = [coerce_value(value, kind) for value in uniques]
    ok = np.array([verdict[0] for verdict in verdicts] + [True], dtype=bool)
    table = pd.array(
        [v if good else None for good, v in verdicts] + [None], dtype=PANDAS_DTYPES[kind]
    )
    index = np.where(codes < 0, len(verdicts), codes)
    typed = pd.Series(table.take(index), index=series.index, name=series.name)
    return typed, pd.Series(~ok[index], index=series.index, dtype=bool)


def _key(value: Any) -> Any:
    # NaN != NaN, so nulls share one key; the type keeps 1 and True and "1" apart, and the sign
    # -0.0 and 0.0, which are different categories ("-0.0", "0.0").
    if is_null(value):
        return ("null",)
    if type(value) is float:
        return (float, value, math.copysign(1.0, value))
    return (type(value), value)


def _is_numeric(series: pd.Series) -> bool:
    return bool(
        pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)
    )


def _coerce_numeric(series: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    dtype = PANDAS_DTYPES[kind]
    null = series.isna().to_numpy(dtype=bool)
    is_bool = pd.api.types.is_bool_dtype(series.dtype)
    if kind == "category":
        return _category_codes(series)
    if kind == "str" or (is_bool and kind in ("int", "float")):
        bad = ~null
        typed = pd.Series(pd.array([None] * len(series), dtype=dtype), index=series.index)
        return typed.rename(series.name), pd.Series(bad, index=series.index)
    numbers = series.to_numpy(dtype="float64", na_value=np.nan)
    if kind == "float":
        return pd.Series(numbers, index=series.index, name=series.name), pd.Series(
            False, index=series.index
        )
    if kind == "bool":
        ok = null | (numbers == 0) | (numbers == 1)
    elif pd.api.types.is_unsigned_integer_dtype(series.dtype):
        ok = null | (series.to_numpy(dtype="uint64", na_value=0) <= np.uint64(INT64_MAX))
    elif pd.api.types.is_integer_dtype(series.dtype):
        ok = np.ones(len(series), dtype=bool)
    else:  # int from float: only finite integral values within int64
        with np.errstate(invalid="ignore"):
            in_range = (numbers >= -(2.0**63)) & (numbers < 2.0**63)
            ok = null | (np.isfinite(numbers) & (np.mod(numbers, 1) == 0) & in_range)
    keep = ok & ~null
    if kind == "bool":
        typed = pd.array(np.where(keep, numbers == 1, False), dtype=dtype)
        typed[~keep] = pd.NA
    elif pd.api.types.is_signed_integer_dtype(series.dtype):
        typed = pd.array(series.to_numpy(), dtype=dtype)
    elif pd.api.types.is_unsigned_integer_dtype(series.dtype):
        raw = series.to_numpy(dtype="uint64", na_value=0)
        typed = pd.array(np.where(keep, raw, 0).astype("int64"), dtype=dtype)
        typed[~keep] = pd.NA
    else:
        typed = pd.array(np.where(keep, numbers, 0).astype("int64"), dtype=dtype)
        typed[~keep] = pd.NA
    return pd.Series(typed, index=series.index, name=series.name), pd.Series(
        ~ok, index=series.index
    )


def _category_codes(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers in a category column (an int column of codes): each distinct number read once
    as text, as `coerce_value` reads it; booleans are not categories."""
    typed, bad = _coerce_distinct(series, "category")
    if pd.api.types.is_float_dtype(series.dtype):
        # factorize merges -0.0 and 0.0, which read as different text.
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        zeros = numbers == 0
        if zeros.any():
            texts = np.where(np.signbit(numbers[zeros]), repr(-0.0), repr(0.0))
            typed[zeros] = pd.array(texts, dtype=PANDAS_DTYPES["category"])
    return typed, bad


def coerce_frame(
    frame: pd.DataFrame, contract: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Type every contract column present; returns the frame and per-column masks of bad cells.

    Bad cells become null in the typed frame; the caller reports them as `dtype` failures.
    Columns outside the contract pass through untouched.
    """
    typed = frame.copy()
    bad: dict[str, pd.Series] = {}
    for name, rule in contract.get("columns", {}).items():
        if name not in typed.columns:
            continue
        typed[name], mask = coerce_series(typed[name], rule["type"])
        if mask.any():
            bad[name] = mask
    return typed, bad

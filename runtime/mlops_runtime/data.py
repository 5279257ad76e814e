"""Load the training table and give its columns the types the contract declares.

A training file that does not exist is not bad data but a wrong path: `require_data` raises
`DataNotFound`, which the stages report as a usage error (exit 2), naming the path and where it
came from. Reading never raises past this module for bad input: an unreadable, empty or
truncated file becomes a `ContractViolation` with a report, like any other contract failure. Type
coercion (`contract.coercion`) is shared by the batch path (whole files) and the per-record path
(the serving door), so a value is accepted or rejected the same way in both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_runtime.contract.coercion import STRINGLIKE
from mlops_runtime.contract.report import (
    ContractViolation,
    build_contract_report,
    failure,
    write_report,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)


def resolve_data_path(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    """The env var named by `path_env` wins over `path` so CI and schedulers can point elsewhere."""
    env = os.environ if environ is None else environ
    data = config["data"]
    name = data.get("path_env")
    override = env.get(name) if name else None
    return Path(override or data["path"])


class DataNotFound(Exception):
    """The training data file does not exist (a wrong path or a file not fetched yet)."""

    def __init__(self, path: Path, origin: str):
        self.path = path
        self.origin = origin
        super().__init__(f"training data not found: {path} ({origin})")


def require_data(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Path:
    """The training data path (`resolve_data_path`); raises DataNotFound when no file is there."""
    env = os.environ if environ is None else environ
    path = resolve_data_path(config, env)
    if path.exists():
        return path
    name = config["data"].get("path_env")
    if name and env.get(name):
        origin = f"set by ${name}"
    else:
        origin = "data.train of the spec" + (f"; ${name} overrides it" if name else "")
    raise DataNotFound(path.absolute(), origin)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_table(path: Path, contract: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Raw read; string-like contract columns are read as text so '007' stays '007'."""
    suffix = path.suffix.lower()
    columns = (contract or {}).get("columns", {})
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path, columns)
    if suffix in CSV_SUFFIXES:
        text_columns = {name: str for name, rule in columns.items() if rule["type"] in STRINGLIKE}
        return pd.read_csv(path, dtype=text_columns or None)
    raise ValueError(f"unsupported file type {suffix!r}: use .csv, .parquet or .pq")


def _read_parquet(path: Path, columns: Mapping[str, Any]) -> pd.DataFrame:
    """pandas turns an int column with nulls into floats, so a category of codes (1, null, 2)
    would read as "1.0" and "2.0": such columns are read again as Python ints and nulls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_parquet(path)
    codes = [
        field.name
        for field in pq.read_schema(path)
        if pa.types.is_integer(field.type)
        and columns.get(field.name, {}).get("type") == "category"
        and field.name in frame.columns
        and pd.api.types.is_float_dtype(frame[field.name].dtype)
    ]
    if codes:
        exact = pq.read_table(path, columns=codes).to_pandas(integer_object_nulls=True)
        for name in codes:
            frame[name] = exact[name].to_numpy(dtype=object)
    return frame


def load_table(
    path: Path,
    contract: Mapping[str, Any] | None = None,
    report_path: Path | None = None,
) -> pd.DataFrame:
    """Read `path`; any failure to obtain at least one row is reported as a contract failure."""
    problem: str | None = None
    frame: pd.DataFrame | None = None
    try:
        frame = read_table(path, contract)
    except FileNotFoundError:
        problem = f"file not found: {path}"
    except Exception as exc:  # noqa: BLE001 - any reader error means the same: unusable input
        problem = f"cannot read {path.name}: {type(exc).__name__}: {exc}".strip()
    if frame is not None and len(frame) == 0:
        problem = f"{path.name} has no data rows"
    if problem is not None:
        check = "readable" if frame is None else "empty"
        report = build_contract_report(
            source=str(path),
            rows=None if frame is None else 0,
            columns=[] if frame is None else [str(c) for c in frame.columns],
            failures=[failure(check, None, problem)],
        )
        raise ContractViolation(report, write_report(report, report_path))
    assert frame is not None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def records_to_frame(
    records: Iterable[Mapping[str, Any]], contract: Mapping[str, Any]
) -> pd.DataFrame:
    """Raw object frame from JSON-like records, column order as in the contract then extras."""
    rows = list(records)
    order = [c for c in contract.get("columns", {}) if any(c in r for r in rows)]
    extras = sorted({k for r in rows for k in r} - set(order))
    columns = order + extras
    data = {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns}
    return pd.DataFrame(data, columns=columns)


def split_positions(
    frame: pd.DataFrame, config: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the train and test splits: deterministic (seeded), stratified on the
    target for classification if asked. Positions let callers split several aligned views of
    the same rows (typed frame, model features, labels) without copying each twice."""
    from sklearn.model_selection import train_test_split

    split = config["data"].get("split", {})
    target = config["data"]["target"]
    stratify = None
    if split.get("stratify", False) and config["model"]["task"] == "classification":
        # Class codes in sorted label order stratify exactly as the labels themselves would,
        # without building a million label strings first.
        stratify, _ = pd.factorize(frame[target], sort=True)
    train, test = train_test_split(
        np.arange(len(frame)),
        test_size=split.get("test_size", 0.2),
        random_state=split.get("seed", 0),
        stratify=stratify,
    )
    return np.asarray(train), np.asarray(test)


def split_frame(
    frame: pd.DataFrame, config: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test rows of `frame`, as `split_positions` chooses them."""
    train, test = split_positions(frame, config)
    return frame.take(train), frame.take(test)


def dropna_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """Rows without a label cannot be fitted or scored; returns (kept rows, number dropped)."""
    mask = frame[target].isna().to_numpy()
    dropped = int(mask.sum())
    # Without missing labels the frame is returned as is: a boolean take would copy every column.
    return (frame.loc[~mask] if dropped else frame), dropped


def columns_of(contract: Mapping[str, Any]) -> Sequence[str]:
    return list(contract.get("columns", {}))

"""The data-contract gate: one pandera schema built from CONTRACT, plus a per-record twin.

`validate_frame` checks a whole table (training, monitoring batches) and collects every failure
at once; `check_record` applies the same per-row rules to one JSON-like record in microseconds
for the serving door (it lives in `record_check`). Both report failures under the same check names:

    missing_column, extra_column, dtype, not_nullable, min, max, values     (per row)
    unique, max_null_fraction, min_rows                                      (table only)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

with warnings.catch_warnings():
    # pandera loads its PySpark integration whenever pyspark is installed (the runtime's spark
    # extra), and pyspark.pandas warns about the pandas version on import; the gate never
    # uses it, so the warning would only reach every stage's stderr.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

from mlops_runtime.contract.coercion import PANDAS_DTYPES, coerce_frame
from mlops_runtime.contract.record_check import check_record
from mlops_runtime.contract.report import (
    MAX_EXAMPLE_ROWS,
    MAX_EXAMPLES,
    ContractViolation,
    build_contract_report,
    failure,
    write_report,
)
from mlops_runtime.contract.rules import (
    ROW_CHECKS,
    TABLE_CHECKS,
    bounds,
    forbids_extra_columns,
    is_nullable,
    min_rows,
)

_PANDERA_NAMES = {
    "column_in_dataframe": "missing_column",
    "column_in_schema": "extra_column",
    "field_uniqueness": "unique",
    "not_nullable": "not_nullable",
}


def _column_checks(rule: Mapping[str, Any], table_level: bool) -> list[pa.Check]:
    checks = [
        pa.Check(lambda s, bound=bound, holds=holds: holds(s, bound), name=check)
        for check, bound, holds in bounds(rule)
    ]
    if rule.get("values") is not None:
        # Category columns are typed as text by now (codes read as text), as are their values.
        allowed = list(rule["values"])
        checks.append(pa.Check(lambda s, allowed=allowed: s.isin(allowed), name="values"))
    fraction = rule.get("max_null_fraction")
    if table_level and is_nullable(rule) and fraction is not None:
        checks.append(
            pa.Check(
                lambda s, fraction=fraction: bool(s.isna().mean() <= fraction) if len(s) else True,
                name="max_null_fraction",
                ignore_na=False,
            )
        )
    return checks


def build_schema(contract: Mapping[str, Any], *, table_level: bool = True) -> pa.DataFrameSchema:
    """`table_level=False` leaves out the rules that need more than one row."""
    columns = {
        name: pa.Column(
            PANDAS_DTYPES[rule["type"]],
            nullable=is_nullable(rule),
            unique=bool(rule.get("unique", False)) and table_level,
            checks=_column_checks(rule, table_level),
            required=True,
        )
        for name, rule in contract.get("columns", {}).items()
    }
    frame_checks = []
    needed = min_rows(contract)
    if table_level and needed:
        frame_checks.append(pa.Check(lambda df, n=needed: len(df) >= n, name="min_rows"))
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        strict=forbids_extra_columns(contract),
        coerce=False,  # coercion is ours (contract.coercion) so records and files agree
    )


def _pandera_failures(
    cases: pd.DataFrame,
    bad_cells: Mapping[str, pd.Series],
    frame: pd.DataFrame,
    contract: Mapping[str, Any],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rows = len(frame)
    cases = cases.copy()
    cases["name"] = [
        _PANDERA_NAMES.get(str(c), "dtype" if str(c).startswith("dtype(") else str(c))
        for c in cases["check"]
    ]
    # Missing/extra columns name the column in failure_case, not in column.
    for name in ("missing_column", "extra_column"):
        for col in cases.loc[cases["name"] == name, "failure_case"]:
            text = (
                "required by the contract but absent"
                if name == "missing_column"
                else "not in the contract"
            )
            out.append(failure(name, str(col), f"column {col!r} is {text}"))
    cases = cases[~cases["name"].isin(["missing_column", "extra_column"])]
    for (column, name), group in cases.groupby(["column", "name"], dropna=False, sort=True):
        column = None if pd.isna(column) else str(column)
        if name == "not_nullable" and column is not None and column in bad_cells:
            # Cells nulled by a failed type coercion are already reported as dtype failures.
            bad_index = set(bad_cells[column][bad_cells[column]].index)
            group = group[~group["index"].isin(bad_index)]
            if group.empty:
                continue
        rule = contract.get("columns", {}).get(column, {}) if column else {}
        if name == "min_rows":
            out.append(
                failure(name, None, f"{rows} rows, contract needs >= {min_rows(contract)}", count=1)
            )
        elif name == "max_null_fraction":
            share = float(frame[column].isna().mean())
            message = f"null fraction {share:.4f} > {rule.get('max_null_fraction')}"
            out.append(failure(name, column, message, count=int(frame[column].isna().sum())))
        else:
            examples = [
                {"row": idx, "value": val}
                for idx, val in zip(group["index"], group["failure_case"], strict=True)
            ]
            out.append(
                failure(name, column, _message(name, rule), count=len(group), examples=examples)
            )
    return out


def _message(check: str, rule: Mapping[str, Any]) -> str:
    return {
        "not_nullable": "null values in a non-nullable column",
        "min": f"values below min {rule.get('min')}",
        "max": f"values above max {rule.get('max')}",
        "values": f"values outside the allowed set {rule.get('values')}",
        "unique": "duplicate values in a unique column",
        "dtype": f"values that are not {rule.get('type')}",
    }.get(check, check)


def validate_frame(
    frame: pd.DataFrame,
    contract: Mapping[str, Any],
    *,
    source: str = "<frame>",
    report_path: Path | None = None,
    table_level: bool = True,
    write: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return (typed frame, report); raise `ContractViolation` if anything fails.

    The report is written to `reports/contract_report.json` under the cwd (or `report_path`)
    whether the data passes or not, so a run can log it either way.
    """
    typed, bad_cells = coerce_frame(frame, contract)
    failures = [
        failure(
            "dtype",
            column,
            _message("dtype", contract["columns"][column]),
            count=int(mask.sum()),
            examples=[
                {"row": idx, "value": frame.at[idx, column]}
                for idx in mask[mask].index[:MAX_EXAMPLES]
            ],
        )
        for column, mask in bad_cells.items()
    ]
    try:
        # typed is our own coerced copy, and coercion is off: no need for pandera to copy it.
        build_schema(contract, table_level=table_level).validate(typed, lazy=True, inplace=True)
    except SchemaErrors as errors:
        failures.extend(_pandera_failures(errors.failure_cases, bad_cells, typed, contract))
    example_index: list[Any] = []
    for item in failures:
        for example in item["examples"]:
            if example.get("row") is not None and example["row"] not in example_index:
                example_index.append(example["row"])
    example_rows = [
        {"row": idx, **frame.loc[idx].to_dict()}
        for idx in example_index[:MAX_EXAMPLE_ROWS]
        if idx in frame.index
    ]
    report = build_contract_report(
        source=source,
        rows=len(frame),
        columns=list(frame.columns),
        failures=failures,
        example_rows=example_rows,
    )
    path = write_report(report, report_path) if write else None
    if failures:
        raise ContractViolation(report, path)
    return typed, report


__all__ = ["ROW_CHECKS", "TABLE_CHECKS", "build_schema", "check_record", "validate_frame"]

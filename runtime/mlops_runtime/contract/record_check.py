"""The per-record twin of the contract gate, for the serving door.

It applies the gate's per-row rules (missing_column, extra_column, dtype, not_nullable, min,
max, values) to one JSON-like record in microseconds. It lives apart from `contract_gate` so
that serving never imports pandera: a level-0 project serves without it. The rules themselves
(null, bounds, how a value of each type is read) come from `contract.rules` via `contract.coercion.coerce_value`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from mlops_runtime.contract.coercion import coerce_value
from mlops_runtime.contract.rules import (
    BOUNDS,
    NUMERIC_TYPES,
    forbids_extra_columns,
    is_null,
    is_nullable,
)

_BOUND_WORDS = {"min": "below min", "max": "above max"}


def check_record(
    record: Mapping[str, Any], contract: Mapping[str, Any], *, ignore: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Per-row rules for one record; an empty list means the record is valid.

    `ignore` names contract columns to skip (the target, absent from serving requests); they
    are not reported as extra either. Each error: {"column", "check", "value", "message"}.
    """
    errors: list[dict[str, Any]] = []
    columns: Mapping[str, Any] = contract.get("columns", {})
    for name, rule in columns.items():
        if name in ignore:
            continue
        if name not in record:
            errors.append(
                _error(name, "missing_column", None, "required by the contract but absent")
            )
            continue
        _check_value(name, record[name], rule, errors)
    if forbids_extra_columns(contract):
        for name in record:
            if name not in columns and name not in ignore:
                errors.append(_error(name, "extra_column", record[name], "not in the contract"))
    return errors


def _check_value(
    name: str, raw: Any, rule: Mapping[str, Any], errors: list[dict[str, Any]]
) -> None:
    """Append the faults of one value to `errors` (appending saves a list per column)."""
    if is_null(raw):
        if not is_nullable(rule):
            errors.append(_error(name, "not_nullable", None, "null in a non-nullable column"))
        return
    ok, value = coerce_value(raw, rule["type"])
    if not ok:
        errors.append(_error(name, "dtype", raw, f"not a valid {rule['type']}"))
        return
    if value is None:  # text such as "nan" that parses to a null
        if not is_nullable(rule):
            errors.append(_error(name, "not_nullable", raw, "null in a non-nullable column"))
        return
    if rule["type"] in NUMERIC_TYPES:
        # `rules.bounds` spelled out: building its tuple per value would double this check.
        for check, holds in BOUNDS.items():
            bound = rule.get(check)
            if bound is not None and not holds(value, bound):
                errors.append(_error(name, check, raw, f"{_BOUND_WORDS[check]} {bound}"))
    allowed = rule.get("values")
    if allowed is not None and value not in allowed:
        errors.append(_error(name, "values", raw, f"not one of {list(allowed)}"))


def _error(column: str, check: str, value: Any, message: str) -> dict[str, Any]:
    return {"column": column, "check": check, "value": value, "message": message}

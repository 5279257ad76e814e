"""The per-record twin of the contract gate, for the serving door.

It applies the gate's per-row rules (missing_column, extra_column, dtype, not_nullable, min,
max, values) to one JSON-like record in microseconds. It lives apart from `contract_gate` so
that serving never imports pandera: a level-0 project serves without it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from mlops_runtime.data import coerce_value, is_null


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
        raw = record[name]
        if is_null(raw):
            if not rule.get("nullable", False):
                errors.append(_error(name, "not_nullable", None, "null in a non-nullable column"))
            continue
        ok, value = coerce_value(raw, rule["type"])
        if not ok:
            errors.append(_error(name, "dtype", raw, f"not a valid {rule['type']}"))
            continue
        if value is None:  # text such as "nan" that parses to a null
            if not rule.get("nullable", False):
                errors.append(_error(name, "not_nullable", raw, "null in a non-nullable column"))
            continue
        if rule["type"] in ("int", "float"):
            if rule.get("min") is not None and not value >= rule["min"]:
                errors.append(_error(name, "min", raw, f"below min {rule['min']}"))
            if rule.get("max") is not None and not value <= rule["max"]:
                errors.append(_error(name, "max", raw, f"above max {rule['max']}"))
        allowed = rule.get("values")
        if allowed is not None and value not in allowed:
            errors.append(_error(name, "values", raw, f"not one of {list(allowed)}"))
    if contract.get("extra_columns", "ignore") == "forbid":
        for name in record:
            if name not in columns and name not in ignore:
                errors.append(_error(name, "extra_column", record[name], "not in the contract"))
    return errors


def _error(column: str, check: str, value: Any, message: str) -> dict[str, Any]:
    return {"column": column, "check": check, "value": value, "message": message}

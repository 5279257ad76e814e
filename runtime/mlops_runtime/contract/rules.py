"""The contract's rules, defined once: column fields with their defaults, and how a value of
each contract type is read. Every checker (training gate, per-record check, the serving door's
fast and column paths, the OpenAPI request schema) takes its rules from here.

contract.json holds only what the spec set; `normalize_contract` fills in the defaults, so a
checker never guesses a missing field.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

TYPES = ("int", "float", "bool", "category", "str")
NUMERIC_TYPES = ("int", "float")
CONTRACT_DEFAULTS: dict[str, Any] = {"min_rows": 1, "extra_columns": "ignore"}
COLUMN_DEFAULTS: dict[str, Any] = {
    "nullable": False,
    "min": None,
    "max": None,
    "values": None,
    "unique": False,
}


def normalize_column(rule: Mapping[str, Any]) -> dict[str, Any]:
    if rule.get("type") not in TYPES:
        raise ValueError(f"unknown contract type {rule.get('type')!r}; expected one of {TYPES}")
    out = {**COLUMN_DEFAULTS, **rule}
    if out.get("max_null_fraction") is None:
        # A nullable column without a bound may be all nulls; a non-nullable one none.
        out["max_null_fraction"] = 1.0 if out["nullable"] else 0.0
    return out


def normalize_contract(contract: Mapping[str, Any]) -> dict[str, Any]:
    """contract.json as written (defaults left out) -> every field present."""
    out = {**CONTRACT_DEFAULTS, **contract}
    out["columns"] = {
        str(name): normalize_column(rule) for name, rule in contract.get("columns", {}).items()
    }
    return out


def category_text(value: Any) -> str | None:
    """A category value as the contract lists it, or None when it cannot be one.

    Categories are compared as text, as a CSV cell holds them. Clients and data files of codes
    send numbers (`values: [0, 1, 2]`: JSON `2`, an INT64 tensor, a Parquet int column), so a
    number is read as the text Python writes for it: 2 -> "2", 2.5 -> "2.5". Booleans are not
    categories, nor are NaN and infinities.
    """
    if isinstance(value, str):
        return value
    # numpy's integer and floating scalars register as numbers.Integral / numbers.Real; its
    # bool_ registers as neither. (No numpy import here: the serving stage must set its thread
    # settings before numpy loads.)
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and math.isfinite(value):
        return repr(float(value))
    return None

"""The contract's rules, defined once: column fields with their defaults, what counts as null,
what min and max mean, and how a value of each contract type is read. Every checker (training
gate, per-record check, the serving door's fast and column paths, the OpenAPI request schema)
takes its rules from here.

contract.json holds only what the spec set; `normalize_contract` fills in the defaults, so a
checker never guesses a missing field.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

TYPES = ("int", "float", "bool", "category", "str")
NUMERIC_TYPES = ("int", "float")
TEXT_TYPES = ("category", "str")
CONTRACT_DEFAULTS: dict[str, Any] = {"min_rows": 1, "extra_columns": "ignore"}
COLUMN_DEFAULTS: dict[str, Any] = {
    "nullable": False,
    "min": None,
    "max": None,
    "values": None,
    "unique": False,
}

# The names every checker reports a failure under.
ROW_CHECKS = ("missing_column", "extra_column", "dtype", "not_nullable", "min", "max", "values")
TABLE_CHECKS = ("unique", "max_null_fraction", "min_rows")

# A value's JSON type per contract type, as a client that sends canonical values uses it. The
# door also reads some other spellings (numeric text, 0/1 for booleans, numbers for categories).
JSON_TYPES: dict[str, str] = {
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "category": "string",
    "str": "string",
}

# Bounds are inclusive: a number passes `min` when `value >= min`. Written as operators so the
# same comparison applies to one number (per-record check) and to a whole column (pandas, numpy).
BOUNDS: dict[str, Callable[[Any, Any], Any]] = {"min": operator.ge, "max": operator.le}


def normalize_column(rule: Mapping[str, Any]) -> dict[str, Any]:
    if rule.get("type") not in TYPES:
        raise ValueError(f"unknown contract type {rule.get('type')!r}; expected one of {TYPES}")
    out = {**COLUMN_DEFAULTS, **rule}
    if out.get("max_null_fraction") is None:
        # A nullable column without a bound may be all nulls; a non-nullable one none.
        out["max_null_fraction"] = 1.0 if out["nullable"] else 0.0
    if out["type"] == "category" and out["values"] is not None:
        out["values"] = _category_values(out["values"])
    return out


def normalize_contract(contract: Mapping[str, Any]) -> dict[str, Any]:
    """contract.json as written (defaults left out) -> every field present."""
    out = {**CONTRACT_DEFAULTS, **contract}
    out["columns"] = {
        str(name): normalize_column(rule) for name, rule in contract.get("columns", {}).items()
    }
    return out


def forbids_extra_columns(contract: Mapping[str, Any]) -> bool:
    return bool(contract.get("extra_columns", CONTRACT_DEFAULTS["extra_columns"]) == "forbid")


def min_rows(contract: Mapping[str, Any]) -> int:
    return int(contract.get("min_rows", CONTRACT_DEFAULTS["min_rows"]) or 0)


def is_nullable(rule: Mapping[str, Any]) -> bool:
    return bool(rule.get("nullable", COLUMN_DEFAULTS["nullable"]))


def _category_values(values: Iterable[Any]) -> list[str]:
    # The compiler writes category values as text; a hand-written contract.json may list codes.
    out = []
    for value in values:
        text = contract_category_text(value)
        if text is None:
            raise ValueError(f"category value {value!r} is neither text nor a number")
        out.append(text)
    return out


def is_null(value: Any) -> bool:
    """None, a NaN (Python or numpy float), or pandas' NA and NaT."""
    if value is None:
        return True
    cls = type(value)
    if cls is str or cls is int or cls is bool:  # the common cases, before the slower checks
        return False
    if cls is float:
        return math.isnan(value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(value)  # numpy's floating scalars
    # pandas' sentinels exist only once pandas is loaded; importing it here would load numpy
    # before the serving stage sets its thread settings.
    pandas = sys.modules.get("pandas")
    return pandas is not None and (value is pandas.NA or value is pandas.NaT)


def bounds(rule: Mapping[str, Any]) -> tuple[tuple[str, Any, Callable[[Any, Any], Any]], ...]:
    """(check, bound, comparison that must hold) for each bound a number column sets."""
    if rule["type"] not in NUMERIC_TYPES:
        return ()
    return tuple(
        (check, rule[check], holds)
        for check, holds in BOUNDS.items()
        if rule.get(check) is not None
    )


def contract_category_text(value: Any) -> str | None:
    """A category value as the contract lists it, or None when it cannot be one.

    Categories are compared as text, as a CSV cell holds them. Clients and data files of codes
    send numbers (`values: [0, 1, 2]`: JSON `2`, an INT64 tensor, a Parquet int column), so a
    number is read as the text Python writes for it: 2 -> "2", 2.5 -> "2.5". Booleans are not
    categories, nor are NaN and infinities. (A sketch keys every value, booleans included:
    `sketches.sketch_key`.)
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


def category_number(text: str) -> int | float | None:
    """The JSON number `contract_category_text` reads as `text` ("2" -> 2, "2.5" -> 2.5), if
    any."""
    try:
        whole = int(text)
    except ValueError:
        pass
    else:
        return whole if str(whole) == text else None  # "007", " 2" and "1_0" are text only
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and repr(number) == text else None


def category_readings(values: Iterable[str]) -> dict[type, dict[Any, str]]:
    """Every value that reads as one of `values`, by exact type, for lookups on the hot path.

    {str: {"2": "2"}, int: {2: "2"}, float: {2.5: "2.5"}}: one dict per type because a single
    dict would merge 2, 2.0 and True, which read as "2", "2.0" and nothing. Zero floats are left
    out, as -0.0 and 0.0 share a dict key but read as different text; they take the slow path.
    """
    readings: dict[type, dict[Any, str]] = {str: {}, int: {}, float: {}}
    for text in values:
        readings[str][text] = text
        number = category_number(text)
        if type(number) is int or (type(number) is float and number != 0):
            readings[type(number)][number] = text
    return readings

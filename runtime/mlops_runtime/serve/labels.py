"""What a prediction is on the wire: a value of the type the contract gives the target.

A model predicts what it was trained on, and training reads a `category` column as text
(`values: [0, 1]` is stored as "0" and "1", as a CSV cell holds them). A client asked for the
target's own values, so every protocol, the prediction log and the OpenAPI document answer in
the target's type:

    contract type of the target                    a prediction is
    category whose every listed value is a number  that number (1, not "1"; 2.5 for "2.5")
    category otherwise, str                        text
    int                                            an integer
    float (and every regression)                   a number
    bool                                           a boolean

A category without listed values stays text: nothing says its classes are numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from mlops_runtime.contract.rules import category_number

Kind = Literal["integer", "number", "boolean", "string"]
_BY_TYPE: dict[str, Kind] = {"int": "integer", "float": "number", "bool": "boolean"}


def _target_rule(config: Mapping[str, Any], contract: Mapping[str, Any]) -> Mapping[str, Any]:
    target = config["data"]["target"]
    rule: Mapping[str, Any] = contract.get("columns", {}).get(target) or {}
    return rule


def _listed_numbers(rule: Mapping[str, Any]) -> list[int | float] | None:
    """The listed values of a category as numbers, when every one of them reads as one."""
    values = rule.get("values")
    if rule.get("type") != "category" or not values:
        return None
    numbers = [category_number(str(v)) for v in values]
    if any(n is None for n in numbers):
        return None
    return [n for n in numbers if n is not None]


def label_kind(config: Mapping[str, Any], contract: Mapping[str, Any]) -> Kind:
    """The JSON type of one prediction."""
    if config["model"]["task"] == "regression":
        return "number"
    rule = _target_rule(config, contract)
    kind = _BY_TYPE.get(str(rule.get("type")))
    if kind is not None:
        return kind
    numbers = _listed_numbers(rule)
    if numbers is None:
        return "string"
    return "integer" if all(type(n) is int for n in numbers) else "number"


def label_schema(config: Mapping[str, Any], contract: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema of one prediction (with the listed values of a category as its enum)."""
    kind = label_kind(config, contract)
    schema: dict[str, Any] = {"type": kind}
    rule = _target_rule(config, contract)
    values = rule.get("values")
    if config["model"]["task"] != "regression" and values:
        if kind == "string":
            schema["enum"] = [str(v) for v in values]
        elif rule.get("type") == "category":
            schema["enum"] = _listed_numbers(rule)
    return schema


def _read(value: Any, kind: Kind) -> Any:
    """One class as it is answered; None when it cannot be read as `kind`."""
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind == "string":
        return value if isinstance(value, str) else None
    number = category_number(value) if isinstance(value, str) else value
    if kind == "integer":
        if isinstance(number, float) and number.is_integer():
            return int(number)
        return number if isinstance(number, int) else None
    return number if isinstance(number, (int, float)) else None


def answers(classes: Sequence[Any] | np.ndarray | None, kind: Kind) -> np.ndarray | None:
    """The model's classes as the server answers them, in the model's class order; None when
    they are answered as they are (or cannot all be read as `kind`: then nothing is changed,
    so a prediction is never half one type and half another)."""
    if classes is None:
        return None
    read = [_read(c, kind) for c in classes]
    if any(r is None for r in read):
        return None
    if kind == "string" or all(
        type(r) is type(c.item() if isinstance(c, np.generic) else c)
        for r, c in zip(read, classes, strict=True)
    ):
        return None  # already what the client gets
    dtype = {"integer": np.int64, "number": np.float64, "boolean": np.bool_}[kind]
    if kind == "number" and not all(type(r) is float for r in read):
        return _objects(read)  # mixed codes (0 and 2.5) keep their JSON form: 0 stays 0
    try:
        return np.asarray(read, dtype=dtype)
    except OverflowError:  # a code beyond int64
        return _objects(read)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out

"""One contract, many checkers: every checker derived from `contract/rules.py` reaches the same
verdict on the same record.

A contract is drawn (columns of every type, bounds, nullability, allowed values, categories of
text and of numeric codes), then records that are valid or carry exactly one kind of violation.
Each record goes through the per-record check, the pandera training gate (one-row frames, table
rules off), the serving door's fast path, slow path, full record path and column path (JSON
columns and binary-tensor arrays), and the OpenAPI request schema; all must say what the record
was built to be: valid, or invalid in that one column and check.

The OpenAPI schema gives only valid/invalid, and only for what JSON Schema can express. Where
it cannot, the record is left out of that comparison (and `test_json_schema_exceptions` pins
each exception down):
- lenient spellings the door reads: numeric text ("3") for numbers, 0/1 and "yes" for booleans,
  an integral float (3.0) for an int column;
- a category number is read by its text, so 2.0 is the category "2.0", not "2"; JSON Schema's
  enum compares numbers by value and holds 2 == 2.0 (no such value is drawn);
- non-finite numbers: JSON carries none, and the door refuses them where the contract does not
  (a serving check, "not a finite number"); none are drawn here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mlops_runtime.contract.record_check import check_record
from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.contract.rules import category_number, contract_category_text, normalize_contract
from mlops_runtime.contract.training_gate import validate_frame
from mlops_runtime.data import records_to_frame
from mlops_runtime.serve.mlflow_invocations import invocation_rows
from mlops_runtime.serve.openapi import record_schema
from mlops_runtime.serve.record_validation import Batch, ContractRejection, Door
from mlops_runtime.serve.rows import Rows

TARGET = "target"
EXTRA = "zz_extra"
Fault = tuple[str, str]  # (column, check)

# Category texts that look like numbers but are not what Python writes for one: only the text
# itself is that category ("007" is not 7).
CATEGORY_TEXTS = ["a", "b", "Dream", "x y", "007", "é"]
CODE_NUMBERS = [-3, 0, 1, 2, 5, 17, 0.5, 2.5, 10.25]
WRONG_TYPES: dict[str, list[Any]] = {
    "int": ["x", True, [1], {"a": 1}, 1.5],
    "float": ["x", False, [1.0]],
    "bool": ["maybe", 2, 0.5, [True]],
    "category": [True, False, [1]],
    "codes": [True, [2], {"a": 1}],
    "str": [5, 2.5, True, ["a"]],
}


@dataclass
class Column:
    name: str
    kind: str  # a contract type, or "codes": a category of numeric values
    rule: dict[str, Any]


@dataclass
class Case:
    record: dict[str, Any]
    expected: set[Fault]
    canonical: bool  # every value in the JSON type the OpenAPI schema names


@st.composite
def columns(draw: st.DrawFn) -> list[Column]:
    out: list[Column] = []
    for kind in ("int", "float", "bool", "category", "codes", "str"):
        for i in range(draw(st.integers(1, 2))):
            out.append(Column(f"{kind}_{i}", kind, draw(rules(kind))))
    return out


@st.composite
def rules(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"type": "category" if kind == "codes" else kind}
    if draw(st.booleans()):
        rule["nullable"] = True
    if kind in ("int", "float"):
        step = 1 if kind == "int" else 0.25  # exact in binary: no rounding at the bounds
        low = draw(st.none() | st.integers(-40, 40).map(lambda k: k * step))
        if low is not None:
            rule["min"] = low
        if draw(st.booleans()):
            rule["max"] = (low if low is not None else 0) + draw(st.integers(0, 40)) * step
    elif kind == "codes":
        numbers = draw(st.lists(st.sampled_from(CODE_NUMBERS), min_size=1, max_size=4, unique=True))
        rule["values"] = [contract_category_text(n) for n in numbers]
    elif kind in ("category", "str") and draw(st.booleans()):
        rule["values"] = draw(
            st.lists(st.sampled_from(CATEGORY_TEXTS), min_size=1, max_size=3, unique=True)
        )
    return rule


def _listed_number(rule: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from([category_number(t) for t in rule["values"]])


def valid_value(column: Column, *, canonical: bool) -> st.SearchStrategy[Any]:
    """A value the column accepts: in its JSON type, or (not canonical) a lenient spelling."""
    rule, kind = column.rule, column.kind
    if kind in ("int", "float"):
        step = 1 if kind == "int" else 0.25
        low = rule.get("min", -1000 * step)
        high = rule.get("max", low + 1000 * step)
        number = st.integers(0, round((high - low) / step)).map(lambda k: low + k * step)
        if kind == "float":
            number = number | st.floats(low, high, allow_nan=False)
        if canonical:
            return number
        # Numeric text, and for an int column an integral float: read as the number.
        return number.map(str) | (number.map(float) if kind == "int" else number.map(repr))
    if kind == "bool":
        return st.booleans() if canonical else st.sampled_from(["yes", "no", "True", 0, 1])
    if kind == "codes":
        texts = st.sampled_from(rule["values"])
        return texts | _listed_number(rule)  # a code is canonical as text and as number
    if rule.get("values") is not None:
        return st.sampled_from(rule["values"])
    if kind == "category":
        return st.text(max_size=4) | st.integers(-5, 5)  # no list: any text, any number
    return st.text(max_size=4)


@st.composite
def valid_record(draw: st.DrawFn, cols: list[Column]) -> tuple[dict[str, Any], bool]:
    canonical = draw(st.integers(0, 3)) > 0
    record: dict[str, Any] = {}
    for column in cols:
        if column.rule.get("nullable") and draw(st.integers(0, 4)) == 0:
            record[column.name] = None
        elif canonical or draw(st.booleans()):
            record[column.name] = draw(valid_value(column, canonical=True))
        else:
            record[column.name] = draw(valid_value(column, canonical=False))
    return record, canonical


def violations(cols: list[Column], forbid_extra: bool) -> list[str]:
    """The kinds of violation this contract can carry."""
    kinds = ["valid", "missing", "wrong_type"]
    if forbid_extra:
        kinds.append("extra")
    if any(not c.rule.get("nullable") for c in cols):
        kinds.append("null")
    if any("min" in c.rule for c in cols):
        kinds.append("below_min")
    if any("max" in c.rule for c in cols):
        kinds.append("above_max")
    if any(c.kind in ("category", "str") and c.rule.get("values") for c in cols):
        kinds.append("outside_set")
    return [*kinds, "code_valid", "code_invalid"]  # every contract has a codes column


@st.composite
def cases(draw: st.DrawFn, cols: list[Column], forbid_extra: bool) -> Case:
    record, canonical = draw(valid_record(cols))
    kind = draw(st.sampled_from(violations(cols, forbid_extra)))
    event(kind)  # --hypothesis-show-statistics shows how often each kind was drawn

    def pick(fits: Any) -> Column:
        return draw(st.sampled_from([c for c in cols if fits(c)]))

    if kind == "valid":
        return Case(record, set(), canonical)
    if kind == "extra":
        record[EXTRA] = draw(st.integers(0, 3) | st.text(max_size=3))
        return Case(record, {(EXTRA, "extra_column")}, canonical)
    if kind in ("code_valid", "code_invalid"):
        column = pick(lambda c: c.kind == "codes")
        if kind == "code_valid":
            record[column.name] = draw(_listed_number(column.rule))
            return Case(record, set(), canonical)
        record[column.name] = draw(unlisted_number(column.rule))
        return Case(record, {(column.name, "values")}, canonical)
    if kind == "missing":
        column = pick(lambda c: True)
        del record[column.name]
        return Case(record, {(column.name, "missing_column")}, canonical)
    if kind == "wrong_type":
        column = pick(lambda c: True)
        record[column.name] = draw(st.sampled_from(WRONG_TYPES[column.kind]))
        return Case(record, {(column.name, "dtype")}, canonical)
    if kind == "null":
        column = pick(lambda c: not c.rule.get("nullable"))
        record[column.name] = None
        return Case(record, {(column.name, "not_nullable")}, canonical)
    if kind in ("below_min", "above_max"):
        check = "min" if kind == "below_min" else "max"
        column = pick(lambda c: check in c.rule)
        step = 1 if column.kind == "int" else 0.25
        distance = draw(st.integers(1, 20)) * step
        bound = column.rule[check]
        record[column.name] = bound - distance if check == "min" else bound + distance
        return Case(record, {(column.name, check)}, canonical)
    assert kind == "outside_set"
    column = pick(lambda c: c.kind in ("category", "str") and c.rule.get("values"))
    text = draw(st.text(max_size=4).filter(lambda t: t not in column.rule["values"]))
    record[column.name] = text
    return Case(record, {(column.name, "values")}, canonical)


def unlisted_number(rule: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A code whose text is not listed, and whose value is no listed number (so JSON Schema's
    enum, which compares by value, rejects it too)."""
    listed = {category_number(t) for t in rule["values"]}
    numbers = st.integers(-50, 50) | st.integers(-50, 50).map(lambda k: k + 0.75)
    return numbers.filter(lambda n: n not in listed)


# -- the checkers ---------------------------------------------------------------------------


def faults_of(errors: list[dict[str, Any]]) -> set[Fault]:
    return {(e["column"], e["check"]) for e in errors}


def gate_faults(frame: pd.DataFrame, contract: dict[str, Any]) -> tuple[set[Fault], Any]:
    try:
        typed, _ = validate_frame(frame, contract, table_level=False, write=False)
    except ContractViolation as violation:
        return {(f["column"], f["check"]) for f in violation.report["failures"]}, None
    return set(), typed


def door_outcome(call: Any) -> tuple[set[Fault], Batch | None, list[dict[str, Any]]]:
    try:
        batch = call()
    except ContractRejection as rejection:
        return faults_of(rejection.errors), None, rejection.errors
    return set(), batch, []


def as_tensors(record: dict[str, Any], contract: dict[str, Any]) -> dict[str, Any]:
    """The record's columns as a binary V2 request would bring them, where a value has a
    tensor type: int -> INT64, float -> FP64, bool -> BOOL, text -> BYTES."""
    columns: dict[str, Any] = {}
    for name, value in record.items():
        dtype = {int: np.int64, float: np.float64, bool: np.bool_, str: object}.get(type(value))
        columns[name] = [value] if dtype is None else np.array([value], dtype=dtype)
    return columns


def same_batch(a: Batch, b: Batch) -> None:
    assert np.array_equal(a.numeric, b.numeric, equal_nan=True)
    for x, y in zip(a.categorical.ravel().tolist(), b.categorical.ravel().tolist(), strict=True):
        assert (x == y and type(x) is type(y)) or (pd.isna(x) and pd.isna(y))
    assert a.other.tolist() == b.other.tolist()


def model_sees_typed_values(batch: Batch, door: Door, typed: pd.DataFrame) -> None:
    """What the door hands the model is what the training gate typed: codes become text."""
    for col in door.columns:
        want = typed[col.name].iloc[0]
        if col.feature == "numeric":
            got = batch.numeric[0, col.slot]
            assert (pd.isna(want) and math.isnan(got)) or got == float(want)
        elif col.feature == "categorical":
            got = batch.categorical[0, col.slot]
            assert (pd.isna(want) and pd.isna(got)) or (type(got) is str and got == want)
        else:
            got = batch.other[0, col.slot]
            assert (pd.isna(want) and got is None) or got == want


@dataclass
class Setup:
    contract: dict[str, Any]
    door: Door
    schema: Draft202012Validator


def build(cols: list[Column], forbid_extra: bool, features: list[str]) -> Setup:
    contract = normalize_contract(
        {
            "extra_columns": "forbid" if forbid_extra else "ignore",
            "columns": {TARGET: {"type": "int"}, **{c.name: c.rule for c in cols}},
        }
    )
    config = {"data": {"target": TARGET}, "serving": {"unknown_categories": "reject"}}
    numeric = [c.name for c in cols if c.kind in ("int", "float") and c.name in features]
    categorical = [
        c.name for c in cols if c.kind in ("category", "codes", "str") and c.name in features
    ]
    door = Door(config, contract, numeric, categorical)
    return Setup(contract, door, Draft202012Validator(record_schema(config, contract)))


def check_case(setup: Setup, case: Case) -> None:
    contract, door, record, expected = setup.contract, setup.door, case.record, case.expected
    # (a) the per-record check
    assert faults_of(check_record(record, contract, ignore={TARGET})) == expected
    # (b) the training gate on one row (the target present, as in a training file): object
    # columns take the per-value coercion, inferred dtypes (int64 codes...) the vectorised one.
    row = {**record, TARGET: 0}
    assert gate_faults(records_to_frame([row], contract), contract)[0] == expected
    inferred, typed = gate_faults(pd.DataFrame([row]), contract)
    assert inferred == expected
    # (c, d) the door's fast path certifies only valid records, and every canonical one; the
    # slow path reports what check_record reports.
    numeric, categorical, other = door._matrices(1)
    fast = door._fast(record, numeric[0], categorical[0], other[0])
    assert not (fast and expected)
    if case.canonical and not expected:
        assert fast, "a canonical valid record must take the fast path"
    slow_rows = door._matrices(1)
    slow = door._slow(record, slow_rows[0][0], slow_rows[1][0], slow_rows[2][0])
    assert faults_of(slow) == expected
    # (e) the record path, and the column path on records, JSON columns and tensors
    got, batch, errors = door_outcome(lambda: door.validate([record]))
    assert got == expected
    for rows in (
        Rows(1, records=[record]),
        Rows(1, columns={k: [v] for k, v in record.items()}),
        Rows(1, columns=as_tensors(record, contract)),
    ):
        by_column, column_batch, column_errors = door_outcome(
            lambda r=rows: door.validate_columns(r)
        )
        assert by_column == expected
        assert column_errors == errors
        if batch is not None:
            assert column_batch is not None
            same_batch(column_batch, batch)
    if batch is not None:
        if fast:
            fast_batch = Batch(Rows(1, records=[record]), numeric, categorical, other)
            same_batch(fast_batch, batch)
        model_sees_typed_values(batch, door, typed)
    # (f) the OpenAPI request schema, for what JSON Schema can express (see the module doc)
    if case.canonical:
        assert setup.schema.is_valid(record) == (not expected)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_every_checker_reaches_the_same_verdict(data: st.DataObject) -> None:
    cols = data.draw(columns())
    forbid_extra = data.draw(st.booleans())
    # Some columns are no model feature: the door keeps them typed in its "other" matrix.
    names = [c.name for c in cols]
    features = data.draw(st.lists(st.sampled_from(names), unique=True))
    setup = build(cols, forbid_extra, features)
    batch = [data.draw(cases(cols, forbid_extra)) for _ in range(data.draw(st.integers(1, 3)))]
    for case in batch:
        check_case(setup, case)
    # The column path on the whole batch lists the same faults, record by record.
    records = [case.record for case in batch]
    door = setup.door
    per_record = door_outcome(lambda: door.validate(records))
    by_column = door_outcome(lambda: door.validate_columns(Rows(len(records), records=records)))
    assert by_column[2] == per_record[2]
    assert {(e["record"], e["column"], e["check"]) for e in per_record[2]} == {
        (i, column, check) for i, case in enumerate(batch) for column, check in case.expected
    }


CODES_CONTRACT = {"columns": {"code": {"type": "category", "values": ["0", "1", "2"]}}}
CODES_CONFIG: dict[str, Any] = {"data": {"target": TARGET}}


@pytest.mark.parametrize(
    ("value", "door_accepts", "schema_accepts"),
    [
        (2, True, True),  # both agree: a code as a number
        ("2", True, True),
        (2.0, False, True),  # the door reads "2.0"; JSON Schema's enum holds 2 == 2.0
        (3, False, False),
    ],
)
def test_json_schema_exceptions(value: Any, door_accepts: bool, schema_accepts: bool) -> None:
    """The corners the OpenAPI schema cannot draw, as they stand."""
    schema = Draft202012Validator(record_schema(CODES_CONFIG, CODES_CONTRACT))
    assert (check_record({"code": value}, CODES_CONTRACT) == []) is door_accepts
    assert schema.is_valid({"code": value}) is schema_accepts
    # Lenient spellings the door reads but the schema does not name:
    lenient = {"columns": {"n": {"type": "int"}, "b": {"type": "bool"}}}
    assert check_record({"n": "3", "b": "yes"}, lenient) == []
    assert check_record({"n": 3.0, "b": 1}, lenient) == []
    strict = Draft202012Validator(record_schema(CODES_CONFIG, lenient))
    assert not strict.is_valid({"n": "3", "b": True})
    assert not strict.is_valid({"n": 3, "b": 1})


def test_rows_without_fields_are_judged_as_empty_records() -> None:
    """`dataframe_split` with no columns still brings rows: each is a record missing every
    field (it once reached the model as zero rows and failed with a 500)."""
    contract = normalize_contract({"columns": {"x": {"type": "float"}, TARGET: {"type": "int"}}})
    door = Door({"data": {"target": TARGET}}, contract, ["x"], [])
    rows = invocation_rows(
        {"dataframe_split": {"columns": [], "data": [[], []]}}, [c.name for c in door.columns]
    )
    assert rows.count == 2
    errors = door_outcome(lambda: door.validate(rows.as_records(), rows))[2]
    assert [(e["record"], e["column"], e["check"]) for e in errors] == [
        (0, "x", "missing_column"),
        (1, "x", "missing_column"),
    ]
    assert door_outcome(lambda: door.validate_columns(rows))[2] == errors

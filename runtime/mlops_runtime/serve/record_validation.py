"""The serving door: a request's rows (rows.py, decoded by each protocol) -> records checked
against the data contract -> model matrices.

Every record is held to the data contract with `contract_gate.check_record`, the same rules the
training gate applies. Running check_record on every record costs tens of microseconds, more
than the rest of a request, so the door first tries a precompiled filter that accepts only
values check_record certainly accepts (an int or float in range for a number column, a listed
string or number for a category, ...). Anything else (numeric text, booleans as 0/1, missing or
extra fields, out-of-range values) goes through check_record, whose verdict and coercion are
final. The rules of both come from `contract.rules`; tests/runtime/test_runtime_serving_units.py
and test_runtime_contract_agreement.py check the paths agree on random records.

A category may arrive as text or as a number (`rules.contract_category_text`): JSON `2` and an INT64
tensor element 2 are the category "2", and the model sees that text, as it did in training.

Big requests are checked column by column instead (`validate_columns`): numpy over whole
columns certifies the rows whose every value the record filter would accept, and only the other
rows go through the per-record path, so a 422 lists exactly what the per-record check lists
(tests/runtime/test_runtime_serving_units.py compares the two on generated batches).

Beyond the contract the door rejects non-finite numbers (the model cannot score them) and, with
serving.unknown_categories == "reject", categories the model never saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from mlops_runtime.contract.coercion import coerce_value
from mlops_runtime.contract.record_check import check_record
from mlops_runtime.contract.rules import (
    BOUNDS,
    TEXT_TYPES,
    bounds,
    category_readings,
    forbids_extra_columns,
    is_nullable,
)
from mlops_runtime.serve.rows import Column, Rows

_MISSING = object()
_NAN = float("nan")
MAX_REPORTED_ERRORS = 200  # a 422 for a huge batch lists this many faults, plus the total
_MAX_VALUE_CHARS = 200


class ContractRejection(Exception):
    """Records that break the contract: 422 with every field at fault."""

    def __init__(self, errors: list[dict[str, Any]], total: int):
        super().__init__(f"{total} contract violation(s)")
        self.errors = errors
        self.total = total


@dataclass
class Batch:
    """Validated rows in the model's column order."""

    rows: Rows
    numeric: np.ndarray  # (n, numeric features) float64, NaN = null
    categorical: np.ndarray  # (n, categorical features) object: str or NaN
    other: np.ndarray  # (n, contract columns the model does not use) object, typed; None = null

    def __len__(self) -> int:
        return self.rows.count

    @property
    def records(self) -> list[Any]:
        return self.rows.as_records()


# Reads a number sent for a category column as its text, or None when it is not one.
CodeReader = Callable[[Any], str | None]


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # contract type
    nullable: bool
    low: float | None
    high: float | None
    allowed: frozenset[Any] | None
    slot: int  # index in the numeric, categorical or other matrix (see feature)
    feature: str  # "numeric" | "categorical" | "none" (a contract column the model ignores)
    # Category columns: a reader per exact number type (int, float); empty for other types.
    readers: Mapping[type, CodeReader] = field(default_factory=dict)


def _float_text(number: float) -> str | None:
    """`rules.contract_category_text` for a Python float, without its type checks."""
    return repr(number) if math.isfinite(number) else None


def _unreadable(value: Any) -> None:
    return None


def _code_readers(rule: Mapping[str, Any]) -> dict[type, CodeReader]:
    """Lookups built once per column, so the hot path reads a code with one dict lookup."""
    if rule["type"] != "category":
        return {}
    if rule.get("values") is None:
        return {int: str, float: _float_text}
    readings = category_readings(rule["values"])
    return {int: readings[int].get, float: readings[float].get}


def clip(value: Any) -> Any:
    """Keep error bodies small (and serialisable) whatever a client sent."""
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        return value[:_MAX_VALUE_CHARS] + "..."
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)  # orjson refuses these; only in-process callers can produce them
    if isinstance(value, (list, dict)):
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            # orjson stops at 255 levels and repr() at the recursion limit (a RecursionError
            # for a body nested ~1000 deep): a few levels are all a message needs.
            text = _outline(value, _MAX_VALUE_CHARS + 1)
        return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."
    return value


def _outline(value: Any, budget: int, depth: int = 0) -> str:
    """`value` as JSON-like text, its nesting cut at a few levels and about `budget` chars."""
    if not isinstance(value, (list, dict)):
        text = repr(value) if not isinstance(value, str) else orjson.dumps(value).decode()
        return text[:budget]
    if depth >= 8 or budget <= 2:
        return "[...]" if isinstance(value, list) else "{...}"
    parts: list[str] = []
    used = 2
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        if used >= budget:
            parts.append("...")
            break
        part = _outline(item, budget - used, depth + 1)
        if key is not None:
            part = f"{orjson.dumps(str(key)).decode()}: {part}"
        parts.append(part)
        used += len(part) + 2
    opening, closing = ("[", "]") if isinstance(value, list) else ("{", "}")
    return opening + ", ".join(parts) + closing


class Door:
    """Per-spec validator; build once at startup (column rules are precomputed)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        contract: Mapping[str, Any],
        numeric_features: Sequence[str],
        categorical_features: Sequence[str],
        known_categories: Mapping[str, Collection[str]] | None = None,
    ):
        from mlops_runtime.serve.ab import sticky_field

        self.contract = contract
        serving = config.get("serving") or {}
        target = config["data"]["target"]
        columns: Mapping[str, Any] = contract.get("columns", {})
        ignore = {target}
        sticky = sticky_field(config)
        # A sticky key that is not a contract column travels in the record but is not data.
        if sticky is not None and sticky not in columns:
            ignore.add(sticky)
        # So are the entity keys a feature store looks a record's features up by.
        store = config.get("feature_store") or {}
        ignore.update(v["join_key"] for v in store.get("views", ()) if v["join_key"] not in columns)
        self.sticky = sticky
        self.ignore = frozenset(ignore)
        self.forbid_extra = forbids_extra_columns(contract)
        self.reject_unknown = serving.get("unknown_categories", "reject") == "reject"
        self.numeric_features = list(numeric_features)
        self.categorical_features = list(categorical_features)
        self.known = {k: frozenset(v) for k, v in (known_categories or {}).items()}
        self.allowed_keys = frozenset(columns) | self.ignore
        num_slot = {n: i for i, n in enumerate(self.numeric_features)}
        cat_slot = {n: i for i, n in enumerate(self.categorical_features)}
        specs: list[_Column] = []
        others = 0
        for name, rule in columns.items():
            if name in self.ignore:
                continue
            allowed = rule.get("values")
            if name in num_slot:
                feature, slot = "numeric", num_slot[name]
            elif name in cat_slot:
                feature, slot = "categorical", cat_slot[name]
            else:
                feature, slot = "none", others
                others += 1
            limits = {check: bound for check, bound, _ in bounds(rule)}
            specs.append(
                _Column(
                    name=name,
                    kind=rule["type"],
                    nullable=is_nullable(rule),
                    low=limits.get("min"),
                    high=limits.get("max"),
                    allowed=frozenset(allowed) if allowed is not None else None,
                    slot=slot,
                    feature=feature,
                    readers=_code_readers(rule),
                )
            )
        self.columns = specs
        self.width = len(specs)
        self.other_features = [c.name for c in specs if c.feature == "none"]
        self._getter = itemgetter(*[c.name for c in specs]) if len(specs) > 1 else None
        missing = [
            n for n in (*self.numeric_features, *self.categorical_features) if n not in columns
        ]
        if missing:
            raise ValueError(f"features outside the contract: {missing}")

    def with_known_categories(self, known: Mapping[str, Collection[str]]) -> Door:
        """A copy that checks unseen categories against another model's training categories."""
        twin = object.__new__(Door)
        twin.__dict__.update(self.__dict__)
        twin.known = {k: frozenset(v) for k, v in known.items()}
        return twin

    # -- validation ---------------------------------------------------------------------------

    def _matrices(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.empty((n, len(self.numeric_features)), dtype=np.float64),
            np.empty((n, len(self.categorical_features)), dtype=object),
            np.empty((n, len(self.other_features)), dtype=object),
        )

    def validate(self, records: Sequence[Any], rows: Rows | None = None) -> Batch:
        """Record by record: raise ContractRejection listing every fault, else the matrices."""
        n = len(records)
        numeric, categorical, other = self._matrices(n)
        errors: list[dict[str, Any]] = []
        total = 0
        for i, record in enumerate(records):
            total += self._row(i, record, numeric, categorical, other, errors)
        if total:
            raise ContractRejection(errors, total)
        if rows is None:
            rows = Rows(n, records=list(records))
        return Batch(rows, numeric, categorical, other)

    def validate_columns(self, rows: Rows) -> Batch:
        """Column by column, with numpy; same verdict, faults and matrices as `validate`.

        Each column check only certifies the rows whose value `_fast` would accept as it is
        (and computes the same matrix value); every other row, a minority in practice, goes
        through `_row`, whose faults are final. Faults therefore come out in record order,
        exactly as the per-record check lists them.
        """
        passed = self._column_pass(rows)
        if passed is None:  # a non-object record or a missing field somewhere
            assert rows.records is not None
            return self.validate(rows.records, rows)
        suspect, numeric, categorical, other = passed
        errors: list[dict[str, Any]] = []
        total = 0
        for i in np.flatnonzero(suspect).tolist():
            total += self._row(i, rows.record(i), numeric, categorical, other, errors)
        if total:
            raise ContractRejection(errors, total)
        return Batch(rows, numeric, categorical, other)

    def split_columns(
        self, rows: Rows
    ) -> tuple[np.ndarray, Batch, dict[int, list[dict[str, Any]]]]:
        """As `validate_columns`, but the rows at fault are set aside rather than failing the
        batch (batch scoring): (which rows passed, their batch, each other row's faults).

        The batch's `rows` holds the count only: its matrices are what the model and the
        prediction log read.
        """
        passed = self._column_pass(rows)
        if passed is None:
            assert rows.records is not None
            numeric, categorical, other = self._matrices(rows.count)
            suspect = np.ones(rows.count, dtype=bool)
        else:
            suspect, numeric, categorical, other = passed
        faults: dict[int, list[dict[str, Any]]] = {}
        for i in np.flatnonzero(suspect).tolist():
            found: list[dict[str, Any]] = []
            if self._row(i, rows.record(i), numeric, categorical, other, found):
                faults[i] = found
        good = np.ones(rows.count, dtype=bool)
        good[list(faults)] = False
        if not faults:
            return good, Batch(Rows(rows.count), numeric, categorical, other), faults
        kept = Rows(int(good.sum()))
        return good, Batch(kept, numeric[good], categorical[good], other[good]), faults

    def _column_pass(
        self, rows: Rows
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The matrices filled column by column and the rows left for `_row`; None when the
        records do not make columns."""
        n = rows.count
        columns: Mapping[str, Column] | None = rows.columns
        if rows.records is not None:
            columns = self._record_columns(rows.records)
            if columns is None:
                return None
        assert columns is not None
        numeric, categorical, other = self._matrices(n)
        suspect = np.zeros(n, dtype=bool)
        if rows.records is not None:
            # The record filter's field count rule (extra fields are fine unless forbidden).
            sizes = np.fromiter(map(len, rows.records), dtype=np.intp, count=n)
            short = sizes < self.width
            suspect |= short | ((sizes != self.width) & self.forbid_extra)
        elif self.forbid_extra and any(name not in self.allowed_keys for name in columns):
            suspect[:] = True
        for col in self.columns:
            values = columns.get(col.name)
            if values is None or len(values) != n:
                suspect[:] = True
                continue
            ok, typed = self._check_column(col, values)
            suspect |= ~ok
            if col.feature == "numeric":
                numeric[:, col.slot] = typed
            elif col.feature == "categorical":
                categorical[:, col.slot] = typed
            else:
                other[:, col.slot] = typed
        return suspect, numeric, categorical, other

    def input_columns(self, batch: Batch) -> dict[str, np.ndarray]:
        """A validated batch's inputs, one array per contract column (views of its matrices):
        what the prediction log records for a big batch."""
        columns: dict[str, np.ndarray] = {}
        for col in self.columns:
            if col.feature == "numeric":
                columns[col.name] = batch.numeric[:, col.slot]
            elif col.feature == "categorical":
                columns[col.name] = batch.categorical[:, col.slot]
            else:
                columns[col.name] = batch.other[:, col.slot]
        return columns

    def _record_columns(self, records: Sequence[Any]) -> dict[str, Column] | None:
        """The contract columns of a list of records, or None if a record lacks one."""
        names = [c.name for c in self.columns]
        if not records:
            return dict.fromkeys(names, ())
        if not names:
            return {}
        try:
            if self._getter is None:
                return {names[0]: [r[names[0]] for r in records]}
            table = list(map(self._getter, records))
        except (KeyError, TypeError, IndexError):
            return None
        return dict(zip(names, zip(*table, strict=True), strict=True))

    def _check_column(self, col: _Column, values: Column) -> tuple[np.ndarray, np.ndarray]:
        """(rows certainly valid as they are, the matrix value of every such row)."""
        n = len(values)
        if isinstance(values, np.ndarray):
            kind = values.dtype.kind
            if kind == "f" and col.kind == "float" and col.feature == "numeric":
                number = values.astype(np.float64, copy=False)
                return self._in_range(col, number, np.isfinite(number)), number
            if kind in "iuf" and col.kind == "category":
                return self._check_codes(col, values)
        listed: Sequence[Any] = values.tolist() if isinstance(values, np.ndarray) else values
        values = listed
        if col.kind in TEXT_TYPES:
            types = set(map(type, listed))
            codes = _numbers_of(listed, types) if col.readers else None
            if codes is not None:
                return self._check_codes(col, codes)
            return self._check_text(col, listed, types)
        accepted = _NUMBER_TYPES[col.kind]
        types = set(map(type, values))
        nulls = np.zeros(n, dtype=bool)
        good = np.ones(n, dtype=bool)
        if not types <= accepted:
            # Nulls and values of other types: nulls are fine in a nullable column, the rest
            # (text, booleans in a number column, lists...) are left to the per-record path.
            nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
            good = np.fromiter((type(v) in accepted for v in values), dtype=bool, count=n)
            values = [v if g else 0 for v, g in zip(values, good.tolist(), strict=True)]
            if col.nullable:
                good |= nulls
        try:
            if col.kind == "int":
                whole = np.array(values, dtype=np.int64)
                good &= (whole >= -(2**53)) & (whole <= 2**53)
                number = whole.astype(np.float64)
            else:
                number = np.array(values, dtype=np.float64)
        except OverflowError:  # an int beyond 64 bits or beyond a double: per record
            return np.zeros(n, dtype=bool), np.full(n, _NAN)
        if col.kind == "float":
            # Ints beyond 2**53 round to a double here as in coerce_value; the range check
            # then sees the same number check_record compares.
            good &= np.isfinite(number) | nulls
        good = self._in_range(col, number, good, nulls)
        if col.allowed is not None:
            plain = number.tolist() if col.kind == "float" else values
            good &= np.fromiter((x in col.allowed for x in plain), dtype=bool, count=n) | nulls
        if col.feature == "numeric":
            number[nulls] = _NAN
            return good, number
        typed = np.empty(n, dtype=object)
        plain = number.tolist() if col.kind == "float" else values
        if col.feature == "categorical":
            typed[:] = [str(x) for x in plain]
            typed[nulls] = _NAN
        else:
            typed[:] = [bool(x) for x in plain] if col.kind == "bool" else plain
            typed[nulls] = None
        return good, typed

    @staticmethod
    def _in_range(
        col: _Column, number: np.ndarray, good: np.ndarray, nulls: np.ndarray | None = None
    ) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            for bound, holds in ((col.low, BOUNDS["min"]), (col.high, BOUNDS["max"])):
                if bound is not None:
                    inside = holds(number, bound)
                    good = good & (inside if nulls is None else inside | nulls)
        return good

    def _known(self, col: _Column) -> frozenset[str] | None:
        """The training categories a value of `col` must be among, if the door checks them."""
        if col.feature == "categorical" and self.reject_unknown:
            return self.known.get(col.name)
        return None

    def _check_codes(self, col: _Column, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Numbers for a category column (an INT64 or FP64 tensor): read each distinct once."""
        distinct, index = np.unique(codes, return_inverse=True)
        read = col.readers[float if codes.dtype.kind == "f" else int]
        texts = [read(x) for x in distinct.tolist()]
        known = self._known(col)
        fine = [t is not None and (known is None or t in known) for t in texts]
        good = np.array(fine, dtype=bool)[index.reshape(-1)]
        if codes.dtype.kind == "f":
            good &= codes != 0  # one distinct number, but -0.0 and 0.0 read as two texts
        table = np.array([t if t is not None else "" for t in texts] or [""], dtype=object)
        return good, table[index.reshape(-1)]

    def _check_text(
        self, col: _Column, values: Sequence[Any], types: set[type]
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(values)
        nulls = np.zeros(n, dtype=bool)
        good = np.ones(n, dtype=bool)
        if not types <= {str}:
            nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
            if col.readers:  # numbers for a category: their text, or None where not one
                readers = col.readers
                values = [
                    v if type(v) is str else readers.get(type(v), _unreadable)(v) for v in values
                ]
            good = np.fromiter((type(v) is str for v in values), dtype=bool, count=n)
            values = [v if g else "" for v, g in zip(values, good.tolist(), strict=True)]
            if col.nullable:
                good |= nulls
        for allowed in (col.allowed, self._known(col)):
            if allowed is not None and not set(values) <= allowed:
                good &= np.fromiter((v in allowed for v in values), dtype=bool, count=n) | nulls
        typed = np.empty(n, dtype=object)
        typed[:] = values
        typed[nulls] = _NAN if col.feature == "categorical" else None
        return good, typed

    def _row(
        self,
        i: int,
        record: Any,
        numeric: np.ndarray,
        categorical: np.ndarray,
        other: np.ndarray,
        errors: list[dict[str, Any]],
    ) -> int:
        """Check record i and fill row i of the matrices; the number of faults found."""
        if type(record) is not dict:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append(
                    {
                        "record": i,
                        "column": None,
                        "check": "record",
                        "value": clip(record),
                        "message": "a record must be a JSON object",
                    }
                )
            return 1
        if self._fast(record, numeric[i], categorical[i], other[i]):
            return 0
        faults = self._slow(record, numeric[i], categorical[i], other[i])
        for fault in faults:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append({"record": i, **fault, "value": clip(fault["value"])})
        return len(faults)

    def _fast(
        self,
        record: dict[str, Any],
        num_row: np.ndarray,
        cat_row: np.ndarray,
        other_row: np.ndarray,
    ) -> bool:
        """Fill the rows and return True when every value is certainly valid as it is."""
        if len(record) != self.width and (self.forbid_extra or len(record) < self.width):
            return False  # maybe missing or extra fields: check_record reports them
        known = self.known if self.reject_unknown else None
        for col in self.columns:
            value = record.get(col.name, _MISSING)
            kind = type(value)
            if value is None:
                if not col.nullable:
                    return False
                if col.feature == "numeric":
                    num_row[col.slot] = _NAN
                elif col.feature == "categorical":
                    cat_row[col.slot] = _NAN
                else:
                    other_row[col.slot] = None
                continue
            if col.kind == "float":
                if kind is not float and kind is not int:
                    return False
                number = float(value) if -(2**53) <= value <= 2**53 else _NAN
                if not math.isfinite(number):
                    return False
            elif col.kind == "int":
                if kind is not int or not -(2**53) <= value <= 2**53:
                    return False
                number = value
            elif col.kind in ("category", "str"):
                if kind is str:
                    if col.allowed is not None and value not in col.allowed:
                        return False
                else:  # a code: its text if it is a listed category (readers know the list)
                    read = col.readers.get(kind)
                    if read is None:
                        return False
                    value = read(value)
                    if value is None:
                        return False
                if col.feature == "categorical":
                    if known is not None and col.name in known and value not in known[col.name]:
                        return False
                    cat_row[col.slot] = value
                elif col.feature == "none":
                    other_row[col.slot] = value
                continue
            else:  # bool
                if kind is not bool:
                    return False
                number = value
            # rules.BOUNDS written out (inclusive): an operator call per value costs on this path.
            if col.low is not None and not number >= col.low:
                return False
            if col.high is not None and not number <= col.high:
                return False
            if col.allowed is not None and number not in col.allowed:
                return False
            if col.feature == "numeric":
                num_row[col.slot] = number
            elif col.feature == "categorical":
                cat_row[col.slot] = str(float(number) if col.kind == "float" else number)
            else:
                other_row[col.slot] = number
        return True

    def _slow(
        self,
        record: dict[str, Any],
        num_row: np.ndarray,
        cat_row: np.ndarray,
        other_row: np.ndarray,
    ) -> list[dict[str, Any]]:
        """check_record decides; then coerce, and apply the serving-only checks."""
        faults = check_record(record, self.contract, ignore=self.ignore)
        if faults:
            return faults
        for col in self.columns:
            raw = record[col.name]
            ok, value = coerce_value(raw, col.kind)
            if not ok:  # unreachable after check_record; kept so a bug cannot reach the model
                faults.append(_fault(col.name, "dtype", raw, f"not a valid {col.kind}"))
                continue
            if value is None:
                if col.feature == "numeric":
                    num_row[col.slot] = _NAN
                elif col.feature == "categorical":
                    cat_row[col.slot] = _NAN
                else:
                    other_row[col.slot] = None
                continue
            if col.kind in ("int", "float") and not math.isfinite(value):
                faults.append(_fault(col.name, "dtype", raw, "not a finite number"))
                continue
            if col.feature == "numeric":
                num_row[col.slot] = float(value)
            elif col.feature == "categorical":
                text = value if isinstance(value, str) else str(value)
                known = self.known.get(col.name)
                if self.reject_unknown and known is not None and text not in known:
                    faults.append(
                        _fault(col.name, "unseen_category", raw, "category not seen in training")
                    )
                    continue
                cat_row[col.slot] = text
            else:
                other_row[col.slot] = value
        return faults


_NUMBER_TYPES: dict[str, set[type]] = {"float": {float, int}, "int": {int}, "bool": {bool}}


def _numbers_of(values: Sequence[Any], types: set[type]) -> np.ndarray | None:
    """A JSON column of codes all of one number type as an array, else None."""
    if types != {int} and types != {float}:
        return None
    try:
        return np.array(values, dtype=np.int64 if types == {int} else np.float64)
    except OverflowError:  # an int beyond 64 bits: the per-value path reads it
        return None


def _fault(column: str, check: str, value: Any, message: str) -> dict[str, Any]:
    return {"column": column, "check": check, "value": value, "message": message}

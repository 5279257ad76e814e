"""The serving door: request bodies of every protocol -> validated records -> model matrices.

Every record is held to the data contract with `contract_gate.check_record`, the same rules the
training gate applies. Running check_record on every record costs tens of microseconds, more
than the rest of a request, so the door first tries a precompiled filter that accepts only
values check_record certainly accepts (an int or float in range for a number column, a listed
string or number for a category, ...). Anything else (numeric text, booleans as 0/1, missing or
extra fields, out-of-range values) goes through check_record, whose verdict and coercion are
final. The rules of both come from `contract.rules`; tests/runtime/test_runtime_serving_units.py
and test_runtime_contract_agreement.py check the paths agree on random records.

A category may arrive as text or as a number (`rules.category_text`): JSON `2` and an INT64
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

_MISSING = object()
_NAN = float("nan")
MAX_REPORTED_ERRORS = 200  # a 422 for a huge batch lists this many faults, plus the total
_MAX_VALUE_CHARS = 200


class BadRequest(Exception):
    """A request that cannot be read at all: 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class ContractRejection(Exception):
    """Records that break the contract: 422 with every field at fault."""

    def __init__(self, errors: list[dict[str, Any]], total: int):
        super().__init__(f"{total} contract violation(s)")
        self.errors = errors
        self.total = total


# A column of a request: the JSON values as parsed, or a 1-D array (binary tensors).
Column = Sequence[Any] | np.ndarray


@dataclass
class Rows:
    """A request's rows as they arrived: a list of records, or columns of equal length."""

    count: int
    records: list[Any] | None = None
    columns: dict[str, Column] | None = None

    def first(self) -> Any:
        """The first record (the A/B sticky key is read from it)."""
        if self.records is not None:
            return self.records[0] if self.records else None
        if not self.count or self.columns is None:
            return None
        return {name: _python(column[0]) for name, column in self.columns.items()}

    def as_records(self) -> list[Any]:
        if self.records is not None:
            return self.records
        return columns_to_records(self.columns or {})

    def record(self, i: int) -> Any:
        if self.records is not None:
            return self.records[i]
        return {name: _python(column[i]) for name, column in (self.columns or {}).items()}


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
    """`rules.category_text` for a Python float, without its type checks."""
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


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


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
            text = repr(value)
        return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."
    return value


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
        n = rows.count
        columns: Mapping[str, Column] | None = rows.columns
        if rows.records is not None:
            columns = self._record_columns(rows.records)
            if columns is None:  # a non-object record or a missing field somewhere
                return self.validate(rows.records, rows)
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
        errors: list[dict[str, Any]] = []
        total = 0
        for i in np.flatnonzero(suspect).tolist():
            total += self._row(i, rows.record(i), numeric, categorical, other, errors)
        if total:
            raise ContractRejection(errors, total)
        return Batch(rows, numeric, categorical, other)

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

    # -- protocols ----------------------------------------------------------------------------

    def predict_records(self, payload: Any) -> tuple[Rows, bool]:
        """POST /predict: one record (an object) or a list of records. (rows, single?)"""
        if isinstance(payload, dict):
            return Rows(1, records=[payload]), True
        if isinstance(payload, list):
            return Rows(len(payload), records=payload), False
        raise BadRequest("body must be a JSON object (one record) or an array of records")

    def invocation_records(self, payload: Any) -> Rows:
        """MLflow scoring protocol: dataframe_split, dataframe_records, inputs, instances."""
        if not isinstance(payload, dict):
            raise BadRequest(
                "body must be an object with one of dataframe_split, dataframe_records, "
                "inputs, instances"
            )
        keys = [
            k
            for k in ("dataframe_split", "dataframe_records", "inputs", "instances")
            if k in payload
        ]
        if len(keys) != 1:
            raise BadRequest(
                "body needs exactly one of dataframe_split, dataframe_records, inputs, instances"
            )
        value = payload[keys[0]]
        if keys[0] == "dataframe_split":
            if not isinstance(value, dict):
                raise BadRequest("dataframe_split must be an object with columns and data")
            columns, data = value.get("columns"), value.get("data")
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise BadRequest("dataframe_split.columns must be a list of column names")
            width = len(columns)
            if not isinstance(data, list) or not all(
                type(r) is list and len(r) == width for r in data
            ):
                raise BadRequest("dataframe_split.data must be rows as long as columns")
            return _rows_to_columns(columns, data)
        if keys[0] == "dataframe_records":
            if not isinstance(value, list):
                raise BadRequest("dataframe_records must be a list of records")
            return Rows(len(value), records=value)
        # inputs / instances: records, one record, or columns {name: [values]}
        if isinstance(value, list):
            if value and all(isinstance(r, list) for r in value):
                names = [c.name for c in self.columns]
                if not all(len(r) == len(names) for r in value):
                    raise BadRequest(f"rows given as lists need {len(names)} values: {names}")
                return _rows_to_columns(names, value)
            return Rows(len(value), records=value)
        if isinstance(value, dict):
            return self.columns_to_rows(value)
        raise BadRequest(f"{keys[0]} must be a list of records or an object of columns")

    @staticmethod
    def columns_to_rows(columns: Mapping[str, Any]) -> Rows:
        if not columns:
            return Rows(0, records=[])
        if all(isinstance(v, list) for v in columns.values()):
            lengths = {len(v) for v in columns.values()}
            if len(lengths) != 1:
                raise BadRequest("all columns must have the same length")
            return Rows(lengths.pop(), columns=dict(columns))
        if any(isinstance(v, list) for v in columns.values()):
            raise BadRequest("give every column as a list, or one record of scalars")
        return Rows(1, records=[dict(columns)])

    def v2_records(self, payload: Any, binary: bytes | None = None) -> tuple[Rows, str | None]:
        """Open Inference Protocol request: one tensor per column (MLServer's pandas codec).

        `binary` is what follows the JSON header with the binary tensor extension; inputs
        with a `binary_data_size` parameter take their data from it, in order.
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
            raise BadRequest("body must be an object with an 'inputs' list of tensors")
        request_id = payload.get("id")
        columns: dict[str, Column] = {}
        rows: int | None = None
        offset = 0
        for tensor in payload["inputs"]:
            if not isinstance(tensor, dict):
                raise BadRequest("each input must be an object")
            name, shape, datatype, data = (
                tensor.get("name"),
                tensor.get("shape"),
                tensor.get("datatype"),
                tensor.get("data"),
            )
            if not isinstance(name, str):
                raise BadRequest("each input needs a name")
            if name in columns:
                raise BadRequest(f"input {name!r} given twice")
            if datatype not in V2_TYPES:
                raise BadRequest(f"input {name!r}: unsupported datatype {datatype!r}")
            if (
                not isinstance(shape, list)
                or not shape
                or not all(type(s) is int and s >= 0 for s in shape)
                or len(shape) > 2
                or (len(shape) == 2 and shape[1] != 1)
            ):
                raise BadRequest(f"input {name!r}: shape must be [n] or [n, 1]")
            parameters = tensor.get("parameters")
            size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
            column: Column
            if size is not None:
                if binary is None:
                    raise BadRequest(
                        f"input {name!r}: binary_data_size without the "
                        "Inference-Header-Content-Length header"
                    )
                if type(size) is not int or size < 0 or offset + size > len(binary):
                    raise BadRequest(f"input {name!r}: binary_data_size beyond the body")
                try:
                    column = decode_tensor(datatype, binary[offset : offset + size], shape[0])
                except ValueError as exc:
                    raise BadRequest(f"input {name!r}: {exc}") from None
                offset += size
            else:
                if isinstance(data, list) and data and all(isinstance(d, list) for d in data):
                    data = [x for d in data for x in d]  # nested rows as some clients send them
                if not isinstance(data, list) or len(data) != shape[0]:
                    raise BadRequest(f"input {name!r}: data must be a list of {shape[0]} values")
                column = data
            if rows is not None and shape[0] != rows:
                raise BadRequest("all inputs must have the same number of rows")
            rows = shape[0]
            columns[name] = column
        if binary is not None and offset != len(binary):
            raise BadRequest("binary data left over after the last binary input")
        if not columns or rows is None:
            raise BadRequest("no inputs")
        return Rows(rows, columns=columns), request_id if isinstance(request_id, str) else None


def _rows_to_columns(names: list[str], data: list[list[Any]]) -> Rows:
    """Rows of values (lists in `names` order) as columns; a repeated name keeps its last."""
    if not data:
        return Rows(0, records=[])
    if not names:  # rows without fields: columns could not carry their count
        return Rows(len(data), records=[{} for _ in data])
    return Rows(len(data), columns=dict(zip(names, zip(*data, strict=True), strict=True)))


# Little-endian element types of the binary tensor extension (BYTES is length-prefixed).
_BINARY_DTYPES = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


def decode_tensor(datatype: str, raw: bytes, count: int) -> np.ndarray:
    """One binary tensor of `count` elements; ValueError when the bytes do not fit."""
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        view = memoryview(raw)
        at = 0
        for i in range(count):
            if at + 4 > len(raw):
                raise ValueError(f"BYTES data ends after {i} of {count} elements")
            length = int.from_bytes(view[at : at + 4], "little")
            at += 4
            if at + length > len(raw):
                raise ValueError(f"BYTES element {i} runs past the data")
            try:
                out[i] = str(view[at : at + length], "utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"BYTES element {i} is not UTF-8 text") from None
            at += length
        if at != len(raw):
            raise ValueError("BYTES data longer than its elements")
        return out
    dtype = _BINARY_DTYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise ValueError(
            f"{datatype} data of {count} elements needs {count * dtype.itemsize} bytes, "
            f"got {len(raw)}"
        )
    if datatype == "BOOL" and raw.strip(b"\x00\x01"):
        raise ValueError("BOOL elements must be 0 or 1")
    return np.frombuffer(raw, dtype=dtype, count=count)


def encode_tensor(datatype: str, values: np.ndarray | Sequence[Any]) -> bytes:
    """Raw bytes of an output tensor for the binary tensor extension."""
    if datatype == "BYTES":
        # Labels repeat: encode each distinct value once, then lay them out by index.
        items = np.asarray(values, dtype=object)
        if items.size == 0:
            return b""
        distinct, index = np.unique(items, return_inverse=True)
        pieces = np.empty(len(distinct), dtype=object)
        for i, value in enumerate(distinct.tolist()):
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            pieces[i] = len(data).to_bytes(4, "little") + data
        return b"".join(pieces[index.reshape(-1)].tolist())
    return np.ascontiguousarray(values, dtype=_BINARY_DTYPES[datatype]).tobytes()


V2_TYPES = frozenset(
    {"BOOL", "BYTES", "FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
     "UINT8", "UINT16", "UINT32", "UINT64"}
)  # fmt: skip
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "str": "BYTES"}


_NUMBER_TYPES: dict[str, set[type]] = {"float": {float, int}, "int": {int}, "bool": {bool}}


def _numbers_of(values: Sequence[Any], types: set[type]) -> np.ndarray | None:
    """A JSON column of codes all of one number type as an array, else None."""
    if types != {int} and types != {float}:
        return None
    try:
        return np.array(values, dtype=np.int64 if types == {int} else np.float64)
    except OverflowError:  # an int beyond 64 bits: the per-value path reads it
        return None


def _python(value: Any) -> Any:
    """A binary tensor element as the JSON value a client would have sent."""
    return value.item() if isinstance(value, np.generic) else value


def columns_to_records(columns: Mapping[str, Column]) -> list[dict[str, Any]]:
    names = list(columns)
    lists = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]


def _fault(column: str, check: str, value: Any, message: str) -> dict[str, Any]:
    return {"column": column, "check": check, "value": value, "message": message}

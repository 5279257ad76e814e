"""The serving door: request bodies of every protocol -> validated records -> model matrices.

Every record is held to the data contract with `contract_gate.check_record`, the same rules the
training gate applies. Running check_record on every record costs tens of microseconds, more
than the rest of a request, so the door first tries a precompiled filter that accepts only
values check_record certainly accepts unchanged (an int or float in range for a number column,
a listed string for a category, ...). Anything else (numeric text, booleans as 0/1, missing or
extra fields, out-of-range values) goes through check_record, whose verdict and coercion are
final. tests/runtime/test_runtime_serving_door.py checks the two agree on random records.

Beyond the contract the door rejects non-finite numbers (the model cannot score them) and, with
serving.unknown_categories == "reject", categories the model never saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from mlops_project.data import coerce_value
from mlops_project.record_check import check_record

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


@dataclass
class Batch:
    """Validated records in the model's column order."""

    records: list[dict[str, Any]]
    numeric: np.ndarray  # (n, numeric features) float64, NaN = null
    categorical: np.ndarray  # (n, categorical features) object: str or NaN
    sticky: str | None = None  # the A/B key found in the body, if any
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # contract type
    nullable: bool
    low: float | None
    high: float | None
    allowed: frozenset[Any] | None
    slot: int  # index in numeric (>= 0) or categorical (encoded as -1 - index) matrix, or None
    feature: str  # "numeric" | "categorical" | "none"


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def _clip(value: Any) -> Any:
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
        from mlops_project.ab import sticky_field

        self.contract = contract
        serving = config.get("serving") or {}
        target = config["data"]["target"]
        columns: Mapping[str, Any] = contract.get("columns", {})
        ignore = {target}
        sticky = sticky_field(config)
        # A sticky key that is not a contract column travels in the record but is not data.
        if sticky is not None and sticky not in columns:
            ignore.add(sticky)
        self.sticky = sticky
        self.ignore = frozenset(ignore)
        self.forbid_extra = contract.get("extra_columns", "ignore") == "forbid"
        self.reject_unknown = serving.get("unknown_categories", "reject") == "reject"
        self.numeric_features = list(numeric_features)
        self.categorical_features = list(categorical_features)
        self.known = {k: frozenset(v) for k, v in (known_categories or {}).items()}
        self.allowed_keys = frozenset(columns) | self.ignore
        num_slot = {n: i for i, n in enumerate(self.numeric_features)}
        cat_slot = {n: i for i, n in enumerate(self.categorical_features)}
        specs: list[_Column] = []
        for name, rule in columns.items():
            if name in self.ignore:
                continue
            allowed = rule.get("values")
            feature, slot = "none", 0
            if name in num_slot:
                feature, slot = "numeric", num_slot[name]
            elif name in cat_slot:
                feature, slot = "categorical", cat_slot[name]
            specs.append(
                _Column(
                    name=name,
                    kind=rule["type"],
                    nullable=bool(rule.get("nullable", False)),
                    low=rule.get("min") if rule["type"] in ("int", "float") else None,
                    high=rule.get("max") if rule["type"] in ("int", "float") else None,
                    allowed=frozenset(allowed) if allowed is not None else None,
                    slot=slot,
                    feature=feature,
                )
            )
        self.columns = specs
        self.width = len(specs)
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

    def validate(self, records: Sequence[Any]) -> Batch:
        """Raise ContractRejection listing every fault, else the model matrices."""
        n = len(records)
        numeric = np.empty((n, len(self.numeric_features)), dtype=np.float64)
        categorical = np.empty((n, len(self.categorical_features)), dtype=object)
        errors: list[dict[str, Any]] = []
        total = 0
        for i, record in enumerate(records):
            if type(record) is not dict:
                total += 1
                if len(errors) < MAX_REPORTED_ERRORS:
                    errors.append(
                        {
                            "record": i,
                            "column": None,
                            "check": "record",
                            "value": _clip(record),
                            "message": "a record must be a JSON object",
                        }
                    )
                continue
            if self._fast(record, numeric[i], categorical[i]):
                continue
            faults = self._slow(record, numeric[i], categorical[i])
            if faults:
                total += len(faults)
                for fault in faults:
                    if len(errors) < MAX_REPORTED_ERRORS:
                        errors.append({"record": i, **fault, "value": _clip(fault["value"])})
        if total:
            raise ContractRejection(errors, total)
        return Batch(list(records), numeric, categorical)

    def _fast(self, record: dict[str, Any], num_row: np.ndarray, cat_row: np.ndarray) -> bool:
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
                if kind is not str:
                    return False
                if col.allowed is not None and value not in col.allowed:
                    return False
                if col.feature == "categorical":
                    if known is not None and col.name in known and value not in known[col.name]:
                        return False
                    cat_row[col.slot] = value
                continue
            else:  # bool
                if kind is not bool:
                    return False
                number = value
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
        return True

    def _slow(
        self, record: dict[str, Any], num_row: np.ndarray, cat_row: np.ndarray
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
        return faults

    # -- protocols ----------------------------------------------------------------------------

    def predict_records(self, payload: Any) -> tuple[list[Any], bool]:
        """POST /predict: one record (an object) or a list of records. (records, single?)"""
        if isinstance(payload, dict):
            return [payload], True
        if isinstance(payload, list):
            return payload, False
        raise BadRequest("body must be a JSON object (one record) or an array of records")

    def invocation_records(self, payload: Any) -> list[Any]:
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
            if not isinstance(data, list) or not all(
                isinstance(r, list) and len(r) == len(columns) for r in data
            ):
                raise BadRequest("dataframe_split.data must be rows as long as columns")
            return [dict(zip(columns, row, strict=True)) for row in data]
        if keys[0] == "dataframe_records":
            if not isinstance(value, list):
                raise BadRequest("dataframe_records must be a list of records")
            return value
        # inputs / instances: records, one record, or columns {name: [values]}
        if isinstance(value, list):
            if value and all(isinstance(r, list) for r in value):
                names = [c.name for c in self.columns]
                if not all(len(r) == len(names) for r in value):
                    raise BadRequest(f"rows given as lists need {len(names)} values: {names}")
                return [dict(zip(names, row, strict=True)) for row in value]
            return value
        if isinstance(value, dict):
            return self.columns_to_records(value)
        raise BadRequest(f"{keys[0]} must be a list of records or an object of columns")

    @staticmethod
    def columns_to_records(columns: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not columns:
            return []
        if all(isinstance(v, list) for v in columns.values()):
            lengths = {len(v) for v in columns.values()}
            if len(lengths) != 1:
                raise BadRequest("all columns must have the same length")
            names = list(columns)
            return [
                dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)
            ]
        if any(isinstance(v, list) for v in columns.values()):
            raise BadRequest("give every column as a list, or one record of scalars")
        return [dict(columns)]

    def v2_records(self, payload: Any) -> tuple[list[dict[str, Any]], str | None]:
        """Open Inference Protocol request: one tensor per column (MLServer's pandas codec)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
            raise BadRequest("body must be an object with an 'inputs' list of tensors")
        request_id = payload.get("id")
        columns: dict[str, list[Any]] = {}
        rows: int | None = None
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
            if isinstance(data, list) and data and all(isinstance(d, list) for d in data):
                data = [x for d in data for x in d]  # nested rows as some clients send them
            if not isinstance(data, list) or len(data) != shape[0]:
                raise BadRequest(f"input {name!r}: data must be a list of {shape[0]} values")
            if rows is not None and shape[0] != rows:
                raise BadRequest("all inputs must have the same number of rows")
            rows = shape[0]
            columns[name] = data
        if not columns:
            raise BadRequest("no inputs")
        names = list(columns)
        records = [
            dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)
        ]
        return records, request_id if isinstance(request_id, str) else None


V2_TYPES = frozenset(
    {"BOOL", "BYTES", "FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
     "UINT8", "UINT16", "UINT32", "UINT64"}
)  # fmt: skip
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "str": "BYTES"}


def _fault(column: str, check: str, value: Any, message: str) -> dict[str, Any]:
    return {"column": column, "check": check, "value": value, "message": message}

"""Open Inference Protocol (KServe V2) tensors <-> rows: JSON tensors, one per column
(MLServer's pandas codec), and the binary tensor extension, inputs and outputs.

Decoding only reshapes: the values reach the record checks as the client sent them, so a
tensor is held to the contract exactly as a JSON record is. A JSON tensor's values must also
be of its declared datatype (null aside, which the contract judges): a client that says INT64
and sends 1.5 has a bug the server must not hide by reading the number anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops_runtime.serve.exchange import BadRequest
from mlops_runtime.serve.rows import Column, Rows

V2_TYPES = frozenset(
    {"BOOL", "BYTES", "FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
     "UINT8", "UINT16", "UINT32", "UINT64"}
)  # fmt: skip
V2_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "str": "BYTES"}

_NUMBER: frozenset[type] = frozenset({int, float, type(None)})
_INTEGER: frozenset[type] = frozenset({int, type(None)})
# The JSON value types each datatype's data may hold, and an integer type's range.
_JSON_TYPES: dict[str, frozenset[type]] = {
    "BOOL": frozenset({bool, type(None)}),
    "BYTES": frozenset({str, type(None)}),
    **{t: _NUMBER for t in ("FP16", "FP32", "FP64")},
    **{t: _INTEGER for t in ("INT8", "INT16", "INT32", "INT64")},
    **{t: _INTEGER for t in ("UINT8", "UINT16", "UINT32", "UINT64")},
}
_INT_RANGE = {
    name: (int(np.iinfo(name.lower()).min), int(np.iinfo(name.lower()).max))
    for name in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
}

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


def decode_inputs(payload: Any, binary: bytes | None = None) -> tuple[Rows, str | None]:
    """An inference request's inputs as columns, and the client's request id if it gave one.

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
            _check_json_data(name, datatype, data)
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


def _check_json_data(name: str, datatype: str, data: list[Any]) -> None:
    """Refuse JSON data that is not of `datatype` (400 naming the input). One pass in C over
    the value types; the integer range only where integers are declared."""
    found = set(map(type, data))
    allowed = _JSON_TYPES[datatype]
    if not found <= allowed:
        wrong = sorted(t.__name__ for t in found - allowed)
        raise BadRequest(
            f"input {name!r}: datatype {datatype} but the data holds {', '.join(wrong)} values"
        )
    bounds = _INT_RANGE.get(datatype)
    if bounds is not None and int in found:
        numbers = [d for d in data if d is not None] if type(None) in found else data
        if min(numbers) < bounds[0] or max(numbers) > bounds[1]:
            raise BadRequest(f"input {name!r}: a value is out of the range of {datatype}")


def requested_outputs(payload: Any) -> tuple[list[Any] | None, bool | set[str]]:
    """(names of the requested outputs or None for all, which of them go binary).

    The binary tensor extension asks per output (`parameters.binary_data`) or for all
    outputs at once (`parameters.binary_data_output` on the request).
    """
    wanted = None
    binary: set[str] = set()
    outputs = payload.get("outputs") if isinstance(payload, dict) else None
    if isinstance(outputs, list):
        wanted = [o.get("name") for o in outputs if isinstance(o, dict)]
        for o in outputs:
            parameters = o.get("parameters") if isinstance(o, dict) else None
            if isinstance(parameters, dict) and parameters.get("binary_data") is True:
                binary.add(str(o.get("name")))
    parameters = payload.get("parameters") if isinstance(payload, dict) else None
    if isinstance(parameters, dict) and parameters.get("binary_data_output") is True:
        # Outputs that say binary_data: false stay JSON even then.
        explicit_json = {
            str(o.get("name"))
            for o in (outputs if isinstance(outputs, list) else [])
            if isinstance(o, dict)
            and isinstance(o.get("parameters"), dict)
            and o["parameters"].get("binary_data") is False
        }
        if not explicit_json:
            return wanted, True
        return wanted, {"predict", "predict_proba"} - explicit_json
    return wanted, binary


def label_datatype(classes: list[Any] | None, task: str) -> str:
    """The tensor type of the `predict` output: the type the model's labels all share."""
    if task == "regression" or classes is None:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "INT64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "FP64"
    return "BYTES"


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

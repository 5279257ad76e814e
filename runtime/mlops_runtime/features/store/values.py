"""Feast's `Value` protos as the Python values the rest of the runtime handles.

`decode` reads a serialized Value from the online store without importing Feast: the scalar
kinds a contract's features have (int, float, string, bool, null) are a single protobuf
field, read here from the wire format. Importing Feast to parse them would cost a serving
process seconds and hundreds of MB at its first lookup; anything else (lists, maps,
timestamps, a message with unknown fields) goes through Feast's own classes.
Tests decode every kind both ways and compare.
"""

from __future__ import annotations

import struct
from typing import Any

# Value kinds read as they are; others go through Feast's own conversion.
_SCALARS = frozenset(
    {"int64_val", "int32_val", "double_val", "float_val", "string_val", "bool_val"}
)

# Field numbers of feast.types.Value (Value.proto, a oneof `val`).
_STRING, _INT32, _INT64, _DOUBLE, _FLOAT, _BOOL = 2, 3, 4, 5, 6, 7
_NULL = 19
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_UNPARSED = object()


def python_value(value: Any) -> Any:
    """A Value proto as the Python value Feast's `to_dict` gives."""
    if value is None:
        return None
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    if kind in _SCALARS:
        return getattr(value, kind)
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(value)


def decode(blob: bytes) -> Any:
    """A serialized Value as `python_value(Value.FromString(blob))` gives it."""
    value = _scalar(blob)
    if value is _UNPARSED:
        from feast.protos.feast.types.Value_pb2 import Value

        return python_value(Value.FromString(blob))
    return value


def _scalar(blob: bytes) -> Any:
    """The value of a Value holding one scalar field (the last one, as protobuf reads a
    oneof), None for an empty message, or _UNPARSED for anything else."""
    value: Any = None
    at, end = 0, len(blob)
    while at < end:
        tag, at = _varint(blob, at)
        if tag is None:
            return _UNPARSED
        field, wire = tag >> 3, tag & 7
        if wire == _VARINT and field in (_INT32, _INT64, _BOOL, _NULL):
            raw, at = _varint(blob, at)
            if raw is None:
                return _UNPARSED
            if field == _BOOL:
                value = raw != 0
            elif field == _NULL:
                value = None
            else:
                signed = raw - (1 << 64) if raw >= 1 << 63 else raw
                # int32 is sent sign-extended to 64 bits and read back truncated to 32.
                value = (
                    signed if field == _INT64 else ((signed + (1 << 31)) % (1 << 32)) - (1 << 31)
                )
        elif wire == _I64 and field == _DOUBLE and at + 8 <= end:
            (value,) = struct.unpack_from("<d", blob, at)
            at += 8
        elif wire == _I32 and field == _FLOAT and at + 4 <= end:
            (value,) = struct.unpack_from("<f", blob, at)
            at += 4
        elif wire == _LEN and field == _STRING:
            size, at = _varint(blob, at)
            if size is None or at + size > end:
                return _UNPARSED
            try:
                value = blob[at : at + size].decode("utf-8")
            except UnicodeDecodeError:
                return _UNPARSED
            at += size
        else:
            return _UNPARSED
    return value


def _varint(blob: bytes, at: int) -> tuple[int | None, int]:
    result = shift = 0
    while at < len(blob) and shift < 70:
        byte = blob[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & ((1 << 64) - 1), at
        shift += 7
    return None, at

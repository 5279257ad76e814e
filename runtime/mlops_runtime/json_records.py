"""Frozen dataclasses read from and written to JSON objects, field by field, by their types.

A `Record` subclass declares its fields with plain annotations (`int`, `float`, `str`, `bool`,
`Any`, `X | None`, `list[X]`, `Mapping[str, X]`, another `Record`); `from_json` builds it from a
parsed JSON object and `to_json` gives the object back. Both are exact: a record read from a
file writes the same keys it was read with, in their order, and keeps the keys no field names,
so a file written by an earlier or a later version of the runtime survives a read and a write
unchanged. A value of the wrong type reads as the field's default (an absent key likewise):
the readers see one type per attribute, and a hand-edited or truncated file cannot crash them.

A field's JSON key is its name unless its metadata `json_key(...)` says otherwise (`from` is a
keyword); a field with the metadata `OMIT_NONE` is left out of the object while it is None (a section added to a
document after its first version). The runtime's base install has no pydantic: this is the
whole of its parsing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

R = TypeVar("R", bound="Record")

_JSON_KEY = "json_key"
_OMIT_NONE = "omit_none"


class _Bad:
    """A value that does not fit its annotation."""


BAD = _Bad()


def json_key(name: str) -> dict[str, Any]:
    """A field's metadata when its JSON key is `name`: `field(default=None, metadata=...)`."""
    return {_JSON_KEY: name}


# A field's metadata when it is left out of the JSON object while it is None.
OMIT_NONE: Mapping[str, Any] = {_OMIT_NONE: True}


@dataclasses.dataclass(frozen=True)
class Record:
    # The JSON keys the record was read with, in their order (None: built in Python, every
    # field is written), and the keys of the object no field names, kept as they were.
    json_keys: tuple[str, ...] | None = dataclasses.field(
        default=None, compare=False, repr=False, kw_only=True
    )
    json_extra: Mapping[str, Any] = dataclasses.field(
        default_factory=dict, compare=False, repr=False, kw_only=True
    )

    _HINTS: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def json_fields(cls) -> list[tuple[dataclasses.Field[Any], str, Any]]:
        """(field, JSON key, resolved annotation) of every data field, in declaration order."""
        hints = Record._HINTS.get(cls)
        if hints is None:
            hints = typing.get_type_hints(cls)
            Record._HINTS[cls] = hints
        return [
            (f, f.metadata.get(_JSON_KEY, f.name), hints[f.name])
            for f in dataclasses.fields(cls)
            if f.name not in ("json_keys", "json_extra")
        ]

    @classmethod
    def from_json(cls: type[R], data: object, where: str = "") -> R:
        """The record of a parsed JSON object (anything else reads as every default). A field
        without a default is required: absent or of the wrong type, it raises RecordError,
        which names the field's path below `where`."""
        if not isinstance(data, Mapping):
            if any(_required(f) for f, _, _ in cls.json_fields()):
                raise RecordError(where or "the document", "must be a JSON object")
            data = {}
        document: Mapping[str, Any] = data
        values: dict[str, Any] = {}
        known = set()
        for f, name, hint in cls.json_fields():
            known.add(name)
            path = f"{where}.{name}" if where else name
            if name not in document:
                if _required(f):
                    raise RecordError(path, "is missing")
                continue
            value = convert(document[name], hint, path, strict=_required(f))
            if value is not BAD:
                values[f.name] = value
            elif _required(f):
                raise RecordError(path, f"must be {_describe(hint)}, not {document[name]!r}"[:300])
        extra = {k: v for k, v in document.items() if k not in known}
        return cls(**values, json_keys=tuple(document), json_extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the keys read (or every field), then the ones added since."""
        fields = self.json_fields()
        out: dict[str, Any] = {}
        written = {name: (f, getattr(self, f.name)) for f, name, _ in fields}
        order = list(self.json_keys) if self.json_keys is not None else list(written)
        for name in order:
            if name in written:
                f, value = written.pop(name)
                if self.json_keys is None and value is None and f.metadata.get(_OMIT_NONE):
                    continue
                out[name] = dump(value)
            elif name in self.json_extra:
                out[name] = self.json_extra[name]
        for name, (f, value) in written.items():
            # Absent from the object read, set since (a section the monitor adds to a report).
            if not _is_default(f, value):
                out[name] = dump(value)
        return out

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes`; it keeps the keys it was read with (plus the changed ones)."""
        return dataclasses.replace(self, **changes)


class RecordError(ValueError):
    """A required field of a JSON document is absent or of the wrong type."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path} {problem}")
        self.path = path


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _describe(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in get_args(hint))
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and issubclass(hint, Record):
        return "an object"
    origin = get_origin(hint) or hint
    names: dict[object, str] = {list: "a list", dict: "an object", Mapping: "an object"}
    names |= {str: "text", bool: "true or false", int: "a number", float: "a number"}
    return names.get(origin, str(hint))


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return bool(value == f.default) if f.default is not dataclasses.MISSING else False


def _at(where: str, key: object) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"


def dump(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, Mapping):
        return {k: dump(v) for k, v in value.items()}
    return value


def convert(value: Any, hint: Any, where: str = "", strict: bool = False) -> Any:
    """`value` (at the path `where`) as `hint` describes it, or BAD. A record inside it raises
    RecordError when its own required fields are absent; `strict` (the value is required)
    raises too for a list item or a mapping value of the wrong type, instead of dropping it."""
    if hint is Any or hint is object:
        return value
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        options = get_args(hint)
        if value is None:
            return None if type(None) in options else BAD
        for option in options:
            if option is type(None):
                continue
            converted = convert(value, option, where, strict)
            if converted is not BAD:
                return converted
        return BAD
    if value is None:
        return BAD
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            return BAD
        (item,) = get_args(hint) or (Any,)
        items = [convert(v, item, _at(where, i), strict) for i, v in enumerate(value)]
        if strict and BAD in items:
            raise RecordError(_at(where, items.index(BAD)), f"must be {_describe(item)}")
        return [v for v in items if v is not BAD]
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return BAD
        _, item = get_args(hint) or (str, Any)
        pairs = {str(k): convert(v, item, _at(where, k), strict) for k, v in value.items()}
        bad = [k for k, v in pairs.items() if v is BAD]
        if strict and bad:
            raise RecordError(_at(where, bad[0]), f"must be {_describe(item)}")
        return {k: v for k, v in pairs.items() if v is not BAD}
    if isinstance(hint, type) and issubclass(hint, Record):
        if not isinstance(value, Mapping):
            return BAD
        return hint.from_json(value, where)
    if hint is bool:
        return value if isinstance(value, bool) else BAD
    if hint in (int, float):
        # An int field may hold 12.0 and a float field 3: the number is kept as it was read.
        return value if isinstance(value, int | float) and not isinstance(value, bool) else BAD
    if hint is str:
        return value if isinstance(value, str) else BAD
    raise TypeError(f"no JSON reading for {hint!r}")


def json_schema(root: type[Record], title: str, description: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `root`'s documents, from the fields' types: one
    definition per record, its required fields required, no other keys allowed."""
    defs: dict[str, Any] = {}
    _schema_of(root, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": description,
        **defs.pop(root.__name__),
        "$defs": dict(sorted(defs.items())),
    }


def _schema_of(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if hint is Any or hint is object:
        return {}
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_schema_of(option, defs) for option in get_args(hint)]}
    if hint is type(None):
        return {"type": "null"}
    if origin in (list, tuple) or hint in (list, tuple):
        (item,) = get_args(hint) or (Any,)
        return {"type": "array", "items": _schema_of(item, defs)}
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        _, item = get_args(hint) or (str, Any)
        return {"type": "object", "additionalProperties": _schema_of(item, defs)}
    if isinstance(hint, type) and issubclass(hint, Record):
        if hint.__name__ not in defs:
            defs[hint.__name__] = {}  # a placeholder while its fields are walked
            fields = hint.json_fields()
            defs[hint.__name__] = {
                "type": "object",
                "properties": {name: _schema_of(h, defs) for _, name, h in fields},
                "required": [name for f, name, _ in fields if _required(f)],
                "additionalProperties": False,
            }
        return {"$ref": f"#/$defs/{hint.__name__}"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")

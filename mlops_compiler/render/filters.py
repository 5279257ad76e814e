"""Escape filters, one per target language: the only way a spec value reaches a file.

Each returns `Escaped`, and the environment refuses to print anything else, so a template
that forgets a filter fails at build time instead of emitting an injectable value.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from json.encoder import encode_basestring_ascii
from typing import Any

import jinja2
from markupsafe import escape


class Escaped(str):
    """Text already made safe for the place it is printed."""

    __slots__ = ()


def _check_finite(value: Any) -> None:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite numbers have no literal in the generated files")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(k)
            _check_finite(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_finite(v)


def _py_literal(value: Any, indent: int) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, dict):
        items = [(repr(k), _py_literal(v, indent + 4)) for k, v in value.items()]
        flat = "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
        if len(flat) + indent <= 80 and "\n" not in flat:
            return flat
        pad = " " * (indent + 4)
        return "{\n" + "".join(f"{pad}{k}: {v},\n" for k, v in items) + " " * indent + "}"
    if isinstance(value, list | tuple):
        parts = [_py_literal(v, indent + 4) for v in value]
        flat = "[" + ", ".join(parts) + "]"
        if len(flat) + indent <= 80 and "\n" not in flat:
            return flat
        pad = " " * (indent + 4)
        return "[\n" + "".join(f"{pad}{p},\n" for p in parts) + " " * indent + "]"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def pyrepr(value: Any) -> Escaped:
    """A Python literal (str, int, float, bool, None, and lists/dicts of them), laid out
    the way a formatter would, so generated modules read like hand-written ones."""
    _check_finite(value)
    return Escaped(_py_literal(value, 0))


# One encoder for every flat form: NaN and infinities raise, as they have no JSON literal.
_FLAT = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": "), allow_nan=False)


def _json_flat(value: Any) -> str:
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    return _FLAT.encode(value)


def _is_record(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and not any(isinstance(v, dict | list | tuple) for v in value.values())
    )


def _json_layout(value: Any, indent: int, width: int) -> str:
    # The one-line form first: most containers fit, and only those that do not are laid out
    # item by item (a monorepo build prints thousands of these).
    flat = _json_flat(value)
    if len(flat) + indent <= width or not isinstance(value, dict | list | tuple) or not value:
        return flat
    if isinstance(value, dict):
        # A mapping of records (the manifest's files, a contract's columns) is a table too.
        table = all(_is_record(v) for v in value.values())
        parts = [
            f"{encode_basestring_ascii(str(k))}: "
            + (_json_flat(v) if table else _json_layout(v, indent + 2, width))
            for k, v in value.items()
        ]
        opening, closing = "{", "}"
    elif all(_is_record(v) for v in value):
        # A table (gate thresholds, KPIs, rollback triggers): a row a line, however long, so
        # a changed row is a one-line diff.
        parts = [_json_flat(v) for v in value]
        opening, closing = "[", "]"
    else:
        parts = [_json_layout(v, indent + 2, width) for v in value]
        opening, closing = "[", "]"
    pad = " " * (indent + 2)
    return opening + "\n" + ",\n".join(pad + p for p in parts) + "\n" + " " * indent + closing


def json_text(value: Any) -> str:
    """A JSON document laid out for review: a container that fits in 100 columns stays on
    one line (a contract column, a gate threshold), a longer one takes a line per item, and
    a list or mapping of flat mappings keeps each on a line of its own, like the rows of a
    table."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises here, naming the missing variable
    try:
        return _json_layout(value, 0, 100)
    except ValueError:
        raise ValueError("non-finite numbers have no literal in the generated files") from None


def json_document(value: Any) -> Escaped:
    return Escaped(json_text(value))


def json_value(value: Any) -> Escaped:
    _check_finite(value)
    return Escaped(json.dumps(value, ensure_ascii=True, sort_keys=False))


_YAML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
}


# Printable ASCII but the quote and the backslash: text that needs no escape (most of it).
_YAML_UNESCAPED = re.compile(r"[ !#-\[\]-~]*\Z")


def _yaml_string(text: str) -> str:
    if _YAML_UNESCAPED.match(text):
        return '"' + text + '"'
    out = []
    for ch in text:
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def yaml_value(value: Any) -> Escaped:
    """A YAML flow value: double-quoted strings with every non-ASCII character escaped."""
    _check_finite(value)
    if isinstance(value, str):
        return Escaped(_yaml_string(value))
    if isinstance(value, bool) or value is None:
        return Escaped(json.dumps(value))
    if isinstance(value, int):
        return Escaped(repr(value))
    if isinstance(value, float):
        # YAML 1.1 readers (PyYAML) take "1e-05" for a string: the mantissa needs a dot.
        mantissa, e, exponent = repr(value).partition("e")
        if e and "." not in mantissa:
            mantissa += ".0"
        return Escaped(mantissa + e + exponent)
    if isinstance(value, dict):
        items = ", ".join(f"{yaml_value(str(k))}: {yaml_value(v)}" for k, v in value.items())
        return Escaped("{" + items + "}")
    if isinstance(value, list | tuple):
        return Escaped("[" + ", ".join(yaml_value(v) for v in value) + "]")
    raise TypeError(f"no YAML literal for {type(value).__name__}")


# Plain (unquoted) YAML scalars only where no reader can take them for anything but a string:
# a letter or underscore first (no numbers, dates, anchors, tags, flow or block indicators)
# and none of the YAML 1.1 words Go's and PyYAML's readers resolve to booleans or null; or a
# Prometheus duration ("5m", "1h30m"), which no YAML schema reads as a number.
_YAML_PLAIN = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_./-]*|(?:[0-9]+(?:ms|[smhdwy]))+)\Z")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _yaml_text(text: str) -> str:
    if _YAML_PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    if all(" " <= ch <= "~" for ch in text):
        # Single quotes escape nothing but themselves, so PromQL and Prometheus templates
        # (quotes, backslashes, braces) read as written.
        return "'" + text.replace("'", "''") + "'"
    return _yaml_string(text)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return _yaml_text(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return str(yaml_value(value))


def _yaml_block(value: Any, indent: int) -> list[str]:
    """Lines of a non-empty mapping or sequence, each indented by `indent` at least."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"YAML documents take text keys, not {type(key).__name__}")
            if isinstance(item, dict | list | tuple) and item:
                lines.append(f"{pad}{_yaml_text(key)}:")
                lines.extend(_yaml_block(item, indent + 2))
            else:
                lines.append(f"{pad}{_yaml_text(key)}: {_yaml_scalar(item)}")
        return lines
    for item in value:
        if isinstance(item, dict | list | tuple) and item:
            nested = _yaml_block(item, indent + 2)
            # The item's first line moves up beside its dash ("- alert: ...").
            lines.append(f"{pad}- {nested[0][indent + 2 :]}")
            lines.extend(nested[1:])
        else:
            lines.append(f"{pad}- {_yaml_scalar(item)}")
    return lines


def yaml_document(value: Any) -> Escaped:
    """A whole YAML document in block style, for files users review (alert rules): keys in
    the order given, strings plain only where unambiguous, else quoted."""
    _check_finite(value)
    if isinstance(value, dict | list | tuple) and value:
        return Escaped("\n".join(_yaml_block(value, 0)))
    return Escaped(_yaml_scalar(value))


def shell_quote(value: Any) -> Escaped:
    _check_finite(value)
    return Escaped(shlex.quote(str(value)))


def shell_words(values: Any) -> Escaped:
    """An argv list as one shell command line, each word quoted as needed."""
    _check_finite(values)
    return Escaped(" ".join(shlex.quote(str(v)) for v in values))


def html(value: Any) -> Escaped:
    """Text for HTML and Markdown: markup characters escaped, newlines flattened."""
    _check_finite(value)
    return Escaped(str(escape(" ".join(str(value).split()))))


# CommonMark's backslash escapes for the characters that can start emphasis, code, links, raw
# HTML or entities inline (values never start a line, so headings and lists cannot begin).
# Quotes, apostrophes and other punctuation read as written.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&~])")


def markdown(value: Any) -> Escaped:
    """Inline Markdown text: markup characters backslash-escaped, newlines flattened."""
    _check_finite(value)
    text = " ".join(str(value).split())
    return Escaped(_MARKDOWN_SPECIAL.sub(r"\\\1", text))


def line(value: Any) -> Escaped:
    """One line of plain text (a comment, a requirement): nothing can start a new line."""
    _check_finite(value)
    return Escaped(" ".join(str(value).split()).encode("unicode_escape").decode("ascii"))


FILTERS = {
    "pyrepr": pyrepr,
    "json_document": json_document,
    "json_value": json_value,
    "markdown": markdown,
    "yaml_value": yaml_value,
    "yaml_document": yaml_document,
    "shell_quote": shell_quote,
    "shell_words": shell_words,
    "html": html,
    "line": line,
}

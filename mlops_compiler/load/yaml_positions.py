"""Safe YAML loading that remembers where every key and value came from.

We compose the node graph with PyYAML's SafeLoader and build Python values ourselves, so
that we can report positions, refuse duplicate keys and unknown tags, and bound alias
expansion (an alias bomb composes cheaply but explodes on construction).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_compiler.errors import Diagnostic, SpecError, display_path, snippet

# libyaml's parser keeps the same marks and is ten times faster; PyYAML may lack it.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1_000_000
MAX_NODES = 100_000

Path_ = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


@dataclass(frozen=True)
class LoadedSpec:
    """A spec document with positions: `values[path]` and `keys[path]` are (line, col)."""

    path: Path
    text: str
    raw: bytes
    data: dict[str, Any]
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: tuple[Diagnostic, ...] = ()  # non-fatal: reported beside validation errors

    @functools.cached_property
    def display(self) -> str:
        return display_path(self.path)

    def position(self, loc: Path_, *, key: bool = False) -> tuple[int, int]:
        """The best known position for a path: itself, else its nearest ancestor."""
        table = self.keys if key else self.values
        probe = loc
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def diagnostic(
        self,
        loc: Path_,
        message: str,
        *,
        key: bool = False,
        at: Path_ | None = None,
        with_snippet: bool = True,
    ) -> Diagnostic:
        """A problem about `loc`, shown at `at` (default: loc itself)."""
        line, col = self.position(loc if at is None else at, key=key)
        shown = snippet(self.text, line, col) if with_snippet else ""
        return Diagnostic(self.display, line, col, dotted(loc), message, shown)


def dotted(loc: Path_) -> str:
    """('a', 'b', 0, 'c') -> 'a.b[0].c'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Builder:
    def __init__(self, spec_path: Path, text: str) -> None:
        self.file = display_path(spec_path)
        self.text = text
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Diagnostic] = []
        self.visited = 0
        self.scalars = yaml.SafeLoader("")

    def problem(self, node: yaml.Node, loc: Path_, message: str) -> None:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(
            Diagnostic(self.file, line, col, dotted(loc), message, snippet(self.text, line, col))
        )

    def build(self, node: yaml.Node, loc: Path_) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _TooLarge(node)
        self.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                self.problem(node, loc, f"unsupported YAML tag {_short(node.tag)}")
                return None
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == _TIMESTAMP:
            return node.value  # an unquoted date is meant as text here
        if node.tag not in _PLAIN_TAGS:
            self.problem(node, loc, f"unsupported YAML tag {_short(node.tag)}; only plain values")
            return None
        return self.scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, loc: Path_) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problem(node, loc, f"unsupported YAML tag {_short(node.tag)}")
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(key_node, loc, "merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                self.problem(key_node, loc, "mapping keys must be plain scalars")
                continue
            key = str(key_node.value)
            child = (*loc, key)
            if key in out:
                first = self.keys[child]
                self.problem(
                    key_node, child, f"duplicate key {key!r} (first defined at line {first[0]})"
                )
                continue
            self.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, child)
        return out


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


class _TooLarge(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


def _file_problem(path: Path, message: str) -> SpecError:
    return SpecError([Diagnostic(display_path(path), 0, 0, "", message)])


def load_spec(path: Path) -> LoadedSpec:
    """Read and parse one spec file, or raise SpecError listing what is wrong with it."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _file_problem(path, f"file is {size} bytes; specs are limited to {MAX_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise _file_problem(path, f"cannot read spec: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise _file_problem(path, "binary file: a spec is UTF-8 YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_problem(
            path, f"not UTF-8: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise _file_problem(path, "empty spec: expected a mapping with apiVersion, name, ...")
    builder = _Builder(path, text)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax error: {exc.problem or exc.context}"
        raise SpecError(
            [Diagnostic(builder.file, line, col, "", message, snippet(text, line, col))]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(builder.file, 1, 1, "", f"YAML error: {exc}")]) from None
    if node is None:
        raise _file_problem(path, "empty spec: expected a mapping with apiVersion, name, ...")
    if not isinstance(node, yaml.MappingNode):
        builder.problem(node, (), "the top level of a spec must be a mapping (key: value)")
        raise SpecError(builder.problems)
    try:
        data = builder.build(node, ())
    except _TooLarge as big:
        builder.problems = []
        builder.problem(
            big.node, (), f"document expands to more than {MAX_NODES} nodes (alias bomb?)"
        )
        raise SpecError(builder.problems) from None
    return LoadedSpec(path, text, raw, data, builder.values, builder.keys, tuple(builder.problems))

"""The runtime's layers (ARCHITECTURE.md, "The runtime's layers"): a module imports only from
its own layer or a lower one, and the units (the table's entries) form no import cycle.

Every module of runtime/mlops_runtime is parsed with `ast`; every import counts, at module
level, inside functions, relative (`from . import x`) and under `if TYPE_CHECKING:` too (a
type-only import still says which layer knows which, and none of them needs an exception).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "mlops_runtime"

# THE layer table, lowest first. A unit is a dotted path under mlops_runtime (a subpackage, a
# top-level module, or a single module); a module belongs to the longest unit that prefixes it.
# "mlops_runtime" is the package's own __init__ (its version).
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "mlops_runtime",
        "contract",
        "project",
        "data",
        "sketches",
        "timestamps",
        "json_records",
        "monitor_report",
        "config",
    ),
    # tracking: the registry, the serving history and promotion (who serves).
    "tracking": ("tracking",),
    # tracking.worker is the train stage's second process (it evaluates and registers).
    "capabilities": (
        "features",
        "train",
        "serve",
        "score",
        "monitor",
        "container",
        "tracking.worker",
    ),
    # The stages that drive the others: the monitor stage, which calls rollback, which may
    # call retraining; the CLI.
    "orchestration": ("monitor.stage", "rollback", "__main__"),
}

RANK = {unit: rank for rank, units in enumerate(LAYERS.values()) for unit in units}
NAME = {unit: layer for layer, units in LAYERS.items() for unit in units}


@dataclass(frozen=True)
class Edge:
    file: str
    line: int
    source: str  # unit of the importing module
    target: str  # unit of the imported module
    imported: str


def unit_of(module: str) -> str:
    """The table's unit of a dotted module path (with or without the mlops_runtime prefix)."""
    parts = module.split(".")
    if parts[0] == "mlops_runtime":
        parts = parts[1:]
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in RANK:
            return candidate
    if not parts or parts == ["__init__"]:
        return "mlops_runtime"
    raise AssertionError(f"mlops_runtime.{'.'.join(parts)} is in no layer of LAYERS")


def module_name(path: Path) -> tuple[str, str]:
    """(module, package) of a file under RUNTIME, dotted from mlops_runtime."""
    parts = ("mlops_runtime", *path.relative_to(RUNTIME).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every mlops_runtime import in the file, however nested.
    `from X import name` yields X.name too, so `from mlops_runtime import sketches` is the
    sketches module, not the package."""
    _, package = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if alias.name != "*" else module


def edges() -> list[Edge]:
    out = []
    for path in sorted(RUNTIME.rglob("*.py")):
        module, _ = module_name(path)
        source = unit_of(module)
        for line, imported in imports_of(path):
            if imported != "mlops_runtime" and not imported.startswith("mlops_runtime."):
                continue
            target = unit_of(_existing(imported))
            if target != source:
                out.append(
                    Edge(str(path.relative_to(RUNTIME.parent)), line, source, target, imported)
                )
    return out


def _existing(imported: str) -> str:
    """The longest prefix of `imported` that is a module or package (drops a function name)."""
    parts = imported.split(".")
    for n in range(len(parts), 0, -1):
        rel = Path(*parts[1:n]) if n > 1 else Path()
        if (RUNTIME / rel).with_suffix(".py").is_file() or (
            RUNTIME / rel / "__init__.py"
        ).is_file():
            return ".".join(parts[:n])
    return "mlops_runtime"


def upward(found: list[Edge]) -> list[str]:
    return [
        f"{e.file}:{e.line}: {e.source} ({NAME[e.source]}) imports {e.imported}, "
        f"of {e.target} ({NAME[e.target]}), a higher layer"
        for e in found
        if RANK[e.target] > RANK[e.source]
    ]


def cycles(found: list[Edge]) -> list[str]:
    """One message per import closing a cycle between units (found by depth-first search)."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in found:
        graph.setdefault(e.source, {}).setdefault(e.target, e)
    messages, state, stack = [], {}, []

    def visit(unit: str) -> None:
        state[unit] = "open"
        stack.append(unit)
        for target, e in sorted(graph.get(unit, {}).items()):
            if state.get(target) == "open":
                loop = " -> ".join([*stack[stack.index(target) :], target])
                messages.append(
                    f"{e.file}:{e.line}: {e.source} ({NAME[e.source]}) imports {e.imported}, "
                    f"of {e.target} ({NAME[e.target]}), closing the cycle {loop}"
                )
            elif target not in state:
                visit(target)
        stack.pop()
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit)
    return messages


def test_every_table_entry_is_a_module_or_package() -> None:
    for unit in RANK:
        if unit == "mlops_runtime":
            continue
        rel = Path(*unit.split("."))
        assert (RUNTIME / rel).with_suffix(".py").is_file() or (RUNTIME / rel).is_dir(), unit


def test_no_import_goes_up_a_layer() -> None:
    problems = upward(edges())
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_units() -> None:
    problems = cycles(edges())
    assert not problems, "\n".join(problems)


def test_the_check_sees_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    """The checks themselves: a planted upward import and a planted cycle are named."""
    planted = [
        Edge("mlops_runtime/data.py", 3, "data", "train", "mlops_runtime.train.stage"),
        Edge("mlops_runtime/serve/a.py", 4, "serve", "monitor", "mlops_runtime.monitor.x"),
        Edge("mlops_runtime/monitor/b.py", 5, "monitor", "serve", "mlops_runtime.serve.y"),
    ]
    (up,) = upward(planted)
    assert up.startswith("mlops_runtime/data.py:3: data (core)") and "train (capabilities)" in up
    (loop,) = cycles(planted)
    assert "monitor -> serve -> monitor" in loop or "serve -> monitor -> serve" in loop


@pytest.mark.parametrize(
    ("module", "unit"),
    [
        ("mlops_runtime.monitor.stage", "monitor.stage"),
        ("mlops_runtime.monitor.drift", "monitor"),
        ("mlops_runtime.tracking.serving_history", "tracking"),
        ("mlops_runtime", "mlops_runtime"),
        ("mlops_runtime.features.store.offline", "features"),
    ],
)
def test_unit_of(module: str, unit: str) -> None:
    assert unit_of(module) == unit

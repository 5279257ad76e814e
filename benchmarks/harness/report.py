"""Results as Markdown tables (for docs/benchmarks.md), and targets judged from data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class RunFacts:
    """What a results file starts with: when and how it was run, on what, at which load."""

    started: str = ""
    command: str = ""
    commit: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    load_before: str = ""
    load_after: str = ""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table(headers, rows))


def verdict(ok: bool, *, passed: str = "pass", bold: bool = False) -> str:
    if ok:
        return passed
    return "**MISSED**" if bold else "MISSED"


def ratio_text(value: float) -> str:
    return f"{value:.2f}x"


@dataclass(frozen=True)
class Target:
    """`measured[key]` against `limit`: at most it, or with at_least, at least it."""

    name: str
    key: str
    limit: float
    at_least: bool = False
    show: Callable[[float], str] = ratio_text

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    @property
    def wanted(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.show(self.limit)}"


def judge(
    targets: Sequence[Target], measured: Mapping[str, float], *, bold: bool = False
) -> tuple[list[list[str]], bool]:
    """Rows of (target, wanted, measured, result) for the targets measured, and whether every
    one of them was met; a target whose key was not measured is left out."""
    rows, ok = [], True
    for t in targets:
        if t.key not in measured:
            continue
        value = measured[t.key]
        ok = ok and t.met(value)
        rows.append([t.name, t.wanted, t.show(value), verdict(t.met(value), bold=bold)])
    return rows, ok

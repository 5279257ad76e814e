"""One root exception, the diagnostics it carries, and the exit codes, all in one place."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_STALE = 1
EXIT_INVALID = 2


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one spec, at a position when the spec has one."""

    file: str
    line: int  # 1-based; 0 when the problem concerns the whole file
    col: int
    path: str  # dotted field path, "" for the whole document
    message: str
    snippet: str = ""

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{head}\n{self.snippet}" if self.snippet else head


class MlopsError(Exception):
    """Root of every error the compiler reports to a user; never shown as a traceback."""

    exit_code = EXIT_INVALID

    def report(self) -> str:
        return str(self)


class SpecError(MlopsError):
    """A spec (or several) failed to load or validate; carries every problem found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.path))
        super().__init__(self.report())

    def report(self) -> str:
        n = len(self.diagnostics)
        lines = [d.format() for d in self.diagnostics]
        lines.append(f"{n} problem{'s' if n != 1 else ''} found; nothing was written.")
        return "\n".join(lines)


class RenderError(MlopsError):
    """A template failed; names the template, its line and the artifact being rendered."""


class WriteConflict(MlopsError):
    """A generated file was edited by hand (or is not ours) and would be overwritten."""


class UsageError(MlopsError):
    """The command line asked for something impossible (no specs, unknown stage, ...)."""


def snippet(text: str, line: int, col: int, context: int = 1) -> str:
    """Numbered lines around `line` with a caret under `col`, as compilers print them."""
    rows = text.splitlines()
    if not 1 <= line <= len(rows):
        return ""
    first, last = max(1, line - context), min(len(rows), line + context)
    width = len(str(last))
    out = []
    for n in range(first, last + 1):
        out.append(f"  {n:>{width}} | {rows[n - 1]}")
        if n == line:
            out.append(f"  {' ' * width} | {' ' * max(col - 1, 0)}^")
    return "\n".join(out)


@functools.cache
def _resolved(folder: Path) -> Path:
    return folder.resolve()


def display_path(path: Path) -> str:
    """Paths in messages are relative to the working directory when they can be, and a
    control character in one is shown escaped, so each problem stays on its own line."""
    try:
        text = path.resolve().relative_to(_resolved(Path.cwd())).as_posix()
    except ValueError:
        text = path.as_posix()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return text.encode("unicode_escape").decode("ascii")
    return text

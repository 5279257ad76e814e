"""What every benchmark script prints beside its figures: the machine, the load, the library
versions, the commit measured, and Markdown tables for docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The folders whose local changes make a measurement differ from its commit.
MEASURED = ("runtime", "templates", "mlops_compiler")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(packages: Iterable[str], *, wrk: bool = False) -> str:
    found = []
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (missing)")
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
            found.append((out.stdout or out.stderr).split("[")[0].strip())
    return ", ".join(found)


def revision() -> str:
    """The commit measured, and whether the measured folders had local changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", *MEASURED], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    changed = (
        f" + local changes under {', '.join(m + '/' for m in MEASURED)}" if dirty.stdout else ""
    )
    return head.stdout.strip() + changed


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print(table(headers, rows))

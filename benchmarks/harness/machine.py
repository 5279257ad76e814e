"""What every benchmark prints beside its figures: the machine, the load, the library versions,
the commit measured; and the wait for a quiet machine."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from .proc import ROOT

# The folders whose local changes make a measurement differ from its commit.
MEASURED = ("runtime", "templates", "mlops_compiler")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return 0.0


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


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


def venv_versions(python: Path, packages: Iterable[str]) -> str:
    """`name version, ...` as the interpreter `python` sees them."""
    code = (
        "import importlib.metadata as m, sys\n"
        "out = []\n"
        "for n in sys.argv[1:]:\n"
        "    try: out.append(f'{n} {m.version(n)}')\n"
        "    except m.PackageNotFoundError: out.append(f'{n} (missing)')\n"
        "print(', '.join(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or proc.stderr.strip()[-200:]


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


def wait_quiet(limit: float, threshold: float = 1.0) -> None:
    """Wait up to `limit` seconds for the 1-minute load average to fall below `threshold`."""
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: 1-min load {os.getloadavg()[0]:.2f}", flush=True)
        time.sleep(30)
    load = os.getloadavg()[0]
    print(
        f"  1-min load {load:.2f}: {'quiet' if load < threshold else 'still busy, running anyway'}"
    )

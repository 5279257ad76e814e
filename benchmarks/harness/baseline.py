"""Before and after in one run: another commit's runtime/ beside the working tree's.

`extract_runtime` copies a git ref's `runtime/` tree (`git archive`, nothing checked out) into
a folder; a child process with that folder first on PYTHONPATH imports `mlops_runtime` from
it. `Side` is one of the two runtimes, `check_import` proves which one a child imports, and
`compare` prints the two sides' figures and their ratio now / before."""

from __future__ import annotations

import io
import statistics
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .proc import ROOT, BenchError, child_env, run_checked


@dataclass(frozen=True)
class Side:
    """One runtime to measure: its label, and the folder holding its `mlops_runtime`."""

    label: str
    runtime: Path  # the folder that holds mlops_runtime/, put first on PYTHONPATH

    def env(self, **extra: str) -> dict[str, str]:
        return child_env(PYTHONPATH=str(self.runtime), **extra)


def resolve(ref: str) -> str:
    """The full commit `ref` names in this checkout; BenchError if it names none."""
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise BenchError(f"`{ref}` names no commit in {ROOT}")
    return proc.stdout.strip()


def extract_runtime(ref: str, into: Path) -> Side:
    """`ref`'s runtime/ tree extracted under `into` (git archive): the side "before"."""
    commit = resolve(ref)
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "runtime/"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"git archive {commit} runtime/ failed: {proc.stderr.decode()[-2000:]}")
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as archive:
        archive.extractall(into, filter="data")
    runtime = into / "runtime"
    if not (runtime / "mlops_runtime" / "__init__.py").is_file():
        raise BenchError(f"{ref} ({commit[:10]}) has no runtime/mlops_runtime package")
    return Side(f"before ({ref}, {commit[:10]})", runtime.resolve())


def working_tree() -> Side:
    """The working tree's runtime/, local changes included: the side "now"."""
    return Side("now (working tree)", (ROOT / "runtime").resolve())


def check_import(python: str | Path, side: Side) -> None:
    """BenchError unless `python` with the side's environment imports its mlops_runtime."""
    proc = run_checked(
        [str(python), "-c", "import mlops_runtime; print(mlops_runtime.__file__)"],
        env=side.env(),
        timeout=120,
    )
    found = Path(proc.stdout.strip()).resolve()
    if not found.is_relative_to(side.runtime):
        raise BenchError(f"{side.label}: mlops_runtime imports from {found}, not {side.runtime}")


def order(sides: Sequence[Side], round_: int) -> list[Side]:
    """The sides in the order of round `round_` (0, 1, ...): reversed every other round, so
    neither side always runs first."""
    return list(sides) if round_ % 2 == 0 else list(sides)[::-1]


@dataclass(frozen=True)
class Figure:
    """A figure both sides report: its key, its column label, how to show it."""

    key: str
    label: str
    unit: str = ""
    digits: int = 2

    def show(self, value: float) -> str:
        return f"{value:,.{self.digits}f}{self.unit}"


def medians(runs: Sequence[Mapping[str, float]], figures: Sequence[Figure]) -> dict[str, float]:
    return {f.key: statistics.median(float(run[f.key]) for run in runs) for f in figures}


def compare(
    before: Mapping[str, float], now: Mapping[str, float], figures: Sequence[Figure]
) -> tuple[list[list[str]], dict[str, float]]:
    """Table rows (figure, before, now, now / before) and the ratios by key."""
    rows, ratios = [], {}
    for f in figures:
        ratio = now[f.key] / before[f.key] if before[f.key] else float("nan")
        ratios[f.key] = ratio
        rows.append([f.label, f.show(before[f.key]), f.show(now[f.key]), f"{ratio:.2f}x"])
    return rows, ratios

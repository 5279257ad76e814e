"""Every benchmark's `--quick` mode, run for real: it exits 0 and prints its comparison.

Each script runs as `python benchmarks/NAME.py --quick` in a subprocess, as a user runs it.
Beyond the exit code, the test reads the script's output: every target row it must print
(a Markdown table row with a verdict cell: pass, ok or MISSED) with a finite number
measured, and the script's ratio against the tool it is compared with, a positive finite
number. A MISSED target does not fail the test: a smoke run on a shared machine measures
nothing worth holding the project to; the full runs in docs/benchmarks.md do.

The scripts run one at a time (one xdist group): each loads both cores, and figures taken
while another benchmark runs mean nothing. The scripts that need wrk skip without it (fail
under CI=true): `tests.system_programs.require("wrk")`, as for the suite's other programs
(`scripts/test-tools` installs it); the two
feature-store scripts get the Feast virtualenv the feature-store tests use (made once and
cached, before the script's clock starts). monitor_speed.py's quick mode leaves Evidently out
when its virtualenv is not made yet, and says so; the test then checks the monitor's side.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system_programs import require

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
TIMEOUT_S = 240
VERDICTS = ("pass", "ok", "MISSED", "**MISSED**")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("benchmarks-quick")]


@dataclass(frozen=True)
class Quick:
    """A script's quick run and what its output must hold."""

    script: str
    targets: tuple[str, ...]  # the start of each target row's first cell
    ratio: re.Pattern[str]  # group 1: the ratio against the compared tool
    wrk: bool = False
    feast: bool = False
    # When the output says `peer_skipped` (the compared tool left out), every `alone` must
    # match instead of the targets and the ratio; the first's group 1 is a figure of the
    # project's own side, a positive finite number.
    peer_skipped: str | None = None
    alone: tuple[re.Pattern[str], ...] = ()


def number(text: str) -> float:
    found = NUMBER.search(text)
    assert found is not None, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


def target_rows(stdout: str) -> dict[str, tuple[str, str]]:
    """{first cell: (the cells before the verdict, verdict)} of every table row with a
    verdict cell (pass, ok or MISSED; not always the last: compile_speed.py adds columns)."""
    rows = {}
    for line in stdout.splitlines():
        if not (line.startswith("| ") and line.endswith(" |")):
            continue
        cells = [c.strip() for c in line[2:-2].split(" | ")]
        at = next((i for i, c in enumerate(cells[1:], 1) if c in VERDICTS), None)
        if at is not None and at >= 2:
            rows[cells[0]] = (" | ".join(cells[1:at]), cells[at])
    return rows


QUICK = (
    Quick(
        "compile_speed.py",
        ("fresh build, 10 specs", "no-op rebuild, 10 specs"),
        re.compile(r"ratio 10 specs / 1 spec \(of the means\): ([\d.]+)x"),
    ),
    Quick(
        "train_speed.py",
        ("whole runs, fastest of 1", "`training_gate.validate_frame` (whole gate)"),
        re.compile(r"^\| whole runs, fastest of 1 \|[^|]+\|[^|]+\| ([\d.]+)x \|", re.M),
    ),
    Quick(
        "serve_speed.py",
        ("generated / MLflow throughput", "generated /predict req/s", "generated /predict p99"),
        re.compile(r"^\| generated / MLflow throughput \| [^|]+ \| ([\d,.]+)x \|", re.M),
        wrk=True,
    ),
    Quick(
        "rollback_speed.py",
        ("decision → first answer from the previous version",),
        re.compile(r"^\| median \|.*\| \*\*([\d.]+)x\*\* \|", re.M),
        wrk=True,
    ),
    Quick(
        "materialize_speed.py",
        ("ours (Parquet source) / Feast, medians",),
        re.compile(r"^\| ours \(Parquet source\) / Feast, medians \| [^|]+ \| ([\d.]+)x \|", re.M),
        feast=True,
    ),
    Quick(
        "monitor_speed.py",
        ("Evidently wall / monitor wall", "per-column verdicts, same test and threshold"),
        re.compile(r"^\| Evidently wall / monitor wall \| [^|]+ \| ([\d.]+)x \|", re.M),
        peer_skipped="Evidently: skipped (--quick",
        # The monitor's wall time at 10,000 rows; its verdicts must match the drift put in.
        alone=(
            re.compile(r"^\| 10,000 \| [^|]+ \| ([\d.]+) s \|", re.M),
            re.compile(r"^\| 10,000 \| monitor \| [^|]+ \| all right \|", re.M),
        ),
    ),
    Quick(
        "feature_lookup_speed.py",
        ("online lookup p99 cost, c16",),
        re.compile(r"^\| c16 \|[^|]+\|[^|]+\|[^|]+\| ([\d.]+)x \|", re.M),
        wrk=True,
        feast=True,
    ),
    Quick(
        "score_speed.py",
        ("breast-cancer, 20,000 rows: rows/s ours / bare predict",),
        re.compile(r"^\| breast-cancer \| 20,000 \|[^|]+\|[^|]+\| ([\d.]+)x \|", re.M),
    ),
)


@pytest.mark.parametrize("quick", QUICK, ids=[q.script for q in QUICK])
def test_quick_mode(quick: Quick) -> None:
    if quick.wrk:
        require("wrk")  # skips without it, fails under CI=true
    if quick.feast:
        from tests.feature_store.feast_env import feast_python

        feast_python()  # made and cached outside the script's time
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / quick.script), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    seconds = time.monotonic() - started
    output = (
        f"{quick.script} --quick, {seconds:.0f} s:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    )
    assert proc.returncode == 0, output

    check_output(quick, proc.stdout, output)


def check_output(quick: Quick, stdout: str, output: str) -> None:
    """What the run printed holds its targets and its ratio (see the module's docstring)."""
    if quick.peer_skipped is not None and quick.peer_skipped in stdout:
        found = [pattern.search(stdout) for pattern in quick.alone]
        missing = [p.pattern for p, m in zip(quick.alone, found, strict=True) if m is None]
        assert not missing, f"the project's side alone: no {missing}:\n{output}"
        assert found and found[0] is not None
        figure = float(found[0].group(1))
        assert math.isfinite(figure) and figure > 0, output
        return

    rows = target_rows(stdout)
    for name in quick.targets:
        hits = [cells for first, cells in rows.items() if first.startswith(name)]
        assert hits, f"no target row `{name}` in the output ({sorted(rows)}):\n{output}"
        measured = [number(c) for c in hits[0][0].split(" | ") if NUMBER.search(c)]
        assert measured, f"target `{name}`: no figure in {hits[0]}:\n{output}"
        assert all(math.isfinite(x) for x in measured), f"target `{name}`: {hits[0]}"

    match = quick.ratio.search(stdout)
    assert match is not None, f"no ratio line ({quick.ratio.pattern}):\n{output}"
    value = float(next(g for g in match.groups() if g is not None).replace(",", ""))
    assert math.isfinite(value) and value > 0, f"ratio {value}:\n{output}"

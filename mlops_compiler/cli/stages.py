"""`mlops run`: execute a stage command of a generated project from its manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlops_compiler.errors import UsageError
from mlops_compiler.pipeline import build, compile_specs


def run_stage(spec: Path, stage: str, args: list[str], out: Path, python: str | None) -> int:
    compiled = compile_specs([spec], out)
    if len(compiled) != 1:
        raise UsageError("mlops run takes exactly one spec")
    item = compiled[0]
    build(compiled)  # writes only what is stale, so an up-to-date project is left untouched
    commands = item.plan.commands
    if stage not in commands:
        known = ", ".join(sorted(commands)) or "none"
        raise UsageError(
            f"level {item.plan.level} of {item.plan.name!r} has no stage {stage!r} (stages: {known})"
        )
    argv = list(commands[stage])
    if argv and argv[0] == "python":
        argv[0] = python or sys.executable
    # Output streams straight through: the stage owns the terminal while it runs.
    return subprocess.call([*argv, *args], cwd=item.plan.out_dir)

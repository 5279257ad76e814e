"""`mlops run`: execute a stage command of a generated project from its manifest."""

from __future__ import annotations

import difflib
import os
import shutil
import sys
from pathlib import Path

from mlops_compiler.errors import UsageError
from mlops_compiler.pipeline import build, compile_specs


def run_stage(spec: Path, stage: str, args: list[str], out: Path, python: str | None) -> int:
    """Build if stale, then become the stage: the process is replaced by it (exec), so the
    signals a supervisor sends (SIGTERM from docker, systemd, Kubernetes; Ctrl-C) reach the
    stage itself and nothing is left holding its port. Returns only if exec is impossible."""
    compiled = compile_specs([spec], out)
    if len(compiled) != 1:
        raise UsageError("mlops run takes exactly one spec")
    item = compiled[0]
    build(compiled)  # writes only what is stale, so an up-to-date project is left untouched
    commands = item.plan.commands
    if stage not in commands:
        raise UsageError(unknown_stage(stage, item.plan.level, item.plan.name, list(commands)))
    argv = [*commands[stage], *args]
    if argv and argv[0] == "python":
        argv[0] = python or sys.executable
    executable = shutil.which(argv[0]) or argv[0]
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(item.plan.out_dir)
    try:
        os.execv(executable, argv)
    except OSError as exc:
        raise UsageError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    return 0  # pragma: no cover - execv does not return


def unknown_stage(stage: str, level: int, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(stage, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"level {level} of {name!r} has no stage {stage!r}{hint} "
        f"(stages: {', '.join(sorted(known)) or 'none'})"
    )

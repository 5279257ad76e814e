"""The command-line options every benchmark shares, and the temp dir it works in."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


def parser(doc: str | None, *, quick: str) -> argparse.ArgumentParser:
    """The script's parser: its docstring's first paragraph, and --quick described by `quick`."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"smoke run in seconds: {quick}")
    return p


def add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir and print it")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="first wait up to this many s for the 1-minute load to drop below --quiet-load",
    )
    p.add_argument("--quiet-load", type=float, default=1.0, help="1-min load that is quiet")


def add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runtime", type=Path, help="import mlops_runtime from this folder (a checkout's runtime/)"
    )


def command_line(script: str, argv: list[str] | None) -> str:
    """How the run was started, for the record."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"benchmarks/{script}", *args])


@contextlib.contextmanager
def workdir(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A temp dir, removed afterwards unless `keep`."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def write_json(path: Path | None, results: Any) -> None:
    if path is None:
        return
    data = asdict(results) if is_dataclass(results) and not isinstance(results, type) else results
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")

"""The shipped example and the demo's working folder."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from mlops_compiler.errors import UsageError

EXAMPLE_SPEC = "breast-cancer.mlops.yaml"
EXAMPLE_DATA = ("data/breast_cancer.csv",)
# Marks a folder the demo made, so a rerun may empty it and nothing else is ever deleted.
MARKER = ".mlops-demo"


@functools.cache
def examples_dir() -> Path:
    """The example ships inside the wheel as mlops_compiler/examples (see pyproject); a
    source checkout reads specs/ directly."""
    packaged = Path(__file__).resolve().parent.parent / "examples"
    if (packaged / EXAMPLE_SPEC).is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "specs"


def prepare_workdir(workdir: Path) -> None:
    """An empty folder for this run: a previous demo's folder is emptied, anything else that
    is not empty is refused rather than touched."""
    if workdir.exists():
        if not workdir.is_dir():
            raise UsageError(f"{workdir} exists and is not a folder; pass another --out")
        if any(workdir.iterdir()) and not (workdir / MARKER).is_file():
            raise UsageError(
                f"{workdir} is not empty and was not made by mlops demo; pass another --out"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by mlops demo; the next run empties this folder\n")
    _own_repository(workdir)


def _own_repository(workdir: Path) -> None:
    """The folder is a repository of its own, so the files a spec writes at a repository's top
    (CI workflows) land inside it, never in the repository the demo was started from."""
    git = shutil.which("git")
    if git is not None:
        made = subprocess.run([git, "init", "-q", str(workdir)], capture_output=True, check=False)
        if made.returncode == 0:
            return
    (workdir / ".git").mkdir(exist_ok=True)  # what the compiler looks for, without git


def copy_example(workdir: Path) -> Path:
    """The shipped example spec and its data, copied where the demo may write beside them."""
    source = examples_dir()
    for name in (EXAMPLE_SPEC, *EXAMPLE_DATA):
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    return workdir / EXAMPLE_SPEC

"""The demo's folder: a repository of its own, so a demo started in a user's repository writes
nothing outside it (a fresh clone of this repository ran into its own committed workflows)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_compiler.demo.example import MARKER, copy_example, prepare_workdir
from mlops_compiler.pipeline import build, compile_specs
from tests.system_programs import require


def test_a_demo_in_a_repository_keeps_its_files_inside_its_folder(tmp_path: Path) -> None:
    subprocess.run([require("git"), "init", "-q", str(tmp_path)], check=True)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "mlops-breast-cancer-ci.yml").write_text("the user's own\n")
    loop = tmp_path / "mlops-demo"
    prepare_workdir(loop)
    build(compile_specs([copy_example(loop)], loop / "generated"))
    assert (loop / ".github/workflows/mlops-breast-cancer-ci.yml").is_file()
    assert [p.name for p in workflows.iterdir()] == ["mlops-breast-cancer-ci.yml"]
    assert (workflows / "mlops-breast-cancer-ci.yml").read_text() == "the user's own\n"


def test_a_rerun_empties_only_its_own_folder(tmp_path: Path) -> None:
    loop = tmp_path / "mlops-demo"
    prepare_workdir(loop)
    (loop / "old.txt").write_text("from the last run\n")
    prepare_workdir(loop)
    assert sorted(p.name for p in loop.iterdir()) == sorted([".git", MARKER])

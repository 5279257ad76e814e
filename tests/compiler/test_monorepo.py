"""A monorepo of many specs compiles on two processes exactly as it would on one."""

from __future__ import annotations

from pathlib import Path

from mlops_compiler import pipeline
from tests.compiler.conftest import MINIMAL, run_mlops

COUNT = pipeline.PARALLEL_MIN_SPECS + 8


def monorepo(root: Path) -> list[Path]:
    specs = []
    for i in range(COUNT):
        folder = root / f"team{i:02d}"
        folder.mkdir(parents=True)
        (folder / "mlops.yaml").write_text(MINIMAL.replace("name: churn", f"name: churn-{i:02d}"))
        specs.append(folder / "mlops.yaml")
    return specs


def test_parallel_compile_gives_the_serial_bytes(tmp_path: Path) -> None:
    specs = monorepo(tmp_path)
    out = tmp_path / "generated"
    parallel = pipeline.compile_specs([tmp_path], out)
    serial = [o.compiled for o in pipeline._compile_all(specs, out, None, True)]
    assert len(parallel) == COUNT
    assert [c.plan.name for c in parallel] == [f"churn-{i:02d}" for i in range(COUNT)]
    assert [c.files for c in parallel] == [c.files for c in serial if c is not None]
    assert dict(parallel[-1].plan.context) == dict(serial[-1].plan.context)  # type: ignore[union-attr]


def test_problems_from_both_processes_are_all_reported(tmp_path: Path) -> None:
    specs = monorepo(tmp_path)
    specs[1].write_text(specs[1].read_text() + "levle: 2\n")  # first half
    specs[-1].write_text(specs[-1].read_text().replace("type: int", "type: integer"))
    # A name clash across the two halves: the later spec is the one reported.
    specs[-2].write_text(specs[-2].read_text().replace(f"churn-{COUNT - 2:02d}", "churn-00"))
    result = run_mlops("build", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "team01/mlops.yaml" in result.stderr
    assert f"team{COUNT - 1:02d}/mlops.yaml" in result.stderr and "integer" in result.stderr
    assert f"team{COUNT - 2:02d}/mlops.yaml" in result.stderr
    assert "name 'churn-00' is also used by team00/mlops.yaml" in result.stderr
    assert "3 problems found; nothing was written." in result.stderr
    assert not (tmp_path / "generated").exists()

"""The command line as users meet it: plan, run, schema, version, and a light import path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlops_compiler import __version__
from tests.compiler.conftest import REPO, run_mlops


def test_version() -> None:
    result = run_mlops("--version", cwd=REPO)
    assert result.returncode == 0 and f"version {__version__}" in result.stdout


def test_help_and_compile_path_import_no_heavy_library(minimal_spec: Path) -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mlops_compiler.cli.main import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "light = set(sys.modules)\n"
        "r = CliRunner().invoke(cli, ['build', 'mlops.yaml', '--level', '3'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = {'sklearn', 'pandas', 'numpy', 'scipy', 'mlflow', 'pandera', 'pyarrow'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
        "print('pydantic' in light, 'jinja2' in light)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=minimal_spec.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "False False"]


def test_plan_marks_every_file_and_prints_the_level_table(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    first = run_mlops("plan", "mlops.yaml", cwd=cwd)
    assert first.returncode == 0, first.stderr
    assert "yes training-plain" not in first.stdout and "yes training " in first.stdout
    assert "no  training-plain   L0-L0" in first.stdout
    assert "+ added     config.json" in first.stdout
    assert not (cwd / "generated").exists(), "plan writes nothing"
    assert run_mlops("build", "mlops.yaml", "--level", "2", cwd=cwd).returncode == 0
    again = run_mlops("plan", "mlops.yaml", "--level", "2", cwd=cwd)
    assert "  unchanged config.json" in again.stdout
    lower = run_mlops("plan", "mlops.yaml", "--level", "1", cwd=cwd)
    assert "- removed   Dockerfile" in lower.stdout
    assert "~ changed   config.json" in lower.stdout


def test_schema_command_matches_the_committed_schema() -> None:
    result = run_mlops("schema", cwd=REPO)
    committed = (REPO / "schema/mlops.schema.json").read_text()
    assert result.stdout == committed, "run `python scripts/regenerate.py`"
    schema = json.loads(committed)
    assert {"apiVersion", "name", "data", "model"} <= set(schema["required"])


def test_example_specs_point_editors_at_the_schema() -> None:
    for spec in sorted((REPO / "specs").glob("*.yaml")):
        assert spec.read_text().startswith(
            "# yaml-language-server: $schema=../schema/mlops.schema.json\n"
        ), spec


def test_run_builds_when_stale_and_returns_the_stage_exit_code(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    # The data file does not exist: training stops at its contract gate with exit code 3.
    result = run_mlops(
        "run", "mlops.yaml", "train", cwd=cwd, env={"MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    assert (cwd / "generated/churn/mlops-manifest.json").exists(), "run builds first"
    assert result.returncode == 3, result.stdout + result.stderr
    assert (cwd / "generated/churn/reports/contract_report.json").is_file()
    unknown = run_mlops("run", "mlops.yaml", "serve-forever", cwd=cwd)
    assert unknown.returncode == 2
    assert (
        "no stage 'serve-forever'" in unknown.stderr
        and "lineage, monitor, serve, train" in unknown.stderr
    )


def test_folder_argument_finds_every_spec(tmp_path: Path, minimal_spec: Path) -> None:
    nested = tmp_path / "models/a"
    nested.mkdir(parents=True)
    (nested / "mlops.yaml").write_text(minimal_spec.read_text().replace("name: churn", "name: a"))
    (tmp_path / "models/b.mlops.yaml").write_text(
        minimal_spec.read_text().replace("name: churn", "name: b")
    )
    (tmp_path / "models/notes.yaml").write_text("not: a spec\n")
    result = run_mlops("validate", "models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ok: a (level 1)", "ok: b (level 1)"]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run_mlops("build", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr

"""The command line as users meet it: plan, run, rollback, history, schema, version, and a
light import path."""

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
    assert "no  training-plain     L0-L0" in first.stdout
    assert "no  automatic-rollback L2-L3" in first.stdout
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
    # The data file does not exist: training says so and exits with the usage code, 2.
    result = run_mlops(
        "run", "mlops.yaml", "train", cwd=cwd, env={"MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    assert (cwd / "generated/churn/mlops-manifest.json").exists(), "run builds first"
    assert result.returncode == 2, result.stdout + result.stderr
    assert "training data not found" in result.stderr
    unknown = run_mlops("run", "mlops.yaml", "serve-forever", cwd=cwd)
    assert unknown.returncode == 2
    assert (
        "no stage 'serve-forever'" in unknown.stderr
        and "history, lineage, monitor, predict, rollback, score, serve, train" in unknown.stderr
    )
    typo = run_mlops("run", "mlops.yaml", "trian", cwd=cwd)
    assert typo.returncode == 2 and "did you mean 'train'?" in typo.stderr, typo.stderr


def test_run_help_lists_every_stage() -> None:
    from mlops_compiler.plan.levels import STAGE_ORDER

    shown = run_mlops("run", "--help", cwd=REPO).stdout
    listed = [w for line in shown.splitlines() for w in line.replace(",", " ").split()]
    assert [s for s in STAGE_ORDER if s not in listed] == [], shown


def fake_interpreter(tmp_path: Path, exit_code: int) -> Path:
    """Stands in for the project's Python: prints the argv and folder it was given."""
    script = tmp_path / "fake-python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}))\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(0o755)
    return script


def test_help_lists_the_rollback_and_history_commands() -> None:
    result = run_mlops("--help", cwd=REPO)
    assert result.returncode == 0
    commands = {ln.split()[0] for ln in result.stdout.split("Commands:")[1].splitlines() if ln}
    assert {"rollback", "history", "run", "build"} <= commands


def test_rollback_forwards_its_options_to_the_stage_and_returns_its_exit_code(
    minimal_spec: Path,
) -> None:
    cwd = minimal_spec.parent
    python = str(fake_interpreter(cwd, exit_code=4))
    plain = run_mlops("rollback", "mlops.yaml", "--python", python, cwd=cwd)
    assert plain.returncode == 4, plain.stderr
    said = json.loads(plain.stdout)
    assert said["argv"] == ["-m", "mlops_runtime", "rollback"]
    assert Path(said["cwd"]) == (cwd / "generated/churn").resolve(), "runs in the project"
    chosen = run_mlops(
        "rollback", "mlops.yaml", "--to", "3", "--reason", "bad p99 after deploy",
        "--python", python, cwd=cwd,
    )  # fmt: skip
    assert json.loads(chosen.stdout)["argv"] == [
        "-m", "mlops_runtime", "rollback", "--to", "3", "--reason", "bad p99 after deploy",
    ]  # fmt: skip


def test_history_forwards_json_to_the_stage(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    python = str(fake_interpreter(cwd, exit_code=0))
    table = run_mlops("history", "mlops.yaml", "--python", python, cwd=cwd)
    assert table.returncode == 0, table.stderr
    assert json.loads(table.stdout)["argv"] == ["-m", "mlops_runtime", "history"]
    as_json = run_mlops("history", "mlops.yaml", "--json", "--out", "elsewhere", "--python", python, cwd=cwd)  # fmt: skip
    said = json.loads(as_json.stdout)
    assert said["argv"] == ["-m", "mlops_runtime", "history", "--json"]
    assert Path(said["cwd"]) == (cwd / "elsewhere/churn").resolve()


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

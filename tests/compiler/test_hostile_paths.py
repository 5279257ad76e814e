"""Names and links a build must not carry into generated files or write through: each one a
spec problem (exit 2, `file:line:col: field: message`), with nothing written anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.compiler.conftest import MINIMAL, run_mlops


def files_under(*roots: Path) -> list[str]:
    return sorted(str(p) for root in roots if root.exists() for p in root.rglob("*"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose builds write CI workflows at its top (level 3 emits them)."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def spec_in(
    folder: Path, name: str = "mlops.yaml", extra: str = "level: 3\nci: {provider: github}\n"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(MINIMAL.replace("name: churn\n", f"name: churn\n{extra}"))
    return path


def test_a_newline_in_the_spec_file_name_is_refused_before_it_reaches_requirements(
    repo: Path,
) -> None:
    # The red-team case: the header comment of requirements.txt took the name's second line
    # as a requirement of its own, and pip installed it.
    spec_in(repo / "specs", "churn\nevil==1.0.mlops.yaml")
    result = run_mlops("build", "specs/churn\nevil==1.0.mlops.yaml", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "name: the spec's path 'specs/churn\\nevil==1.0.mlops.yaml' holds a control" in (
        result.stderr
    )
    # Where the spec's name is, as every problem says; the file's name escaped in it.
    assert "\nspecs/churn\\nevil==1.0.mlops.yaml:2:7: name: the spec's path" in result.stderr
    assert files_under(repo / "generated", repo / ".github") == []


@pytest.mark.parametrize(
    ("spec_folder", "out"),
    [("x${{ github.token }}", "generated"), ("specs", "g${{ secrets.DEPLOY_KEY }}")],
    ids=["spec-folder", "out"],
)
def test_a_workflow_expression_in_a_folder_name_is_refused(
    repo: Path, spec_folder: str, out: str
) -> None:
    # GitHub expands ${{ }} inside the quoted `run:` lines the workflows hold these paths in.
    spec_in(repo / spec_folder)
    result = run_mlops("build", f"{spec_folder}/mlops.yaml", "--out", out, cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "holds '${{', which GitHub Actions expands as an expression" in result.stderr
    assert files_under(repo / out, repo / ".github") == []


def test_a_project_folder_linked_out_of_the_output_root_is_not_written_through(
    repo: Path, tmp_path: Path
) -> None:
    spec_in(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "generated").mkdir()
    (repo / "generated" / "churn").symlink_to(elsewhere)
    result = run_mlops("build", "mlops.yaml", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert f"is a link to {elsewhere}, outside {repo / 'generated'}" in result.stderr
    assert files_under(elsewhere, repo / ".github") == []


def test_a_ci_folder_linked_out_of_the_repository_is_not_written_through(
    repo: Path, tmp_path: Path
) -> None:
    spec_in(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".github").mkdir()
    (repo / ".github" / "workflows").symlink_to(elsewhere)
    result = run_mlops("build", "mlops.yaml", cwd=repo)
    assert result.returncode == 2, result.stderr
    assert f".github/workflows is a link to {elsewhere}, outside {repo}" in result.stderr
    assert files_under(elsewhere, repo / "generated") == []


def test_links_the_user_chose_still_work(repo: Path, tmp_path: Path) -> None:
    """The output root named on the command line may be a link, and a CI folder may link to
    another folder of the same repository."""
    spec_in(repo)
    (repo / "ci" / "workflows").mkdir(parents=True)
    (repo / ".github").mkdir()
    (repo / ".github" / "workflows").symlink_to(repo / "ci" / "workflows")
    result = run_mlops("build", "mlops.yaml", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert any(p.name.startswith("mlops-churn-") for p in (repo / "ci/workflows").iterdir())
    target = tmp_path / "build-output"
    target.mkdir()
    (repo / "out").symlink_to(target)
    result = run_mlops("build", "mlops.yaml", "--out", "out", "--level", "1", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert (target / "churn" / "config.json").is_file()


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("/var/tmp/predictions", "must be relative to the project folder, not absolute"),
        ("../../../home/user/.ssh", "must stay inside the project folder (no '..')"),
        ("logs/../../escape", "must stay inside the project folder (no '..')"),
        ("logs\\n\\nevil", "holds a control character"),
        ("./", "must name a folder inside the project folder"),
    ],
)
def test_the_prediction_log_folder_stays_inside_the_project(
    tmp_path: Path, folder: str, message: str
) -> None:
    # Copied as-is into config.json, it was where the server wrote every request.
    spec = spec_in(tmp_path, extra=f'serving:\n  prediction_log:\n    dir: "{folder}"\n')
    result = run_mlops("build", spec.name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"serving.prediction_log.dir: {message}" in result.stderr
    assert not (tmp_path / "generated").exists()


def test_a_prediction_log_folder_inside_the_project_is_kept(tmp_path: Path) -> None:
    spec = spec_in(tmp_path, extra="serving:\n  prediction_log:\n    dir: logs/predictions\n")
    result = run_mlops("build", spec.name, "--level", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "generated/churn/config.json").read_text()
    assert '"logs/predictions"' in config

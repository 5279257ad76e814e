"""The project's own code passes its linters and strict typing; its indexes list what is there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_lint() -> None:
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docs_index_lists_every_page_and_every_link_resolves() -> None:
    index = (REPO / "docs/README.md").read_text()
    linked = set(re.findall(r"\]\(([^)#]+\.md)\)", index))
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert pages - linked == set(), "pages docs/README.md does not list"
    assert linked - pages == set(), "links of docs/README.md to no page"


def test_every_runtime_package_is_in_the_runtime_readme() -> None:
    readme = (REPO / "runtime/README.md").read_text()
    docstring = (REPO / "runtime/mlops_runtime/__init__.py").read_text()
    packages = [
        p.name for p in (REPO / "runtime/mlops_runtime").iterdir() if (p / "__init__.py").is_file()
    ]
    assert packages
    for name in packages:
        assert f"`{name}/`" in readme, name
        assert f"    {name}/" in docstring, name

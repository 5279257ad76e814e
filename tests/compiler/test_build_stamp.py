"""A rebuild with unchanged inputs skips compiling, and says exactly what compiling would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_compiler.write.stamp import STAMP
from mlops_compiler.write.transaction import JOURNAL
from tests.compiler.conftest import run_mlops

# A declared section the level does not emit, so the build prints a warning to replay.
WARNED = "\nci: {provider: github}\n"


def _stamps(root: Path) -> dict[str, dict[str, object]]:
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob(f"*/{STAMP}")}


def _build(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlops("build", "specs", *args, cwd=cwd)


def _compiled(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The same build with the stamps removed first: the full path's answer."""
    for stamp in (cwd / "generated").glob(f"*/{STAMP}"):
        stamp.unlink()
    return _build(cwd, *args)


def test_stamped_rebuild_prints_what_compiling_prints(workspace: Path) -> None:
    spec = workspace / "specs/wine.mlops.yaml"
    spec.write_text(spec.read_text() + WARNED)
    assert _build(workspace).returncode == 0
    assert set(_stamps(workspace / "generated")) == {
        "breast-cancer",
        "churn",
        "diabetes",
        "penguins",
        "wine",
    }
    fast = _build(workspace)
    full = _compiled(workspace)
    assert fast.returncode == full.returncode == 0
    assert "warning:" in full.stderr and "ci" in full.stderr
    assert (fast.stdout, fast.stderr) == (full.stdout, full.stderr)


def test_stamped_rebuild_imports_neither_pydantic_nor_jinja(workspace: Path) -> None:
    assert _build(workspace).returncode == 0
    probe = (
        "import sys\n"
        "from mlops_compiler.cli.main import main\n"
        "sys.argv = ['mlops', 'build', 'specs']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pydantic', 'jinja2', 'yaml') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=workspace, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "change",
    ["spec", "hand-edit", "deleted-file", "journal", "level", "stamp-garbage", "compiler"],
)
def test_any_changed_input_takes_the_full_path(
    workspace: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _build(workspace).returncode == 0
    project = workspace / "generated/diabetes"
    args: tuple[str, ...] = ()
    expected = 0
    if change == "spec":
        spec = workspace / "specs/diabetes.mlops.yaml"
        spec.write_text(spec.read_text() + "# a comment changes the spec's digest\n")
    elif change == "hand-edit":
        (project / "README.md").write_text("mine\n")
        expected = 2  # the full path finds the edit and refuses
    elif change == "deleted-file":
        (project / "config.json").unlink()
    elif change == "journal":
        (project / JOURNAL).write_text(json.dumps({"ops": []}))
    elif change == "level":
        args = ("--level", "0")
    elif change == "stamp-garbage":
        (project / STAMP).write_text("{not json")
    elif change == "compiler":
        stamp = json.loads((project / STAMP).read_text())
        stamp["key"] = "0" * 64  # what any change to the compiler's files or templates does
        (project / STAMP).write_text(json.dumps(stamp))
    result = _build(workspace, *args)
    assert result.returncode == expected, result.stderr
    if expected == 0:
        # The full path ran: it rewrote what was missing or reported the change.
        assert (project / "config.json").exists()
        assert not (project / JOURNAL).exists()
        if change in ("spec", "deleted-file", "level"):
            line = next(s for s in result.stdout.splitlines() if s.startswith("diabetes:"))
            assert "added" in line or "changed," in line, line
        assert json.loads((project / STAMP).read_text())["version"] == 1
    else:
        assert "README.md" in result.stderr and (project / "README.md").read_text() == "mine\n"


def test_check_trusts_a_fresh_stamp_and_never_writes_one(workspace: Path) -> None:
    assert _build(workspace, "--check").returncode == 1  # nothing built yet
    assert not (workspace / "generated").exists()
    assert _build(workspace).returncode == 0
    for stamp in (workspace / "generated").glob(f"*/{STAMP}"):
        stamp.unlink()
    assert _build(workspace, "--check").returncode == 0
    assert _stamps(workspace / "generated") == {}
    assert _build(workspace).returncode == 0
    assert _build(workspace, "--check").returncode == 0
    (workspace / "generated/wine/README.md").write_text("mine\n")
    stale = _build(workspace, "--check")
    assert stale.returncode == 1 and "README.md" in stale.stderr


def test_compiler_digest_covers_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    from mlops_compiler.render import locations
    from mlops_compiler.write import stamp

    before = stamp.compiler_digest()
    copy = tmp_path / "templates"
    shutil.copytree(locations.templates_dir(), copy)
    (copy / "project/README.md.jinja").write_text("changed\n")
    monkeypatch.setattr(locations, "templates_dir", lambda: copy)
    stamp.compiler_digest.cache_clear()
    try:
        assert stamp.compiler_digest() != before
    finally:
        stamp.compiler_digest.cache_clear()

"""Writes are atomic, manifest-tracked, never silently overwrite a person's edits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_compiler.pipeline import build, compile_specs
from mlops_compiler.write import transaction
from mlops_compiler.write.transaction import JOURNAL, Op, apply
from tests.compiler.conftest import run_mlops


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_hand_edited_file_stops_the_build_until_force(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    readme = cwd / "generated/churn/README.md"
    readme.write_text(readme.read_text() + "my notes\n")
    minimal_spec.write_text(
        minimal_spec.read_text().replace("name: churn", "name: churn\nlevel: 1\ndescription: new")
    )
    before = snapshot(cwd / "generated")
    result = run_mlops("build", "mlops.yaml", cwd=cwd)
    assert result.returncode == 2
    assert "generated/churn/README.md" in result.stderr and "--force" in result.stderr
    assert snapshot(cwd / "generated") == before, "a refused build must write nothing"
    forced = run_mlops("build", "mlops.yaml", "--force", cwd=cwd)
    assert forced.returncode == 0
    assert "my notes" not in readme.read_text() and "new" in readme.read_text()


def test_unowned_file_in_the_way_is_not_overwritten(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    target = cwd / "generated/churn/README.md"
    target.parent.mkdir(parents=True)
    target.write_text("someone else's file\n")
    result = run_mlops("build", "mlops.yaml", cwd=cwd)
    assert result.returncode == 2
    assert target.read_text() == "someone else's file\n"


def test_dropped_files_are_removed_only_when_unchanged(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    assert run_mlops("build", "mlops.yaml", "--level", "2", cwd=cwd).returncode == 0
    out = cwd / "generated/churn"
    assert (out / "Dockerfile").exists()
    edited = out / ".dockerignore"
    edited.write_text(edited.read_text() + "# kept by hand\n")
    result = run_mlops("build", "mlops.yaml", "--level", "1", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert not (out / "Dockerfile").exists()
    assert edited.exists() and "kept by hand" in edited.read_text()
    assert "kept .dockerignore" in result.stdout
    manifest = json.loads((out / "mlops-manifest.json").read_text())
    assert "Dockerfile" not in manifest["files"]


def test_check_reports_stale_and_missing(minimal_spec: Path) -> None:
    cwd = minimal_spec.parent
    missing = run_mlops("build", "--check", "mlops.yaml", cwd=cwd)
    assert missing.returncode == 1 and "added: README.md" in missing.stderr
    assert not (cwd / "generated").exists()
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    assert run_mlops("build", "--check", "mlops.yaml", cwd=cwd).returncode == 0
    minimal_spec.write_text(minimal_spec.read_text() + "description: changed\n")
    stale = run_mlops("build", "--check", "mlops.yaml", cwd=cwd)
    assert stale.returncode == 1 and "changed: README.md" in stale.stderr
    assert "mlops build" in stale.stderr


def test_exception_mid_write_leaves_previous_output_intact(
    minimal_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(minimal_spec.parent)
    out = Path("generated")
    build(compile_specs([minimal_spec], out))
    before = snapshot(out)
    minimal_spec.write_text(minimal_spec.read_text() + "description: second build\n")
    compiled = compile_specs([minimal_spec], out, level=0)
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src: object, dst: object) -> None:
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(transaction.os, "replace", failing_replace)
    with pytest.raises(OSError):
        build(compiled)
    monkeypatch.setattr(transaction.os, "replace", real_replace)
    assert calls["n"] >= 6
    assert snapshot(out) == before


KILLER = """
import os, signal, sys
from pathlib import Path
from mlops_compiler.write import transaction
from mlops_compiler.pipeline import build, compile_specs
real = os.replace
count = {"n": 0}
def replace(src, dst):
    count["n"] += 1
    if count["n"] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
transaction.os.replace = replace
build(compile_specs([Path("mlops.yaml")], Path("generated"), level=0))
"""


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_killed_build_is_rolled_back_by_the_next(minimal_spec: Path, kill_at: int) -> None:
    cwd = minimal_spec.parent
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    before = snapshot(cwd / "generated")
    minimal_spec.write_text(minimal_spec.read_text() + "description: second build\n")
    killed = subprocess.run([sys.executable, "-c", KILLER, str(kill_at)], cwd=cwd, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (cwd / "generated/churn" / JOURNAL).exists()
    # The next command that writes restores the previous output before anything else.
    assert transaction.recover(cwd / "generated/churn")
    assert snapshot(cwd / "generated") == before
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    assert "second build" in (cwd / "generated/churn/README.md").read_text()


def test_apply_refuses_nothing_and_prunes_empty_folders(tmp_path: Path) -> None:
    apply(tmp_path, [Op("a/b/c.txt", b"x")])
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"x"
    apply(tmp_path, [Op("a/b/c.txt", None)])
    assert not (tmp_path / "a").exists()
    assert not list(tmp_path.iterdir())


def test_nothing_is_written_outside_out_even_through_a_tampered_manifest(
    minimal_spec: Path, tmp_path: Path
) -> None:
    cwd = minimal_spec.parent
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    manifest_path = cwd / "generated/churn/mlops-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    import hashlib

    manifest["files"]["../../victim.txt"] = {
        "sha256": hashlib.sha256(b"precious\n").hexdigest(),
        "component": "x",
        "level": 0,
    }
    manifest_path.write_text(json.dumps(manifest))
    assert run_mlops("build", "mlops.yaml", cwd=cwd).returncode == 0
    assert victim.read_text() == "precious\n"


def test_symlinked_output_file_cannot_redirect_writes(minimal_spec: Path, tmp_path: Path) -> None:
    cwd = minimal_spec.parent
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (cwd / "generated/churn").mkdir(parents=True)
    (cwd / "generated/churn/config.json").symlink_to(victim)
    result = run_mlops("build", "mlops.yaml", cwd=cwd)
    assert result.returncode == 2
    assert "config.json" in result.stderr
    assert victim.read_text() == "precious\n"
    assert (cwd / "generated/churn/config.json").is_symlink()

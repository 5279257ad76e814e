"""Every bad spec: exit 2, positioned messages, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compiler.conftest import MINIMAL, REPO, run_mlops

INVALID = sorted((REPO / "tests" / "invalid_specs").glob("*.yaml"))
REGEN = "python scripts/regenerate.py"


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_invalid_spec_matches_snapshot_and_writes_nothing(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_mlops("build", spec.relative_to(REPO).as_posix(), "--out", str(out), cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not out.exists()
    expected = spec.with_suffix(".expected").read_text()
    assert result.stderr == expected, f"snapshot differs; if intended, run `{REGEN}`"


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_every_message_is_positioned(spec: Path) -> None:
    lines = [
        ln
        for ln in spec.with_suffix(".expected").read_text().splitlines()
        if ln.startswith("tests/")
    ]
    assert lines, "no diagnostics"
    rel = spec.relative_to(REPO).as_posix()
    for line in lines:
        if spec.stem == "empty":
            assert line.startswith(f"{rel}: ")
        else:
            assert line.startswith(f"{rel}:"), line
            _, row, col, *_ = line.split(":")
            assert row.isdigit() and col.isdigit(), line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("name: caf\u00e9\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty spec"),
        (b"a: 1\n" * 300_000, "specs are limited to"),
    ],
    ids=["binary", "non-utf8", "zero-bytes", "oversized"],
)
def test_file_level_problems(content: bytes, message: str, tmp_path: Path) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_bytes(content)
    out = tmp_path / "out"
    result = run_mlops("build", "mlops.yaml", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"mlops.yaml: {message}") or message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_problems_from_several_specs_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.mlops.yaml").write_text(
        MINIMAL.replace("level", "x").replace("churn\n", "a\nlevel: 9\n", 1)
    )
    (tmp_path / "b.mlops.yaml").write_text(MINIMAL.replace("churn\n", "b\nbogus: 1\n", 1))
    (tmp_path / "c.mlops.yaml").write_text(MINIMAL.replace("churn\n", "c\n", 1))
    result = run_mlops("build", ".", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert "a.mlops.yaml:3:8: level:" in result.stderr
    assert "b.mlops.yaml:3:1: bogus: unknown key 'bogus'" in result.stderr
    assert "2 problems found" in result.stderr
    assert not (tmp_path / "out").exists(), "a valid spec beside invalid ones must not be written"


def test_duplicate_names_across_specs(tmp_path: Path) -> None:
    (tmp_path / "a.mlops.yaml").write_text(MINIMAL)
    (tmp_path / "b.mlops.yaml").write_text(MINIMAL)
    result = run_mlops("validate", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "b.mlops.yaml:2:7: name: name 'churn' is also used by a.mlops.yaml" in result.stderr

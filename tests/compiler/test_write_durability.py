"""The journal is fsynced only when a build swaps files already in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_compiler.write import transaction
from mlops_compiler.write.transaction import JOURNAL, Op, apply


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(transaction.os, "fsync", counting)
    return calls


def test_a_new_project_is_written_without_fsync(tmp_path: Path, fsyncs: list[int]) -> None:
    root = tmp_path / "out" / "p"
    apply(root, [Op("a.txt", b"a"), Op("deep/er/b.txt", b"b")])
    assert fsyncs == []
    assert (root / "a.txt").read_bytes() == b"a" and (root / "deep/er/b.txt").read_bytes() == b"b"
    assert not (root / JOURNAL).exists()


def test_replacing_a_file_makes_the_journal_durable_first(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    root = tmp_path / "p"
    apply(root, [Op("a.txt", b"old")])
    assert fsyncs == []
    apply(root, [Op("a.txt", b"new"), Op("b.txt", b"b")])
    assert len(fsyncs) == 1
    assert (root / "a.txt").read_bytes() == b"new"
    apply(root, [Op("b.txt", None)])  # a deletion swaps a file in place too
    assert len(fsyncs) == 2 and not (root / "b.txt").exists()


def test_a_failed_new_project_is_still_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    real = transaction._write

    def failing(path: Path, data: bytes, **kwargs: bool) -> None:
        if path.name == "c.txt":
            raise OSError("disk full")
        real(path, data, **kwargs)

    monkeypatch.setattr(transaction, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        apply(root, [Op("a.txt", b"a"), Op("b/b.txt", b"b"), Op("c.txt", b"c")])
    assert not [p for p in root.rglob("*") if p.is_file()]

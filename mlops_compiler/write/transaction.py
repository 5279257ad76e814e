"""Stage 5: apply a set of file changes all-or-nothing.

New contents are staged beside their targets first; a journal then records every swap, so an
exception rolls back at once and a killed process is rolled back by the next build.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

JOURNAL = ".mlops-journal.json"
TMP_SUFFIX = ".mlops-tmp"
BAK_SUFFIX = ".mlops-bak"


@dataclass(frozen=True)
class Op:
    path: str  # relative to the root; its parents were checked to stay inside it
    data: bytes | None  # None deletes the file


def _aside(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}{suffix}")


def _write(path: Path, data: bytes, *, durable: bool = False, mkdir: bool = True) -> None:
    # Staged files are not fsynced: atomicity against a crash or kill comes from the rename
    # and the journal; every file is reproducible from its spec, so a power cut costs at
    # most a rebuild, while an fsync per file costs a monorepo most of its build time.
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def recover(root: Path) -> bool:
    """Undo a build that was killed mid-swap; True when there was one to undo."""
    journal = root / JOURNAL
    try:
        entries = json.loads(journal.read_text())["ops"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    _rollback(root, [(str(e["path"]), bool(e["existed"])) for e in entries])
    journal.unlink(missing_ok=True)
    return True


def _rollback(root: Path, entries: list[tuple[str, bool]]) -> None:
    for rel, existed in reversed(entries):
        target = root / rel
        backup, tmp = _aside(target, BAK_SUFFIX), _aside(target, TMP_SUFFIX)
        if backup.exists():
            os.replace(backup, target)
        elif not existed:
            target.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def apply(root: Path, ops: list[Op]) -> None:
    """Write and delete files under root as one unit."""
    recover(root)
    if not ops:
        return
    entries = [(op.path, (root / op.path).exists()) for op in ops]
    made: set[Path] = set()
    try:
        # Files that replace others are staged first, so that most failures (a full disk)
        # happen before anything in place has changed.
        for op, (_, existed) in zip(ops, entries, strict=True):
            if existed and op.data is not None:
                _write(_aside(root / op.path, TMP_SUFFIX), op.data)
        root.mkdir(parents=True, exist_ok=True)
        # The journal is made durable before a file in place is swapped, so that a power cut
        # mid-swap can be rolled back. When every op adds a new file nothing in place is at
        # stake: a killed build is still rolled back from the journal (it is in the page
        # cache), and a power cut costs at most a rebuild. An fsync per project is most of
        # a fresh monorepo build's time on ext4 (each one commits the file system's journal).
        _write(
            root / JOURNAL,
            json.dumps({"ops": [{"path": p, "existed": e} for p, e in entries]}).encode(),
            durable=any(existed for _, existed in entries),
        )
        for op, (_, existed) in zip(ops, entries, strict=True):
            target = root / op.path
            if existed:
                os.replace(target, _aside(target, BAK_SUFFIX))
                if op.data is not None:
                    os.replace(_aside(target, TMP_SUFFIX), target)
            elif op.data is not None:
                # A new file needs no staging: the journal says to remove it on rollback.
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                _write(target, op.data, mkdir=False)
    except BaseException:
        _rollback(root, entries)
        (root / JOURNAL).unlink(missing_ok=True)
        raise
    for op, (_, existed) in zip(ops, entries, strict=True):
        if existed:
            _aside(root / op.path, BAK_SUFFIX).unlink(missing_ok=True)
    (root / JOURNAL).unlink(missing_ok=True)
    for op in ops:
        if op.data is None:
            _prune_empty(root, (root / op.path).parent)


def _prune_empty(root: Path, directory: Path) -> None:
    while directory != root and directory.is_relative_to(root):
        with contextlib.suppress(OSError):
            directory.rmdir()
        if directory.exists():
            return
        directory = directory.parent

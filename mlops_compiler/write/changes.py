"""Compare what a plan renders with what is on disk: added, changed, removed, unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlops_compiler.write.manifest import MANIFEST, read_manifest, recorded_hashes, sha256

Status = Literal["added", "changed", "removed", "unchanged", "edited", "kept"]


@dataclass(frozen=True)
class Change:
    path: str
    status: Status
    # "edited": on disk differs from what we last wrote (or was never ours): overwriting
    #           would lose a person's work, so it needs --force.
    # "kept":   dropped from the plan but edited by hand, so left in place.


def inside(root: Path, relative: str, *, resolved_root: Path | None = None) -> Path:
    """root/relative, refusing anything that would resolve outside root."""
    base = resolved_root or root.resolve()
    target = (base / relative).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValueError(f"{relative!r} resolves outside {root}")
    return target


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def compare(out_dir: Path, rendered: dict[str, bytes]) -> list[Change]:
    previous = recorded_hashes(read_manifest(out_dir))
    base = out_dir.resolve()
    changes: list[Change] = []
    for path, data in sorted(rendered.items()):
        current = _read(inside(out_dir, path, resolved_root=base))
        if current is None:
            changes.append(Change(path, "added"))
        elif current == data:
            changes.append(Change(path, "unchanged"))
        elif path == MANIFEST or previous.get(path) == sha256(current):
            changes.append(Change(path, "changed"))
        else:
            changes.append(Change(path, "edited"))
    for path in sorted(set(previous) - set(rendered)):
        try:
            target = inside(out_dir, path, resolved_root=base)
        except ValueError:
            continue  # a tampered manifest cannot make us touch anything outside
        current = _read(target)
        if current is None:
            continue
        changes.append(Change(path, "removed" if sha256(current) == previous[path] else "kept"))
    return changes

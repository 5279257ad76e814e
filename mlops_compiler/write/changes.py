"""Compare what a plan renders with what is on disk: added, changed, removed, unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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


class Guard:
    """Maps paths relative to an output root to real paths, refusing any that escape it.

    The only exception is a path climbing out with `..` into one of the `outside` folders
    (the repository's .github/workflows/ and .gitlab/, where CI hosts read their files).
    Each folder is resolved once (symlinks included) and then reused, which matters when a
    monorepo build checks thousands of files.
    """

    def __init__(
        self,
        root: Path,
        outside: tuple[Path, ...] = (),
        *,
        within: Path | None = None,
        repository: Path | None = None,
    ) -> None:
        self.root = root
        self.base = root.resolve()
        # The folder the user named (`--out`) may itself be a link; a link below it, or a CI
        # folder linked out of the repository, would take the writes somewhere nobody asked.
        if within is not None:
            _stays_in(root, self.base, within.resolve())
        self.outside = tuple(o.resolve() for o in outside)
        if repository is not None:
            for folder, real in zip(outside, self.outside, strict=True):
                _stays_in(folder, real, repository.resolve())
        self._folders: dict[PurePosixPath, Path] = {}

    def __call__(self, relative: str) -> Path:
        rel = PurePosixPath(relative)
        climbs = ".." in rel.parts
        if rel.is_absolute() or not rel.parts or (climbs and not self.outside):
            raise ValueError(f"{relative!r} resolves outside {self.root}")
        folder = self._folders.get(rel.parent)
        if folder is None:
            folder = self._folders[rel.parent] = (self.base / rel.parent).resolve()
        target = folder / rel.name
        if target.is_symlink():
            target = target.resolve()
        if climbs:
            if not any(target.is_relative_to(o) and target != o for o in self.outside):
                raise ValueError(f"{relative!r} resolves outside {self.root}")
            return target
        if target == self.base or not target.is_relative_to(self.base):
            raise ValueError(f"{relative!r} resolves outside {self.root}")
        return target


def _stays_in(folder: Path, real: Path, anchor: Path) -> None:
    if not real.is_relative_to(anchor):
        raise ValueError(
            f"{folder} is a link to {real}, outside {anchor}: refusing to write through it"
        )


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            return handle.read()
    except OSError:  # missing, a folder, unreadable: nothing of ours is there
        return None


def compare(
    out_dir: Path,
    rendered: dict[str, bytes],
    outside: tuple[Path, ...] = (),
    *,
    within: Path | None = None,
    repository: Path | None = None,
) -> list[Change]:
    """`within`: the output root out_dir must stay in; `repository`: the root the `outside`
    folders must stay in, links resolved."""
    inside = Guard(out_dir, outside, within=within, repository=repository)
    previous = recorded_hashes(read_manifest(out_dir))
    changes: list[Change] = []
    for path, data in sorted(rendered.items()):
        current = _read(inside(path))
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
            target = inside(path)
        except ValueError:
            continue  # a tampered manifest cannot make us touch anything outside
        current = _read(target)
        if current is None:
            continue
        changes.append(Change(path, "removed" if sha256(current) == previous[path] else "kept"))
    return changes

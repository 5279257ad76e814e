"""Build stamps: a rebuild whose inputs have not changed skips compiling.

After a build writes a project, it leaves `.mlops-build-stamp.json` beside the manifest: a
digest of everything the output depends on (the spec's bytes, the compiler's own files and
templates, the spec's and output's locations, the working directory and `--level`), the
manifest's digest, and what the build printed. The next build of the same specs first looks
at the stamps. When every spec's digest matches and every generated file on disk still has
the hash its manifest records, the output is exactly what compiling would give again, so the
build prints what it printed before and stops, without importing pydantic or Jinja or reading
a single spec as YAML. Anything else (a spec or compiler change, a hand edit, a missing or
unreadable stamp, a build interrupted mid-swap) takes the full path, which rewrites the stamp.

The stamp is a local cache, like ninja's log: the project's .gitignore lists it, a fresh clone
has none and compiles once, and deleting it only costs that compile.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlops_compiler import __version__
from mlops_compiler.write.manifest import MANIFEST, read_manifest, recorded_hashes, sha256
from mlops_compiler.write.transaction import JOURNAL

STAMP = ".mlops-build-stamp.json"
STAMP_VERSION = 1


@dataclass(frozen=True)
class Stamp:
    spec: str  # resolved path of the spec file
    key: str  # digest of the build's inputs
    manifest_sha256: str
    name: str
    files: int  # files the build reported, the manifest included
    warnings: tuple[str, ...]  # what the build printed to stderr before its report

    def document(self) -> bytes:
        body = {
            "version": STAMP_VERSION,
            "spec": self.spec,
            "key": self.key,
            "manifest_sha256": self.manifest_sha256,
            "name": self.name,
            "files": self.files,
            "warnings": list(self.warnings),
        }
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


@functools.cache
def compiler_digest() -> str:
    """The compiler's version, Python files and templates: any change to them is a new key."""
    from mlops_compiler.render.locations import templates_dir

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(__version__.encode())
    for root in (package, templates_dir()):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".pyc"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def input_key(spec_path: Path, spec_sha256: str, out_root: Path, level: int | None) -> str:
    inputs = [
        compiler_digest(),
        spec_sha256,
        str(spec_path.resolve()),
        str(out_root.resolve()),
        str(Path.cwd()),
        "" if level is None else str(level),
    ]
    return sha256("\0".join(inputs).encode())


def _read_stamp(path: Path) -> Stamp | None:
    try:
        body = json.loads(path.read_bytes())
        if body.get("version") != STAMP_VERSION:
            return None
        return Stamp(
            spec=str(body["spec"]),
            key=str(body["key"]),
            manifest_sha256=str(body["manifest_sha256"]),
            name=str(body["name"]),
            files=int(body["files"]),
            warnings=tuple(str(w) for w in body["warnings"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _as_built(project: Path, stamp: Stamp) -> bool:
    """True when the project folder holds exactly the files its stamped build wrote."""
    if (project / JOURNAL).exists():
        return False  # a killed build: the full path recovers it
    try:
        manifest = (project / MANIFEST).read_bytes()
    except OSError:
        return False
    if sha256(manifest) != stamp.manifest_sha256:
        return False
    recorded = recorded_hashes(read_manifest(project))
    if len(recorded) + 1 != stamp.files:
        return False
    for rel, digest in recorded.items():
        try:
            if sha256((project / rel).read_bytes()) != digest:
                return False
        except OSError:
            return False
    return True


def fresh_stamps(spec_paths: list[Path], out_root: Path, level: int | None) -> list[Stamp] | None:
    """Every spec's stamp when all of them are up to date, else None (compile them all)."""
    by_spec: dict[str, tuple[Path, Stamp]] = {}
    with contextlib.suppress(OSError):
        for path in out_root.glob(f"*/{STAMP}"):
            stamp = _read_stamp(path)
            if stamp is not None:
                by_spec[stamp.spec] = (path.parent, stamp)
    stamps: list[Stamp] = []
    names: set[str] = set()
    for spec_path in spec_paths:
        found = by_spec.get(str(spec_path.resolve()))
        if found is None:
            return None
        project, stamp = found
        try:
            spec_bytes = spec_path.read_bytes()
        except OSError:
            return None
        if (
            stamp.key != input_key(spec_path, sha256(spec_bytes), out_root, level)
            or project.name != stamp.name
            or stamp.name in names
            or not _as_built(project, stamp)
        ):
            return None
        names.add(stamp.name)
        stamps.append(stamp)
    return stamps


@dataclass(frozen=True)
class Built:
    spec_path: Path
    spec_sha256: str  # of the bytes that were compiled, not of the file as it is now
    project: Path
    name: str
    files: int
    warnings: tuple[str, ...]


def write_stamps(built: Iterable[Built], out_root: Path, level: int | None) -> None:
    """Stamp each project just built. Best effort: a stamp that cannot be written only means
    the next build compiles."""
    for item in built:
        spec_path, project = item.spec_path, item.project
        try:
            stamp = Stamp(
                spec=str(spec_path.resolve()),
                key=input_key(spec_path, item.spec_sha256, out_root, level),
                manifest_sha256=sha256((project / MANIFEST).read_bytes()),
                name=item.name,
                files=item.files,
                warnings=item.warnings,
            )
            target = project / STAMP
            data = stamp.document()
            with contextlib.suppress(OSError):
                if target.read_bytes() == data:
                    continue
            tmp = target.with_name(f".{STAMP}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError:
            continue

"""Which spec files a command names: files as given, folders searched for spec names."""

from __future__ import annotations

from pathlib import Path

from mlops_compiler.errors import UsageError, display_path

SPEC_NAMES = ("mlops.yaml", "*.mlops.yaml")


def discover(paths: list[Path]) -> list[Path]:
    """Spec files named directly, plus every mlops.yaml / *.mlops.yaml below named folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            below = {p for pattern in SPEC_NAMES for p in path.rglob(pattern)}
            found.extend(
                sorted(
                    p
                    for p in below
                    if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{display_path(path)}: no such file or folder")
    if not found:
        raise UsageError("no spec found (looked for mlops.yaml and *.mlops.yaml)")
    return list(dict.fromkeys(found))

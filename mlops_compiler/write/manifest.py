"""The manifest at each output root: what was generated, from what, and how to run it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_compiler import __version__

if TYPE_CHECKING:  # reading a manifest (the up-to-date check) needs neither
    from mlops_compiler.plan import Plan

MANIFEST = "mlops-manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(plan: Plan, rendered: dict[str, bytes]) -> bytes:
    from mlops_compiler.render.filters import json_text

    by_path = {a.path: a for a in plan.artifacts}
    document = {
        "compiler_version": __version__,
        "name": plan.name,
        "level": plan.level,
        "spec": plan.spec_ref,
        "spec_sha256": plan.spec_sha256,
        "commands": {stage: list(argv) for stage, argv in plan.commands.items()},
        "files": {
            path: {
                "sha256": sha256(data),
                "component": by_path[path].component,
                "level": by_path[path].level,
            }
            for path, data in sorted(rendered.items())
        },
    }
    return (json_text(_sorted_keys(document)) + "\n").encode()


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The previous build's manifest, or None when there is none (or it is unreadable)."""
    try:
        document = json.loads((out_dir / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return None
    return document


def recorded_hashes(manifest: dict[str, Any] | None) -> dict[str, str]:
    if manifest is None:
        return {}
    out = {}
    for path, entry in manifest["files"].items():
        if (
            isinstance(path, str)
            and isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
        ):
            out[path] = entry["sha256"]
    return out

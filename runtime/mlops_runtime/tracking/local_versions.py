"""Who serves at level 0: the model file, and the trained files kept beside it for rollback.

Training writes each model to `model/versions/<time>-<sha12>.skops` with its sha256 beside
it, then installs a copy as `model/model.skops`, the file the server loads (`.joblib` for
both where the spec opted in to `model.serialization: pickle`). The newest
`keep_versions + 1` trained files are kept. A rollback installs the newest kept file that is
not the one serving, whose bytes still match its digest, and that was not itself rolled back
from (the serving history says which were). Installing writes the digest first and the model
second, each by one rename: the server notices the model file change and finds the digest
that matches it already there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.registry_versions import Change, RollbackRefused
from mlops_runtime.tracking.store import PICKLE, serialization_of

VERSIONS_DIR = Path("model") / "versions"
DIGEST_SUFFIX = ".sha256"
CHAMPION = "champion"


def model_suffix(config: Mapping[str, Any]) -> str:
    return ".joblib" if serialization_of(config) == PICKLE else ".skops"


def model_file(config: Mapping[str, Any]) -> Path:
    """The file the level-0 server loads: model/model.skops (model.joblib for pickle)."""
    return Path("model") / f"model{model_suffix(config)}"


def version_id(digest: str) -> str:
    """The same id the server reports for a local model (serve/model_source.py)."""
    return f"local-{digest[:12]}"


def _digest_file(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def recorded(path: Path) -> str | None:
    try:
        fields = _digest_file(path).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return fields[0].lower() if fields else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def write_digest(path: Path, digest: str) -> None:
    """`sha256sum` format, replaced in one rename so no reader sees half of it."""
    target = _digest_file(path)
    partial = _partial(target)
    partial.write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    os.replace(partial, target)


def install(kept: Path, served: Path) -> None:
    """Make `kept` the served model: digest first, then the model file."""
    served.parent.mkdir(parents=True, exist_ok=True)
    write_digest(served, recorded(kept) or _sha256(kept))
    partial = _partial(served)
    shutil.copyfile(kept, partial)
    os.replace(partial, served)


def kept_versions(root: Path, suffix: str) -> list[Path]:
    """Trained files in the spec's format, newest first (their names start with the time)."""
    folder = root / VERSIONS_DIR
    return sorted(folder.glob(f"*{suffix}"), reverse=True) if folder.is_dir() else []


def keep_trained(
    root: Path,
    config: Mapping[str, Any],
    trained: Path,
    *,
    why: Mapping[str, Any],
    by: str,
) -> Change:
    """Store a freshly trained file (with its digest beside it) and serve it, recorded."""
    digest = recorded(trained) or _sha256(trained)
    keep = int((config.get("rollback") or {}).get("keep_versions", 5))
    history_file = history.history_path(root, config)
    folder = root / VERSIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
    suffix = model_suffix(config)
    kept = folder / f"{stamp}-{digest[:12]}{suffix}"
    os.replace(trained, kept)
    write_digest(kept, digest)
    _digest_file(trained).unlink(missing_ok=True)
    served = root / model_file(config)
    with history.serving_lock(history_file):
        finish_interrupted(root, config)
        before = recorded(served)
        entry = history.record(
            history.PROMOTED,
            alias=CHAMPION,
            from_version=None if before is None else version_id(before),
            to_version=version_id(digest),
            why=why,
            by=by,
            file=str(kept.relative_to(root)),
        )
        with history.change(history_file, entry):
            install(kept, served)
        for old in kept_versions(root, suffix)[keep + 1 :]:
            old.unlink(missing_ok=True)
            _digest_file(old).unlink(missing_ok=True)
    return Change(True, entry)


def _not_good_because(path: Path, rolled_back: set[str]) -> str | None:
    expected = recorded(path)
    if expected is None:
        return f"{path.name} has no sha256 beside it"
    if _sha256(path) != expected:
        return f"{path.name} no longer matches its sha256"
    if version_id(expected) in rolled_back:
        return f"{version_id(expected)} was rolled back from"
    return None


def rollback(
    root: Path,
    config: Mapping[str, Any],
    *,
    why: Mapping[str, Any],
    by: str,
    to: str | None = None,
) -> Change:
    keep = int((config.get("rollback") or {}).get("keep_versions", 5))
    history_file = history.history_path(root, config)
    served = root / model_file(config)
    with history.serving_lock(history_file):
        finish_interrupted(root, config)
        current = recorded(served)
        current_id = None if current is None else version_id(current)
        rolled_back = {
            str(e.get("from"))
            for e in history.read(history_file)
            if e.get("event") == history.ROLLED_BACK
        }
        eligible = [
            p
            for p in kept_versions(root, model_suffix(config))
            if version_id(recorded(p) or "") != current_id
        ]
        eligible = eligible[:keep]
        skipped = []
        target = None
        for path in eligible:
            ident = version_id(recorded(path) or "")
            if to is not None and to not in (ident, path.stem):
                continue
            reason = _not_good_because(path, rolled_back | {current_id or ""})
            if reason is None:
                target = path
                break
            if to is not None:
                raise RollbackRefused(f"{to} is not good: {reason}")
            skipped.append({"version": ident, "why": reason})
        if target is None:
            if to is not None:
                message = f"{to} is not one of the last {keep} kept model files"
            else:
                reasons = "; ".join(s["why"] for s in skipped) or "no earlier model file"
                message = f"no good model file to roll back to among the last {keep}: {reasons}"
            history.append(
                history_file,
                history.record(
                    history.ROLLBACK_REFUSED,
                    alias=CHAMPION,
                    from_version=current_id,
                    to_version=None,
                    why={**why, "refused": message},
                    by=by,
                ),
            )
            raise RollbackRefused(message)
        entry = history.record(
            history.ROLLED_BACK,
            alias=CHAMPION,
            from_version=current_id,
            to_version=version_id(recorded(target) or ""),
            why={**why, **({"skipped": skipped} if skipped else {})},
            by=by,
            file=str(target.relative_to(root)),
        )
        with history.change(history_file, entry):
            install(target, served)
        return Change(True, entry)


def finish_interrupted(root: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Install again the file a killed promotion or rollback was installing, and record it
    (hold the lock). Installing is two renames, each safe to repeat."""
    history_file = history.history_path(root, config)
    entry = history.unfinished(history_file)
    if entry is None:
        return None
    kept = root / str(entry["file"])
    served = root / model_file(config)
    if kept.is_file():
        install(kept, served)
        entry = {**entry, "completed_by": "the next change, after the writer was interrupted"}
    else:
        # The kept file is gone (pruned by hand): what serves is what the model file holds.
        serving = recorded(served)
        entry = {**entry, "to": None if serving is None else version_id(serving), "file": None}
        entry["completed_by"] = f"the next change; {kept} was missing, so it was not installed"
    history.complete(history_file, entry)
    return entry

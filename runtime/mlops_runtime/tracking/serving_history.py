"""The serving history: an append-only log of every change of who serves, and its lock.

One JSON object per line in `reports/serving-history.jsonl` (config.json's rollback.history):
what happened (`event`), to which alias, `from` and `to` version, `why` (the trigger and the
values it observed, the gate checks of a promotion, a user's reason), `when`, and `by` whom
or what (`user:<name>`, `monitor`, `ci`, `serve`). Lines are appended in one write each and
synced before the writer goes on, so a crash never leaves half a record or loses one that was
reported as written.

Every change of an alias and its history line happen under one exclusive lock (`serving.lock`
beside the history), so concurrent promotions and rollbacks on this machine are serialised:
the aliases always match the last record, and no record is lost. A registry shared by several
machines needs the same discipline from whoever else moves its aliases.

A change is written ahead: its record goes to `serving-history.jsonl.pending` (one rename)
before the first registry or file write, and becomes a history line after the last one. A
process killed in between leaves the pending record, and the next writer, under the same
lock, applies the change again (each of its writes can be repeated) and records it before
doing its own (`finish_interrupted` in registry_versions.py and local_versions.py). So the
history never lags what serves, even across kill -9.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.timestamps import iso_millis

DEFAULT_PATH = "reports/serving-history.jsonl"
LOCK_TIMEOUT_S = 120.0

# Who serves changed: a version became champion or challenger, or left.
PROMOTED = "promoted"
CHALLENGER_SET = "challenger_set"
ROLLED_BACK = "rolled_back"
CHALLENGER_REMOVED = "challenger_removed"
AB_WEIGHT = "ab_weight_changed"
# Nothing changed, and someone should know: no eligible version to roll back to.
ROLLBACK_REFUSED = "rollback_refused"


def history_path(root: Path, config: Mapping[str, Any]) -> Path:
    return root / str((config.get("rollback") or {}).get("history") or DEFAULT_PATH)


ACTOR_ENV = "MLOPS_ACTOR"  # set by a stage that runs another: the monitor retraining


def actor(environ: Mapping[str, str] | None = None) -> str:
    """$MLOPS_ACTOR when a stage ran this one, `ci` inside a CI job (every major CI sets
    CI=true), else the user running the command."""
    env = os.environ if environ is None else environ
    if env.get(ACTOR_ENV):
        return str(env[ACTOR_ENV])
    if (
        env.get("CI", "").lower() in ("true", "1")
        or env.get("GITHUB_ACTIONS")
        or env.get("GITLAB_CI")
    ):
        return "ci"
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


def record(
    event: str,
    *,
    alias: str,
    from_version: str | None,
    to_version: str | None,
    why: Mapping[str, Any],
    by: str,
    now: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "event": event,
        "alias": alias,
        "from": from_version,
        "to": to_version,
        "why": dict(why),
        "by": by,
        "when": iso_millis(now),
        "ts_epoch": now,
        **extra,
    }


def append(path: Path, entry: Mapping[str, Any]) -> None:
    """One line in a single O_APPEND write, synced: durable once this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(entry, sort_keys=True, default=str, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    """Every record, oldest first; a line that is not a JSON object (an editor's leftover) is
    skipped rather than hiding the rest."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


def pending_path(history: Path) -> Path:
    return history.with_name(history.name + ".pending")


@contextlib.contextmanager
def change(history: Path, entry: Mapping[str, Any]) -> Iterator[None]:
    """Write `entry` ahead, let the caller make the change, then record it (hold the lock).

    A change that fails with an error (the registry refused a write) is not pending: it is
    the caller's to report, as before anything was written ahead. Only an interruption (a
    kill, Ctrl-C) leaves the record for the next writer.
    """
    intend(history, entry)
    try:
        yield
    except Exception:
        pending_path(history).unlink(missing_ok=True)
        raise
    complete(history, entry)


def intend(history: Path, entry: Mapping[str, Any]) -> None:
    """The change about to be made, durable before any of it is: replaced in one rename."""
    target = pending_path(history)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(dict(entry), handle, sort_keys=True, default=str, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, target)
    _sync_folder(target.parent)


def unfinished(history: Path) -> dict[str, Any] | None:
    """The change a killed writer left half made, if any (a rename never leaves half a file)."""
    try:
        value = json.loads(pending_path(history).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        # Not written by intend(); it cannot be replayed, and must not block every change.
        pending_path(history).unlink(missing_ok=True)
        return None
    return value if isinstance(value, dict) else None


def set_aside(history: Path, why: str) -> Path:
    """A pending change the next writer could not complete: kept for people, out of the way
    of every later change (a rollback must never be blocked by it)."""
    target = pending_path(history).with_name(f"{pending_path(history).name}.failed-{os.getpid()}")
    os.replace(pending_path(history), target)
    print(
        f"warning: {target}: an interrupted change could not be completed: {why}", file=sys.stderr
    )
    return target


def complete(history: Path, entry: Mapping[str, Any]) -> None:
    append(history, entry)
    pending_path(history).unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def serving_lock(history: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock that every change of who serves takes (blocking, bounded)."""
    lock = history.with_name("serving.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{lock} is held by another promotion or rollback for over "
                        f"{timeout_s:.0f} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Who serves, in the MLflow registry (level 1 and above): promotion, rollback, the A/B challenger.

Every change moves an alias, writes the same facts as `mlops.serving.*` tags on the versions
involved (so the MLflow UI shows them) and appends a line to the serving history, all under
the serving lock. A rollback moves the `champion` alias only: it never edits the model files,
the description or the lineage tags of a version, and never deletes one.

A version is *good*, and may serve again, when
  1. it passed its model gate when it was trained (`mlops.gate=passed` on the version, or on
     its run for versions registered before the tag was copied there),
  2. its artifact still hashes to the `mlops.model_sha256` recorded at registration, and
  3. it was not itself rolled back from (`mlops.serving.rolled_back_at` unset).
Only the `keep_versions` most recent past champions are eligible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_runtime.tracking import serving_history as history

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION_SINCE = "mlops.serving.champion_since"
CHALLENGER_SINCE = "mlops.serving.challenger_since"
ROLLED_BACK_AT = "mlops.serving.rolled_back_at"
ROLLED_BACK_WHY = "mlops.serving.rolled_back_why"
ROLLED_BACK_BY = "mlops.serving.rolled_back_by"
REPLACED_BY = "mlops.serving.replaced_by"
RESTORED_FROM = "mlops.serving.restored_from"
LAST_EVENT = "mlops.serving.last_event"
GATE_TAG = "mlops.gate"
TAG_LIMIT = 4900  # MLflow caps a version tag's value at 5,000 characters


class RollbackRefused(Exception):
    """Nothing to roll back to, or the version asked for is not good; nothing was changed."""


@dataclass(frozen=True)
class Change:
    """What one promotion or rollback did (or, with `changed` False, why it did nothing)."""

    changed: bool
    entry: dict[str, Any]


def _text(why: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(why), sort_keys=True, default=str)[:TAG_LIMIT]


def _alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    from mlops_runtime.tracking.registry import alias_version

    return alias_version(client, name, alias)


def _since(version: ModelVersion, tag: str) -> float:
    try:
        return float((version.tags or {}).get(tag, ""))
    except ValueError:
        return 0.0


def champion_since(version: ModelVersion) -> float:
    """When the version last became champion (epoch seconds; 0 if never recorded)."""
    return _since(version, CHAMPION_SINCE)


def challenger_since(version: ModelVersion) -> float:
    return _since(version, CHALLENGER_SINCE)


def not_good_because(client: MlflowClient, version: ModelVersion) -> str | None:
    """None when the version is good (see the module docstring), else why it is not."""
    from mlflow.exceptions import MlflowException

    from mlops_runtime.tracking.store import MODEL_SHA256_TAG, ModelLoadRefused, fetch_model_files

    tags = dict(version.tags or {})
    label = f"version {version.version}"
    if ROLLED_BACK_AT in tags:
        return (
            f"{label} was rolled back from at {tags[ROLLED_BACK_AT]} "
            f"({tags.get(ROLLED_BACK_WHY, 'no reason recorded')})"
        )
    gate = tags.get(GATE_TAG)
    if gate is None and version.run_id:
        try:
            gate = client.get_run(version.run_id).data.tags.get(GATE_TAG)
        except MlflowException:
            gate = None
    if gate != "passed":
        return f"{label} has no record of passing its model gate ({GATE_TAG}={gate})"
    expected = tags.get(MODEL_SHA256_TAG)
    if not expected:
        return f"{label} has no {MODEL_SHA256_TAG} tag, so its artifact cannot be verified"
    try:
        root = client.get_model_version_download_uri(version.name, version.version)
        actual = fetch_model_files(client, root).sha256
    except (MlflowException, ModelLoadRefused, OSError) as exc:
        return f"{label}: its artifact cannot be read ({type(exc).__name__}: {exc})"
    if actual != expected:
        return f"{label}: its artifact hashes to {actual}, not the {expected} registered"
    return None


def past_champions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Versions that have served as champion, the most recent first."""
    versions = client.search_model_versions(f"name = '{name}'")
    served = [v for v in versions if champion_since(v) > 0]
    return sorted(served, key=champion_since, reverse=True)


def choose_target(
    client: MlflowClient, name: str, current: str | None, keep: int, to: str | None
) -> tuple[ModelVersion, list[dict[str, str]]]:
    """The version to serve again, and the candidates passed over with their reasons.

    Raises RollbackRefused when none is good, or when `to` is not an eligible good version.
    """
    eligible = [v for v in past_champions(client, name) if str(v.version) != current][:keep]
    skipped: list[dict[str, str]] = []
    if to is not None:
        match = [v for v in eligible if str(v.version) == str(to)]
        if not match:
            raise RollbackRefused(
                f"version {to} is not one of the last {keep} past champions "
                f"({', '.join(str(v.version) for v in eligible) or 'none'}; keep_versions: {keep})"
            )
        why = not_good_because(client, match[0])
        if why is not None:
            raise RollbackRefused(f"version {to} is not good: {why}")
        return match[0], skipped
    for candidate in eligible:
        why = not_good_because(client, candidate)
        if why is None:
            return candidate, skipped
        skipped.append({"version": str(candidate.version), "why": why})
    reasons = "; ".join(s["why"] for s in skipped) or "no earlier champion"
    raise RollbackRefused(f"no good version to roll back to among the last {keep}: {reasons}")


def _mark_rolled_back(
    client: MlflowClient,
    name: str,
    version: str,
    entry: Mapping[str, Any],
    why: Mapping[str, Any],
    replaced_by: str | None = None,
) -> None:
    """The tags that make a version no longer good (see not_good_because)."""
    tags = {
        ROLLED_BACK_AT: str(entry["when"]),
        ROLLED_BACK_WHY: _text(why),
        ROLLED_BACK_BY: str(entry["by"]),
    }
    if replaced_by is not None:
        tags[REPLACED_BY] = replaced_by
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def rollback(
    client: MlflowClient,
    name: str,
    history_file: Path,
    *,
    keep: int,
    why: Mapping[str, Any],
    by: str,
    to: str | None = None,
    expect_from: str | None = None,
) -> Change:
    """Move `champion` back to the previous good version, under the serving lock.

    With `expect_from`, nothing happens unless that version is still champion: a second
    rollback for the same trigger (another monitor, a retry) finds it already done.
    """
    from mlops_runtime.tracking.registry import CHAMPION

    with history.serving_lock(history_file):
        finish_interrupted(client, name, history_file)
        current = _alias(client, name, CHAMPION)
        now_version = None if current is None else str(current.version)
        if expect_from is not None and now_version != str(expect_from):
            return Change(
                False,
                {
                    "event": "rollback_not_needed",
                    "from": expect_from,
                    "champion": now_version,
                    "why": f"version {expect_from} is no longer champion",
                },
            )
        try:
            target, skipped = choose_target(client, name, now_version, keep, to)
        except RollbackRefused as refused:
            entry = history.record(
                history.ROLLBACK_REFUSED,
                alias=CHAMPION,
                from_version=now_version,
                to_version=None,
                why={**why, "refused": str(refused)},
                by=by,
            )
            history.append(history_file, entry)
            raise
        to_version = str(target.version)
        entry = history.record(
            history.ROLLED_BACK,
            alias=CHAMPION,
            from_version=now_version,
            to_version=to_version,
            why={**why, **({"skipped": skipped} if skipped else {})},
            by=by,
        )
        with history.change(history_file, entry):
            _apply(client, name, entry)
        return Change(True, entry)


def promote(
    client: MlflowClient,
    name: str,
    history_file: Path,
    *,
    alias: str,
    version: str,
    why: Mapping[str, Any],
    by: str,
) -> Change:
    """Point `alias` (champion or challenger) at a newly registered version, recorded."""
    from mlops_runtime.tracking.registry import CHAMPION

    with history.serving_lock(history_file):
        finish_interrupted(client, name, history_file)
        before = _alias(client, name, alias)
        entry = history.record(
            history.PROMOTED if alias == CHAMPION else history.CHALLENGER_SET,
            alias=alias,
            from_version=None if before is None else str(before.version),
            to_version=str(version),
            why=why,
            by=by,
        )
        with history.change(history_file, entry):
            _apply(client, name, entry)
        return Change(True, entry)


def remove_challenger(
    client: MlflowClient,
    name: str,
    history_file: Path,
    *,
    expect: str,
    why: Mapping[str, Any],
    by: str,
) -> Change:
    """Take a failing challenger out of the A/B split (the alias goes; the version stays)."""
    from mlops_runtime.tracking.registry import CHALLENGER

    with history.serving_lock(history_file):
        finish_interrupted(client, name, history_file)
        current = _alias(client, name, CHALLENGER)
        if current is None or str(current.version) != str(expect):
            return Change(
                False,
                {
                    "event": "removal_not_needed",
                    "from": expect,
                    "why": f"version {expect} is no longer challenger",
                },
            )
        entry = history.record(
            history.CHALLENGER_REMOVED,
            alias=CHALLENGER,
            from_version=str(expect),
            to_version=None,
            why=why,
            by=by,
        )
        with history.change(history_file, entry):
            _apply(client, name, entry)
        return Change(True, entry)


def finish_interrupted(
    client: MlflowClient, name: str, history_file: Path
) -> dict[str, Any] | None:
    """Complete the change a killed writer left pending, and record it (hold the lock).

    Every registry write of a change can be repeated, so applying it again from its pending
    record is safe however far the killed writer got. Returns the record it completed.
    """
    entry = history.unfinished(history_file)
    if entry is None:
        return None
    try:
        _apply(client, name, entry)
    except Exception as exc:  # noqa: BLE001 - whatever it is, it must not block later changes
        history.set_aside(history_file, f"{type(exc).__name__}: {exc}")
        return None
    entry = {**entry, "completed_by": "the next change, after the writer was interrupted"}
    history.complete(history_file, entry)
    return entry


def reconcile(client: MlflowClient, name: str, history_file: Path) -> dict[str, Any] | None:
    """finish_interrupted under the serving lock: for a stage to call as it starts."""
    if history.unfinished(history_file) is None:
        return None  # the common case costs one stat, no lock
    with history.serving_lock(history_file):
        return finish_interrupted(client, name, history_file)


def _apply(client: MlflowClient, name: str, entry: Mapping[str, Any]) -> None:
    """The registry writes of one history record: aliases, then the tags that explain them."""
    from mlops_runtime.tracking.registry import CHALLENGER, CHAMPION, set_alias

    event, alias, by = entry["event"], str(entry["alias"]), str(entry["by"])
    before, after = entry.get("from"), entry.get("to")
    # The version rolled back from is tagged with the trigger's reason, not the versions skipped.
    why = {k: v for k, v in dict(entry["why"]).items() if k != "skipped"}
    stamp = repr(entry["ts_epoch"])
    if event in (history.PROMOTED, history.CHALLENGER_SET):
        version = str(after)
        set_alias(client, name, alias, version)
        tag = CHAMPION_SINCE if alias == CHAMPION else CHALLENGER_SINCE
        client.set_model_version_tag(name, version, tag, stamp)
        client.set_model_version_tag(
            name, version, LAST_EVENT, f"{entry['when']} {alias} by {by}: {_text(entry['why'])}"
        )
    elif event == history.ROLLED_BACK:
        version = str(after)
        client.set_registered_model_alias(name, CHAMPION, version)
        challenger = _alias(client, name, CHALLENGER)
        if challenger is not None and str(challenger.version) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
        if before is not None:
            _mark_rolled_back(client, name, str(before), entry, why, replaced_by=version)
        client.set_model_version_tag(name, version, CHAMPION_SINCE, stamp)
        client.set_model_version_tag(name, version, RESTORED_FROM, str(before))
        client.set_model_version_tag(
            name, version, LAST_EVENT, f"{entry['when']} restored by {by}: {_text(why)}"
        )
    elif event == history.CHALLENGER_REMOVED:
        current = _alias(client, name, CHALLENGER)
        if current is not None and str(current.version) == str(before):
            client.delete_registered_model_alias(name, CHALLENGER)
        _mark_rolled_back(client, name, str(before), entry, why)
    else:
        raise ValueError(f"no registry change is recorded as {event!r}")

"""When each feature view's newest online value was observed, read without serving anything.

For Feast's SQLite online store (the generated repository's default) the answer is read from
the store's own table with sqlite3: Feast keeps one row per (entity, feature) in
`{project}_{view}` with the value's event time in `event_ts`, so `MAX(event_ts)` is the event
time of the newest value any request can get. That needs no Feast import, so a monitor stays
light. For any other online store the registry's materialisation intervals are read through
Feast instead: their newest end is the time the store was loaded up to, an upper bound of the
newest event time (the figure says which of the two it is).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FEAST_DEFAULT_SQLITE_PATH = "data/online.db"  # Feast's default when online_store gives none
SOURCE_ONLINE_STORE = "online_store"
_LOCAL_IS_UTC = time.timezone == 0 and time.altzone == 0 and not time.daylight
SOURCE_REGISTRY = "registry"
BASIS_EVENT_TIME = "newest_event_time"
BASIS_MATERIALIZED_UNTIL = "materialized_until"


class FreshnessUnavailable(Exception):
    """The store could not be read: its configuration, its database, or Feast itself."""


@dataclass(frozen=True)
class OnlineStore:
    type: str
    path: Path | None  # the SQLite database, when the store is SQLite
    versioned: bool  # Feast then suffixes table names with the view's version
    key_version: int = 3  # entity_key_serialization_version: how keys are stored


@dataclass(frozen=True)
class Newest:
    view: str
    epoch: float | None  # None: the store holds no value of the view
    source: str  # SOURCE_ONLINE_STORE or SOURCE_REGISTRY
    basis: str  # BASIS_EVENT_TIME or BASIS_MATERIALIZED_UNTIL
    where: str  # the table or registry the figure was read from
    materialized: bool  # False: no table, or a table without a row


def repo_path(config: Mapping[str, Any], root: Path) -> Path:
    """The Feast repository's folder (the offline, online and monitoring paths all use it)."""
    return root / str(config["feature_store"]["repo"])


def online_store(repo: Path) -> OnlineStore:
    """The online store feature_store.yaml configures, read the way Feast reads it."""
    try:
        import yaml
    except ImportError as exc:  # Feast itself depends on PyYAML
        raise FreshnessUnavailable(f"cannot read feature_store.yaml: {exc}") from exc
    path = repo / "feature_store.yaml"
    try:
        # Feast expands environment variables before parsing; so must its readers.
        parsed = yaml.safe_load(os.path.expandvars(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise FreshnessUnavailable(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise FreshnessUnavailable(f"{path.name} is not a mapping")
    settings: Any = parsed.get("online_store", "sqlite")
    if isinstance(settings, str):
        settings = {"type": settings}
    if not isinstance(settings, dict):
        raise FreshnessUnavailable(f"{path.name}: online_store is neither a type nor a mapping")
    kind = str(settings.get("type", "sqlite"))
    registry = parsed.get("registry")
    versioned = isinstance(registry, dict) and bool(
        registry.get("enable_online_feature_view_versioning")
    )
    key_version = parsed.get("entity_key_serialization_version", 3)
    if not isinstance(key_version, int) or isinstance(key_version, bool):
        raise FreshnessUnavailable(f"{path.name}: entity_key_serialization_version is not an int")
    if kind != "sqlite" and not kind.endswith("SqliteOnlineStore"):
        return OnlineStore(kind, None, versioned, key_version)
    database = Path(str(settings.get("path", FEAST_DEFAULT_SQLITE_PATH)))
    where = database if database.is_absolute() else repo / database
    return OnlineStore("sqlite", where, versioned, key_version)


def newest_values(config: Mapping[str, Any], root: Path) -> tuple[OnlineStore, list[Newest]]:
    """Per view of config.json's feature_store, the newest value's time in the online store."""
    repo = repo_path(config, root)
    store = online_store(repo)
    views = [str(v["name"]) for v in config["feature_store"]["views"]]
    project = str(config["feature_store"]["project"])
    if store.path is not None and not store.versioned:
        return store, [sqlite_newest(store.path, project, view) for view in views]
    return store, registry_newest(repo, views)


def sqlite_newest(database: Path, project: str, view: str) -> Newest:
    table = f"{project}_{view}"
    where = f"{database.name}:{table}"
    if not database.is_file():
        return Newest(view, None, SOURCE_ONLINE_STORE, BASIS_EVENT_TIME, where, False)
    try:
        # Read-only, so a monitor never creates a database Feast has not made.
        with sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if exists is None:
                return Newest(view, None, SOURCE_ONLINE_STORE, BASIS_EVENT_TIME, where, False)
            quoted = table.replace('"', '""')
            (value,) = db.execute(f'SELECT MAX(event_ts) FROM "{quoted}"').fetchone()
    except sqlite3.Error as exc:
        raise FreshnessUnavailable(f"cannot read {where}: {exc}") from exc
    epoch = feast_sqlite_epoch(value)
    return Newest(view, epoch, SOURCE_ONLINE_STORE, BASIS_EVENT_TIME, where, epoch is not None)


def feast_sqlite_epoch(value: Any) -> float | None:
    """An `event_ts` as Feast's SQLite store wrote it, as epoch seconds (UTC).

    Feast 0.67 stores `int(naive_utc.timestamp())`: a naive UTC time that Python takes for
    local time, and reads it back with `datetime.fromtimestamp` labelled UTC. Decoding it the
    same way gives Feast's own event time on a host whose clock is not UTC too. Older releases
    stored ISO text, which is read as UTC when it carries no offset.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if _LOCAL_IS_UTC:  # the usual container: the same answer without a datetime
            return float(int(value))
        return datetime.fromtimestamp(int(value)).replace(tzinfo=UTC).timestamp()
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return feast_sqlite_epoch(int(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def registry_newest(repo: Path, views: list[str]) -> list[Newest]:
    """Per view, the end of its newest materialisation interval in Feast's registry."""
    try:
        from feast import FeatureStore

        store = FeatureStore(repo_path=str(repo))
        registered = {v.name: v for v in store.list_feature_views()}
    except Exception as exc:  # any failure of Feast is reported, not raised
        raise FreshnessUnavailable(
            f"cannot read Feast's registry: {type(exc).__name__}: {exc}"
        ) from exc
    out = []
    for view in views:
        intervals = getattr(registered.get(view), "materialization_intervals", None) or []
        ends = [_epoch(end) for _, end in intervals]
        epoch = max(ends) if ends else None
        out.append(
            Newest(
                view,
                epoch,
                SOURCE_REGISTRY,
                BASIS_MATERIALIZED_UNTIL,
                "registry" if view in registered else "registry (view not applied)",
                epoch is not None,
            )
        )
    return out


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

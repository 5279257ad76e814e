"""The online path: a request's features looked up by entity key from Feast's online store,
then the on-demand features computed by the same transforms the offline path uses."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_runtime.features.store.freshness import online_store, repo_path
from mlops_runtime.features.store.offline import open_store
from mlops_runtime.features.store.sqlite_online import SqliteOnlineReader, readable
from mlops_runtime.features.store.transforms import derive_records
from mlops_runtime.features.store.values import python_value


@dataclass
class Assembled:
    """One request row after the lookup: its features, or why it has none."""

    row: dict[str, Any]
    stale: list[str] = field(default_factory=list)  # views whose values are older than ttl
    missing: tuple[str, Any] | None = None  # (join key, value) no view row exists for
    missing_key: str | None = None  # a join key the row needs but lacks (or of a wrong type)


class OnlineFeatures:
    """Reads the online store a view at a time, one read per view for a whole batch.

    Feast's SQLite store (the embedded default) is read directly (`sqlite_online`); any
    other store through the provider's `online_read`, which `get_online_features` calls too:
    measured on the churn store, the same values for half the time (0.7 against 1.4 ms for 16
    customers), as it skips building and converting Feast's response."""

    def __init__(self, config: Mapping[str, Any], root: Path) -> None:
        fs = config["feature_store"]
        self.views: list[Mapping[str, Any]] = fs["views"]
        self.on_demand: Mapping[str, Mapping[str, Any]] = fs["on_demand"]
        key_types = {e["join_key"]: e["type"] for e in fs["entities"]}
        self.key_types = {v["join_key"]: key_types[v["join_key"]] for v in self.views}
        self.sqlite = _sqlite_reader(config, root, [v["name"] for v in self.views])
        if self.sqlite is None:
            self.store = open_store(config, root)
            self.provider = self.store.provider
            self.tables = {v["name"]: self.store.get_feature_view(v["name"]) for v in self.views}

    def warm_up(self) -> None:
        """One read of an absent entity: the online store's connection opened now rather
        than on the first request."""
        for view in self.views:
            kind = self.key_types[view["join_key"]]
            self._read(view, [0 if kind == "int" else "-"])

    def _needed(self, row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The views a row does not carry every feature of itself."""
        return [v for v in self.views if any(f not in row for f in v["features"])]

    def assemble(
        self, rows: Sequence[Mapping[str, Any]], now: datetime | None = None
    ) -> list[Assembled]:
        """Each row with its views' features filled in (values the row carries win) and the
        on-demand features computed as of `now`; one online read per view for the batch."""
        moment = now or datetime.now(UTC)
        out = [Assembled(dict(row)) for row in rows]
        wanted: dict[str, list[Assembled]] = {v["name"]: [] for v in self.views}
        for result in out:
            row = result.row
            needed = self._needed(row)
            typed = {
                v["join_key"]: _key(row.get(v["join_key"]), self.key_types[v["join_key"]])
                for v in needed
            }
            absent = [k for k, value in typed.items() if value is None]
            if absent:
                result.missing_key = absent[0]
                continue
            row.update(typed)  # "17" was looked up as 17: the log says what was looked up
            for view in needed:
                wanted[view["name"]].append(result)
        now_s = moment.timestamp()
        for view in self.views:
            if wanted[view["name"]]:
                self._fill(view, wanted[view["name"]], now_s)
        todo = [
            r
            for r in out
            if r.missing is None
            and r.missing_key is None
            and any(n not in r.row for n in self.on_demand)
        ]
        if todo:
            derive_records([r.row for r in todo], self.on_demand, moment)
        return out

    def _fill(self, view: Mapping[str, Any], results: list[Assembled], now_s: float) -> None:
        key, features = view["join_key"], view["features"]
        distinct = list(dict.fromkeys(r.row[key] for r in results))
        found = dict(zip(distinct, self._read(view, distinct), strict=True))
        for result in results:
            row = result.row
            stamp, values = found[row[key]]
            if values is None:
                if result.missing is None:
                    result.missing = (key, row[key])
                continue
            for name in features:
                if name not in row:
                    row[name] = values.get(name)
            if stamp is not None and now_s - stamp > view["ttl_s"]:
                result.stale.append(view["name"])

    def _read(self, view: Mapping[str, Any], keys: list[Any]) -> list[tuple[Any, Any]]:
        """(event time as epoch seconds, {feature: value}) per key, (None, None) for an
        absent one."""
        join_key, features = view["join_key"], list(view["features"])
        if self.sqlite is not None:
            return self.sqlite.read(view["name"], join_key, keys, features)
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        slot = "int64_val" if self.key_types[join_key] == "int" else "string_val"
        entity_keys = [
            EntityKey(join_keys=[join_key], entity_values=[Value(**{slot: k})]) for k in keys
        ]
        rows = self.provider.online_read(
            config=self.store.config,
            table=self.tables[view["name"]],
            entity_keys=entity_keys,
            requested_features=features,
        )
        return [
            (None, None)
            if values is None
            else (
                None if stamp is None else _seconds(stamp),
                {name: python_value(value) for name, value in values.items()},
            )
            for stamp, values in rows
        ]


def _sqlite_reader(
    config: Mapping[str, Any], root: Path, views: list[str]
) -> SqliteOnlineReader | None:
    """The direct reader when the store is Feast's SQLite one laid out as this runtime knows
    it; None when Feast must read it. A SQLite store whose database or tables Feast has not
    created yet raises: nothing could be served from it (the server stays unready, retries)."""
    store = online_store(repo_path(config, root))
    if not readable(store):
        return None
    assert store.path is not None
    if not store.path.is_file():
        raise FileNotFoundError(f"no online store yet: {store.path} (run features-apply)")
    reader = SqliteOnlineReader(store.path, str(config["feature_store"]["project"]))
    try:
        columns = {view: reader.columns(view) for view in views}
    except sqlite3.Error:
        return None  # not a database this module can read: Feast says why
    absent = [view for view, names in columns.items() if not names]
    if absent:
        raise LookupError(f"no online table for view {', '.join(absent)} (run features-apply)")
    return reader if all(map(reader.knows, columns.values())) else None


def _seconds(moment: datetime) -> float:
    """Epoch seconds of an event time; a store that drops the zone means UTC, as Feast does."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


_INT64 = (-(2**63), 2**63)


def _key(value: Any, kind: str) -> Any:
    """The key as Feast stores it, or None when the value cannot be one."""
    if kind == "int":
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value if _INT64[0] <= value < _INT64[1] else None
        return None
    return value if isinstance(value, str) and value else None

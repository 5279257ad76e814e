"""The online path: a request's features looked up by entity key from Feast's online store,
then the on-demand features computed by the same transforms the offline path uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_runtime.features.store.offline import feature_refs, open_store
from mlops_runtime.features.store.transforms import derive_records


@dataclass
class Assembled:
    """One request row after the lookup: its features, or why it has none."""

    row: dict[str, Any]
    stale: list[str] = field(default_factory=list)  # views whose values are older than ttl
    missing: tuple[str, Any] | None = None  # (join key, value) no view row exists for
    missing_key: str | None = None  # a join key the row needs but lacks (or of a wrong type)


class OnlineFeatures:
    def __init__(self, config: Mapping[str, Any], root: Path) -> None:
        fs = config["feature_store"]
        self.store = open_store(config, root)
        self.views: list[Mapping[str, Any]] = fs["views"]
        self.on_demand: Mapping[str, Mapping[str, Any]] = fs["on_demand"]
        self.refs = {v["name"]: [f"{v['name']}:{f}" for f in v["features"]] for v in self.views}
        self.all_refs = feature_refs(config)
        key_types = {e["join_key"]: e["type"] for e in fs["entities"]}
        self.key_types = {v["join_key"]: key_types[v["join_key"]] for v in self.views}

    def _needed(self, row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The views a row does not carry every feature of itself."""
        return [v for v in self.views if any(f not in row for f in v["features"])]

    def assemble(
        self, rows: Sequence[Mapping[str, Any]], now: datetime | None = None
    ) -> list[Assembled]:
        """Each row with its views' features filled in (values the row carries win) and the
        on-demand features computed as of `now`; one online read for the whole batch."""
        moment = now or datetime.now(UTC)
        out = [Assembled(dict(row)) for row in rows]
        wanted: list[int] = []
        for i, (row, result) in enumerate(zip(rows, out, strict=True)):
            needed = self._needed(row)
            absent = [
                v["join_key"]
                for v in needed
                if _key(row.get(v["join_key"]), self.key_types[v["join_key"]]) is None
            ]
            if absent:
                result.missing_key = absent[0]
            elif needed:
                wanted.append(i)
        if wanted:
            self._look_up([out[i] for i in wanted], moment)
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

    def _look_up(self, results: list[Assembled], moment: datetime) -> None:
        keys = sorted(self.key_types)
        entity_rows = [
            {k: _key(r.row.get(k), self.key_types[k]) for k in keys if k in r.row} for r in results
        ]
        response = self.store.get_online_features(
            features=self.all_refs, entity_rows=entity_rows
        ).to_dict(include_event_timestamps=True)
        now_s = moment.timestamp()
        for view in self.views:
            features = view["features"]
            for i, result in enumerate(results):
                if all(f in result.row for f in features):
                    continue
                stamps = [response[f"{f}__ts"][i] for f in features]
                if result.missing is None and not any(stamps):
                    result.missing = (view["join_key"], result.row[view["join_key"]])
                    continue
                for f in features:
                    result.row.setdefault(f, response[f][i])
                if now_s - max(stamps) > view["ttl_s"]:
                    result.stale.append(view["name"])


def _key(value: Any, kind: str) -> Any:
    """The key as Feast stores it, or None when the value cannot be one."""
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        return None
    return value if isinstance(value, str) and value else None

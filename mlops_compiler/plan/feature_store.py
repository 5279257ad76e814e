"""The feature store's configuration: what the runtime's feature stages, training and serving
read from config.json, and what the Feast repository's templates print."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mlops_compiler.spec.model import FeatureStore, Spec
from mlops_compiler.spec.scalars import parse_duration
from mlops_compiler.spec.store_rules import derived_order, placement, source_columns

REPO_DIR = "feature_repo"
# Feast's value types for the contract's column types.
FEAST_TYPES = {
    "int": "Int64",
    "float": "Float64",
    "bool": "Bool",
    "category": "String",
    "str": "String",
}
ENTITY_VALUE_TYPES = {"int": "INT64", "str": "STRING"}


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def source_env(view: str) -> str:
    return "MLOPS_FEATURE_SOURCE_" + view.upper().replace("-", "_")


def feature_store_config(spec: Spec, spec_dir: Path, out_dir: Path) -> dict[str, Any]:
    assert spec.features is not None and spec.features.store is not None
    store: FeatureStore = spec.features.store
    headers = source_columns(store, spec_dir)
    place = placement(store, headers)
    order = derived_order(store)
    entities = {e.name: e for e in store.entities}
    served = {f for v in store.views for f in v.features}
    views = []
    for view in store.views:
        derived = [name for name in order if place[name] == view.name]
        needed = {*view.features}
        for name in derived:
            needed.update(i for i in store.derived[name].inputs if i not in store.derived)
        header = headers.get(view.name) or sorted(needed)
        ttl = parse_duration(view.ttl)
        definition = {
            "entity": view.entity,
            "timestamp": view.timestamp,
            "ttl_s": ttl,
            "features": [*view.features, *derived],
            "derived": {
                name: store.derived[name].model_dump(mode="json", exclude_none=True)
                for name in derived
            },
        }
        views.append(
            {
                "name": view.name,
                "join_key": entities[view.entity].join_key,
                "source": _relative(spec_dir / view.source, out_dir),
                # A deployment's copy of the source (a container has no specs/ folder).
                "source_env": source_env(view.name),
                "offline": f"data/{view.name}.parquet",
                # Source columns read, in the file's order: the features and the raw inputs.
                "columns": [c for c in header if c in needed],
                "max_age_s": ttl if view.max_age is None else parse_duration(view.max_age),
                # The lineage of a training run names each view by this digest of its definition.
                "definition_sha256": hashlib.sha256(
                    json.dumps(definition, sort_keys=True).encode()
                ).hexdigest(),
                **definition,
            }
        )
    target = spec.data.target
    request = [
        c
        for c in spec.data.contract.columns
        if c != target and c not in served and c not in store.derived
    ]
    return {
        "repo": REPO_DIR,
        "project": spec.name.replace("-", "_"),
        "entities": [e.model_dump(mode="json") for e in store.entities],
        "views": views,
        "on_demand": {
            name: store.derived[name].model_dump(mode="json", exclude_none=True)
            for name in order
            if place[name] is None
        },
        "request": request,
        "entity_timestamp": store.entity_timestamp,
        "stale": store.stale,
    }


def feast_context(spec: Spec, config: dict[str, Any]) -> dict[str, Any]:
    """What the Feast repository's templates print: types from the contract."""
    assert spec.features is not None and spec.features.store is not None
    store = spec.features.store
    columns = spec.data.contract.columns
    fields = {
        v["name"]: [(f, FEAST_TYPES[columns[f].type]) for f in v["features"]]
        for v in config["views"]
    }
    return {
        "project": config["project"],
        "types": sorted({kind for pairs in fields.values() for _, kind in pairs}),
        "entities": [
            {**e, "value_type": ENTITY_VALUE_TYPES[e["type"]]} for e in config["entities"]
        ],
        "views": [
            {
                "name": v["name"],
                "entity": v["entity"],
                "join_key": v["join_key"],
                "ttl": declared.ttl,
                "max_age": declared.max_age or declared.ttl,
                "offline": v["offline"],
                "timestamp": v["timestamp"],
                "ttl_s": v["ttl_s"],
                "fields": fields[v["name"]],
            }
            for v, declared in zip(config["views"], store.views, strict=True)
        ],
    }

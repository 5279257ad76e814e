"""The offline path: each view's source made into the Parquet table Feast reads (typed by the
contract, its derived features computed), and training rows joined to it point-in-time."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops_runtime.contract.training_gate import validate_frame
from mlops_runtime.data import load_table
from mlops_runtime.features.store.freshness import repo_path
from mlops_runtime.features.store.transforms import derive

if TYPE_CHECKING:
    from feast import FeatureStore

ROW = "__mlops_row"
CONTRACT_REPORT = Path("reports/contract_report.json")
# What a training run read from the store; the tracking worker logs it with the run.
VIEWS_LINEAGE = Path("reports/feature_views.json")


def view_source(view: Mapping[str, Any], root: Path) -> Path:
    """The view's source file: the variable `source_env` names when set (a deployment's
    copy of the data), else the file the spec declared."""
    override = os.environ.get(str(view.get("source_env") or ""), "")
    return Path(override) if override else root / view["source"]


def view_contract(view: Mapping[str, Any], contract: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's rules for the columns a view serves (its source has other columns)."""
    columns = contract["columns"]
    return {
        "min_rows": 1,
        "extra_columns": "ignore",
        "columns": {name: columns[name] for name in view["features"] if name in columns},
    }


def prepare_view(
    view: Mapping[str, Any], contract: Mapping[str, Any], root: Path, repo: Path
) -> tuple[Path, int]:
    """Write the view's offline table; raises ContractViolation (report written) on bad data,
    leaving the previous table in place."""
    source = view_source(view, root)
    key, stamp = view["join_key"], view["timestamp"]
    raw = load_table(source, contract)
    missing = [c for c in (key, stamp, *view["columns"]) if c not in raw.columns]
    if missing:
        raise ValueError(f"{source} has no column {', '.join(map(repr, missing))}")
    frame = raw[[key, stamp, *view["columns"]]].copy()
    frame[stamp] = pd.to_datetime(frame[stamp], utc=True)
    frame = derive(frame, view["derived"], as_of=frame[stamp])
    typed, _ = validate_frame(
        frame[view["features"]],
        view_contract(view, contract),
        source=f"{source} (view {view['name']})",
        report_path=root / CONTRACT_REPORT,
    )
    table = pd.concat([frame[[key, stamp]], typed[view["features"]]], axis=1)
    target = repo / view["offline"]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    table.to_parquet(partial, index=False)
    os.replace(partial, target)
    return target, len(table)


def prepare_all(config: Mapping[str, Any], contract: Mapping[str, Any], root: Path) -> list[int]:
    repo = repo_path(config, root)
    return [prepare_view(v, contract, root, repo)[1] for v in config["feature_store"]["views"]]


def open_store(config: Mapping[str, Any], root: Path) -> FeatureStore:
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo_path(config, root)))


def feature_refs(config: Mapping[str, Any]) -> list[str]:
    return [f"{v['name']}:{f}" for v in config["feature_store"]["views"] for f in v["features"]]


def training_frame(
    rows: pd.DataFrame, config: Mapping[str, Any], store: FeatureStore
) -> pd.DataFrame:
    """The entity rows with every view's features as of each row's event time, and the
    on-demand features computed from them. No value newer than a row's time, or older than
    its view's ttl, reaches it (Feast's point-in-time join); rows keep their order."""
    fs = config["feature_store"]
    stamp = fs["entity_timestamp"]
    keys = sorted({v["join_key"] for v in fs["views"]})
    rows = rows.reset_index(drop=True).copy()
    rows[stamp] = pd.to_datetime(rows[stamp], utc=True)
    rows[ROW] = range(len(rows))
    entity_df = rows[[*keys, stamp, ROW]]
    for key in keys:
        entity_df = entity_df.astype({key: _key_dtype(fs, key)})
    joined = store.get_historical_features(entity_df=entity_df, features=feature_refs(config))
    features = [f for v in fs["views"] for f in v["features"]]
    values = joined.to_df()[[ROW, *features]]
    # Feast leaves out rows no view has a value for; they stay, with nulls.
    assembled = rows.merge(values, on=ROW, how="left").sort_values(ROW, ignore_index=True)
    assembled = derive(assembled, fs["on_demand"], as_of=assembled[stamp])
    return assembled.drop(columns=[ROW, stamp, *keys])


def _key_dtype(fs: Mapping[str, Any], key: str) -> str:
    kinds = {e["type"] for e in fs["entities"] if e["join_key"] == key}
    return "int64" if kinds == {"int"} else "string"


def load_training_rows(
    path: Path, config: Mapping[str, Any], contract: Mapping[str, Any], root: Path
) -> pd.DataFrame:
    """The training table of a store with entity rows: the views' sources prepared again (so
    the join reads what the sources hold now), the registry applied if it lacks them, the
    rows joined."""
    from mlops_runtime.features.store.registry import ensure_applied, views_lineage

    rows = load_table(path, contract)
    prepare_all(config, contract, root)
    store = open_store(config, root)
    ensure_applied(store, config)
    frame = training_frame(rows, config, store)
    target = root / VIEWS_LINEAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(views_lineage(store, config, root), indent=2) + "\n")
    return frame

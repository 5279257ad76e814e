"""Feast's registry of the generated repository: applied from features.py, read for lineage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_runtime.data import file_sha256

if TYPE_CHECKING:
    from feast import FeatureStore


def apply(repo: Path) -> None:
    """What `feast apply` does, in this process: the definitions in definitions.py
    registered, the online store's tables made."""
    import sys

    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    config = load_repo_config(repo, repo / "feature_store.yaml")
    # Feast imports the repository's modules by name, as its CLI does from inside the repo.
    sys.path.insert(0, str(repo.resolve()))
    try:
        apply_total(config, repo, skip_source_validation=False)
    finally:
        sys.path.remove(str(repo.resolve()))


def ensure_applied(store: FeatureStore, config: Mapping[str, Any]) -> None:
    registered = {v.name for v in store.list_feature_views()}
    if any(v["name"] not in registered for v in config["feature_store"]["views"]):
        apply(Path(store.repo_path))
        store.refresh_registry()


def views_lineage(
    store: FeatureStore, config: Mapping[str, Any], root: Path
) -> list[dict[str, Any]]:
    """What a training run records of each view: its definition digest (the version of its
    declaration), the registry's timestamps, and the digest of the table it read."""
    out = []
    for view in config["feature_store"]["views"]:
        registered = store.get_feature_view(view["name"])
        table = Path(store.repo_path) / view["offline"]
        out.append(
            {
                "name": view["name"],
                "definition_sha256": view["definition_sha256"],
                "features": list(view["features"]),
                "registry_updated": _iso(registered.last_updated_timestamp),
                "offline_sha256": file_sha256(table) if table.exists() else None,
            }
        )
    return out


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()

"""Freshness of the feature store: the age of each view's newest online value, against its bound.

A model served from a store that stopped being materialised keeps answering, on values that
grow older every hour; nothing in the prediction log shows it. So the check reads the store
itself (features/store/freshness.py), not the window, and runs whether or not the window
holds any prediction: a store deployed before its first request needs watching too.

A view whose newest value is older than its `max_age_s` (the spec's `max_age`, by default its
ttl) is an alert; so is a view the store holds no value of, since nothing it serves is fresh.
A store the monitor cannot read is a problem of the report (status at least warning), not a
verdict on the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.features.store.freshness import (
    SOURCE_ONLINE_STORE,
    FreshnessUnavailable,
    Newest,
    newest_values,
)
from mlops_runtime.monitor.checks import Violations, iso
from mlops_runtime.timestamps import iso_seconds

CHECK = "feature_freshness"
PROBLEM = "feature_freshness_unavailable"


def check_freshness(
    config: Mapping[str, Any],
    root: Path,
    *,
    now: float,
    violations: Violations,
    problems: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The report's `feature_freshness` section (None without a feature store); a violation
    per view that is stale or was never materialised, a problem when the store is unreadable."""
    store_config = config.get("feature_store")
    if not store_config:
        return None
    bounds = {str(v["name"]): _bound(v) for v in store_config["views"]}
    section: dict[str, Any] = {"checked_at": iso_seconds(now), "checked_at_epoch": now}
    try:
        store, newest = newest_values(config, root)
    except FreshnessUnavailable as exc:
        problems.append({"status": PROBLEM, "message": str(exc)})
        section.update(
            status="unavailable",
            message=str(exc),
            views={
                name: {"status": "unknown", "max_age_s": bound} for name, bound in bounds.items()
            },
        )
        return section
    section["online_store"] = {
        "type": store.type,
        "path": _shown(store.path, root) if store.path is not None else None,
    }
    section["views"] = {
        item.view: _verdict(item, bounds[item.view], now, violations) for item in newest
    }
    stale = [name for name, v in section["views"].items() if v["status"] != "ok"]
    section["status"] = "violated" if stale else "ok"
    section["stale_views"] = stale
    return section


def _bound(view: Mapping[str, Any]) -> float | None:
    bound = view.get("max_age_s") or view.get("ttl_s")
    return float(bound) if bound else None


def _verdict(
    item: Newest, bound: float | None, now: float, violations: Violations
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "newest": iso(item.epoch),
        "newest_epoch": item.epoch,
        "age_s": None if item.epoch is None else now - item.epoch,
        "max_age_s": bound,
        "source": item.source,
        "basis": item.basis,
        "read_from": item.where,
    }
    if item.epoch is None:
        out["status"] = "not_materialised"
        violations.add(
            CHECK,
            item.view,
            None,
            bound,
            "alert",
            f"feature view {item.view} was never materialised: the online store holds no value "
            f"of it ({item.where}), so nothing it serves is fresh",
        )
        return out
    age = now - item.epoch
    if bound is not None and age > bound:
        out["status"] = "violated"
        what = "newest value" if item.source == SOURCE_ONLINE_STORE else "store loaded up to"
        violations.add(
            CHECK,
            item.view,
            age,
            bound,
            "alert",
            f"feature view {item.view}: {what} {iso_seconds(item.epoch)} is {age_text(age)} old, "
            f"past its bound of {age_text(bound)}",
        )
    else:
        out["status"] = "ok"
    return out


def age_text(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)

"""Which columns are the model's features, and which of them are categorical: read from
config.json alone, so stages that only need the names (the monitor) import no scikit-learn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def feature_columns(config: Mapping[str, Any]) -> list[str]:
    features = config["features"]
    return [
        *features.get("numeric", {}).get("columns", []),
        *features.get("categorical", {}).get("columns", []),
        *features.get("passthrough", []),
    ]


def feature_split(
    config: Mapping[str, Any], contract: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Numeric and categorical model inputs, decided as `features.model_frame` decides them."""
    categorical = set(config["features"].get("categorical", {}).get("columns", []))
    columns = contract.get("columns", {})
    numeric_out, categorical_out = [], []
    for name in feature_columns(config):
        kind = columns.get(name, {}).get("type", "float")
        if name in categorical or kind in ("category", "str"):
            categorical_out.append(name)
        else:
            numeric_out.append(name)
    return numeric_out, categorical_out

"""Metrics the generated pipeline computes, per task, and which direction is better."""

from __future__ import annotations

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}

METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "log_loss", "roc_auc"),
    "regression": ("mae", "r2", "rmse"),
}

# Metrics bounded to [0, 1]; a threshold outside that range can never be met.
UNIT_INTERVAL = frozenset({"accuracy", "f1", "roc_auc"})

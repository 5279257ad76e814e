"""Prediction-log lines as the serving app writes them, for monitor tests that need exact
control over the window (timestamps, columns, values)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def run_id(project: Path) -> str:
    (profile,) = (project / "reports/reference").glob("*.json")
    return profile.stem


def log_lines(project: Path, rows: list[dict[str, Any]], name: str = "predictions-1.jsonl") -> Path:
    folder = project / "prediction_log"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    lines = [
        {
            "request_id": f"r{i}",
            "row": 0,
            "ts": stamp,
            "model": "breast-cancer",
            "model_version": "1",
            "run_id": run_id(project),
            "arm": "champion",
            "endpoint": "/predict",
            "inputs": record,
            "output": {"prediction": 0, "probabilities": [0.8, 0.2]},
            "latency_ms": 1.5,
        }
        for i, record in enumerate(rows)
    ]
    path = folder / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path

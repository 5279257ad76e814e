"""Run inside a store project's interpreter (it has Feast): print, as JSON, what the runtime's
offline and online paths give for the entity rows of a JSON file.

    python store_probe.py ROWS.json offline|online [NOW]
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_runtime.features.store.offline import load_training_rows, open_store, training_frame
from mlops_runtime.features.store.online import OnlineFeatures
from mlops_runtime.project import load_project


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Exact values: Python floats keep every bit through json (repr round-trips)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def main() -> None:
    rows = json.loads(Path(sys.argv[1]).read_text())
    project = load_project(Path.cwd())
    config = project.config
    if sys.argv[2] == "offline":
        frame = training_frame(pd.DataFrame(rows), config, open_store(config, project.root))
        out = records(frame)
    elif sys.argv[2] == "training":
        path = Path(config["data"]["path"])
        out = records(load_training_rows(path, config, project.contract, project.root))
    else:
        now = datetime.fromisoformat(sys.argv[3])
        out = [
            {"row": a.row, "stale": a.stale, "missing": a.missing, "missing_key": a.missing_key}
            for a in OnlineFeatures(config, project.root).assemble(rows, now=now)
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

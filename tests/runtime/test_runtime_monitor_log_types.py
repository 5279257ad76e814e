"""A prediction log whose input field changes type from line to line (a key sent as 17 by
one client and "17" by another, a value that is sometimes text) is read, not dropped."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_runtime.monitor.prediction_window import WindowScan, partitions


def line(i: int, **inputs: object) -> str:
    return json.dumps(
        {
            "request_id": f"r{i}",
            "row": 0,
            "ts": f"2026-12-01T10:00:{i:02d}+00:00",
            "model_version": "1",
            "run_id": "run",
            "endpoint": "/predict",
            "latency_ms": 1.0,
            "inputs": {"x": 0.5 + i, **inputs},
            "output": {"prediction": i % 2},
        }
    )


def test_an_input_of_mixed_types_keeps_the_file(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    values: list[object] = [17, "17", 3.5, True, None, "abc"]
    log.write_text("\n".join(line(i, key=v) for i, v in enumerate(values)) + "\n")
    scan = WindowScan(files=[log])

    (part,) = partitions(scan, 0.0, 4e9)

    assert scan.corrupt_files == [] and scan.corrupt_lines == 0
    assert part.rows == len(values)
    # Each value as the line wrote it: JSON text for the non-strings, null stays missing.
    assert list(part.columns["input.key"]) == ["17", "17", "3.5", "true", None, "abc"]
    assert list(part.columns["input.x"]) == [0.5 + i for i in range(len(values))]


def test_ints_and_floats_together_stay_numbers(tmp_path: Path) -> None:
    log = tmp_path / "predictions.jsonl"
    log.write_text("\n".join(line(i, n=v) for i, v in enumerate([1, 2.5, None])) + "\n")
    scan = WindowScan(files=[log])

    (part,) = partitions(scan, 0.0, 4e9)

    assert scan.corrupt_files == []
    values = list(part.columns["input.n"])
    assert values[:2] == [1.0, 2.5] and values[2] != values[2]  # NaN for the missing one

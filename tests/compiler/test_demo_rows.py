"""The demo's data: typed requests, a worse training set, a shifted world inside the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_compiler.demo import rows
from mlops_compiler.errors import UsageError

CONTRACT = {
    "columns": {
        "size": {"type": "float", "min": 0, "max": 10},
        "count": {"type": "int", "min": 0},
        "kind": {"type": "category", "values": ["a", "b"]},
        "flag": {"type": "bool"},
        "label": {"type": "category", "values": ["0", "1"]},
    }
}


def table(tmp_path: Path, n: int = 40) -> rows.Table:
    data = tmp_path / "data.csv"
    lines = ["size,count,kind,flag,label"]
    lines += [
        f"{i % 10 + 0.5},{i},{'ab'[i % 2]},{'true' if i % 3 else 'false'},{i % 2}" for i in range(n)
    ]
    lines.append(",,a,false,0")  # missing numbers are nulls
    data.write_text("\n".join(lines) + "\n")
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps(CONTRACT))
    return rows.read_table(data, contract, "label")


def test_records_are_typed_by_the_contract_and_leave_the_label_out(tmp_path: Path) -> None:
    records = table(tmp_path).records()
    assert all(set(r) == {"size", "count", "kind", "flag"} for r in records)
    typed = next(r for r in records if r["count"] == 3)
    assert typed == {"size": 3.5, "count": 3, "kind": "b", "flag": False}
    assert {"size": None, "count": None, "kind": "a", "flag": False} in records


def test_the_worse_training_set_flips_labels_of_the_widest_feature_only(tmp_path: Path) -> None:
    t = table(tmp_path)
    path, feature = rows.corrupted(t, tmp_path / "worse.csv")
    assert feature == "count"  # the widest of size (0.5..9.5) and count (0..39)
    worse = rows.read_table(path, tmp_path / "contract.json", "label")
    flipped = {
        r["count"]
        for r, w in zip(
            sorted(t.rows, key=lambda r: r["count"]),
            sorted(worse.rows, key=lambda r: r["count"]),
            strict=True,
        )
        if r["label"] != w["label"]
    }
    assert flipped and min(int(c) for c in flipped) >= 33, flipped  # the top 15 %


def test_the_shifted_world_stays_inside_the_contract(tmp_path: Path) -> None:
    requests, training = rows.shifted(table(tmp_path))
    sizes = [r["size"] for r in requests if r["size"] is not None]
    assert max(sizes) == 10 and min(sizes) > 0.5, "moved up, capped at max"
    assert all(isinstance(r["count"], int) for r in requests if r["count"] is not None)
    assert {r["label"] for r in training} == {"0", "1"}, "the labels stay true"


def test_only_csv_data_is_read(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="reads CSV"):
        rows.read_table(tmp_path / "x.parquet", tmp_path / "contract.json", "label")
    with pytest.raises(UsageError, match="not found"):
        rows.read_table(tmp_path / "x.csv", tmp_path / "contract.json", "label")

"""The serving path reads Feast's SQLite online store itself (features/store/sqlite_online.py):
its keys, its values and its answers must be Feast's, byte for byte and value for value."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.feature_store.conftest import StoreProject

pytestmark = pytest.mark.slow
PROBE = Path(__file__).with_name("online_reads_probe.py")


def run_probe(python: str, cwd: Path, *args: str) -> Any:
    result = subprocess.run(
        [python, str(PROBE), *args], cwd=cwd, capture_output=True, text=True, check=False,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def test_keys_and_values_are_encoded_as_feast_encodes_them(feast_interpreter: str) -> None:
    found = run_probe(feast_interpreter, Path.cwd(), "codec")
    assert found["keys_checked"] > 2000 and found["key_mismatches"] == []
    assert found["values_checked"] > 3000 and found["value_mismatches"] == []


def test_direct_reads_give_what_feast_gives(churn: StoreProject, tmp_path: Path) -> None:
    present = [int(k) for k in churn.activity["customer_id"].drop_duplicates().head(300)]
    absent = [10**9, -1, 0]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(present + absent))
    found = run_probe(churn.python, churn.path, "store", str(keys_file))

    assert found["feast_imported_by_direct_reads"] is False
    direct, provider = found["direct"], found["provider"]
    assert len(direct) == len(provider) == len(present) + len(absent)
    for key, ours, theirs in zip(present + absent, direct, provider, strict=True):
        if key in absent:
            assert ours == theirs == [None, None], key
            continue
        assert ours[0] == theirs[0], (key, ours[0], theirs[0])  # the event time, in seconds
        assert ours[1].keys() == theirs[1].keys(), key
        for name, value in ours[1].items():
            assert same(value, theirs[1][name]), (key, name, value, theirs[1][name])

    # Feast's public API answers the same values for every present key.
    response = found["online_features"]
    for i, key in enumerate(present):
        for name, value in direct[i][1].items():
            assert same(value, response[name][i]), (key, name, value, response[name][i])

    # And whole assembled rows (view features, on-demand features) agree between the paths.
    assert found["assembled_direct"][: len(present)] == found["assembled_provider"][: len(present)]

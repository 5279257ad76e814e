"""The feature stages on bad data: a source that breaks the contract stops materialising and
training with a report, and leaves the offline table, the online store and the registry as
they were. check-data checks the assembled training rows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.feature_store.conftest import DATASETS, make_store_project
from tests.feature_store.test_point_in_time import probe

pytestmark = pytest.mark.slow


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_bad_source_changes_nothing_downstream(tmp_path: Path, feast_interpreter: str) -> None:
    store = make_store_project(tmp_path / "p")
    start = (store.activity["event_timestamp"].min() - pd.Timedelta(days=1)).isoformat()
    store.ok("features-materialize", "--start", start)
    assert "meets the data contract" in store.ok("check-data")
    store.ok("train")
    now = pd.Timestamp.now(tz="UTC").isoformat()
    asked = [{"customer_id": 1000, "contract": "one-year", "tenure_months": 5}]
    before = probe(store, tmp_path, "online", asked, now)

    # The newest snapshot of customer 1000 now says it was charged a negative amount.
    activity = store.activity.copy()
    newest = activity[activity["customer_id"] == 1000]["event_timestamp"].idxmax()
    activity.loc[newest, "monthly_charges"] = -5.0
    source = tmp_path / "p" / "specs" / "data" / "churn_activity.csv"
    source.write_bytes(DATASETS.to_csv_bytes(DATASETS.iso_utc(activity)))
    table = store.path / "feature_repo" / "data" / "activity.parquet"
    online_db = store.path / "feature_repo" / "data" / "online_store.db"
    digests = (_digest(table), _digest(online_db))

    for stage in (("features-materialize",), ("train",), ("check-data",)):
        result = store.stage(*stage)
        assert result.returncode == 3, (stage, result.stdout + result.stderr)
        assert "monthly_charges" in result.stderr, result.stderr
    report = json.loads((store.path / "reports" / "contract_report.json").read_text())
    assert report["ok"] is False and "view activity" in report["source"]
    assert [f["column"] for f in report["failures"]] == ["monthly_charges"]
    assert (_digest(table), _digest(online_db)) == digests
    assert probe(store, tmp_path, "online", asked, now) == before
    lineage = json.loads(store.ok("lineage", "--json"))
    assert lineage["version"] == "1"  # the failed training registered nothing

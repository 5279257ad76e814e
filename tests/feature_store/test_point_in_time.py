"""Training rows joined point-in-time, and the offline and online paths agreeing value for
value: real Feast stores, materialised from the simulated churn tables."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.feature_store.conftest import DATASETS, StoreProject, make_store_project

pytestmark = pytest.mark.slow
PROBE = Path(__file__).with_name("store_probe.py")
VIEW_FEATURES = ["monthly_charges", "total_charges", "support_calls", "plan"]
DERIVED = ["log_total_charges", "days_since_login", "calls_bucket", "charges_per_month"]
TTL = pd.Timedelta(days=45)


def probe(store: StoreProject, tmp: Path, mode: str, rows: Any, *extra: str) -> Any:
    rows_file = tmp / f"rows-{mode}.json"
    rows_file.write_text(json.dumps(rows))
    result = subprocess.run(
        [store.python, str(PROBE), str(rows_file), mode, *extra],
        cwd=store.path, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def expected_join(activity: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The point-in-time join computed independently of Feast: each row gets its customer's
    latest snapshot at or before the row's time, if no older than the view's ttl."""
    left = rows.assign(at=pd.to_datetime(rows["event_timestamp"], utc=True), row=range(len(rows)))
    left = left.sort_values("at")
    right = activity.assign(at=pd.to_datetime(activity["event_timestamp"], utc=True))
    right = right.drop(columns=["event_timestamp"]).sort_values("at")
    joined = pd.merge_asof(
        left, right, on="at", by="customer_id", direction="backward", tolerance=TTL
    )
    return joined.sort_values("row", ignore_index=True)


def same(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    return bool(a == b)


def test_training_rows_take_no_value_newer_than_their_label(
    tmp_path: Path, feast_interpreter: str
) -> None:
    store = make_store_project(tmp_path / "p")
    labels = store.labels.reset_index(drop=True)
    victim_index = len(labels) // 2
    # A planted future value: one hour after a label was observed, the customer's charges jump
    # to a value no honest row may see; a second label a day later must see it.
    victim = labels.iloc[victim_index]
    planted_at = victim["event_timestamp"] + pd.Timedelta(hours=1)
    latest = store.activity[store.activity["customer_id"] == victim["customer_id"]]
    planted = latest.sort_values("event_timestamp").iloc[-1:].copy()
    planted["event_timestamp"] = planted_at
    planted["last_login_at"] = planted_at - pd.Timedelta(days=1)
    planted["monthly_charges"] = 999.25
    activity = pd.concat([store.activity, planted], ignore_index=True)
    later = victim.copy()
    later["event_timestamp"] = planted_at + pd.Timedelta(days=1)
    labels = pd.concat([labels, later.to_frame().T], ignore_index=True)
    labels = labels.astype({"customer_id": "int64", "tenure_months": "int64"})
    specs = tmp_path / "p" / "specs" / "data"
    (specs / "churn_activity.csv").write_bytes(DATASETS.to_csv_bytes(DATASETS.iso_utc(activity)))
    (specs / "churn_labels.csv").write_bytes(DATASETS.to_csv_bytes(DATASETS.iso_utc(labels)))

    got = probe(store, tmp_path, "training", None)
    assert len(got) == len(labels)  # Feast drops rows without values; the join keeps them
    victim_row, later_row = got[victim_index], got[-1]
    assert victim_row["monthly_charges"] != 999.25
    assert later_row["monthly_charges"] == 999.25
    expected = expected_join(activity, labels)
    for column in VIEW_FEATURES:
        mismatched = [
            i
            for i, row in enumerate(got)
            if not same(row[column], _value(expected.iloc[i][column]))
        ]
        assert not mismatched, (column, mismatched[:5])
    # The entity keys and times are not features: the contract sees the assembled row only.
    assert "customer_id" not in got[0] and "event_timestamp" not in got[0]


def _value(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def test_offline_and_online_values_are_identical_for_every_feature(
    churn: StoreProject, tmp_path: Path
) -> None:
    now = pd.Timestamp.now(tz="UTC").floor("s")
    sample = churn.labels.drop_duplicates("customer_id").head(300)
    request = [
        {
            "customer_id": int(r.customer_id),
            "contract": r.contract,
            "tenure_months": int(r.tenure_months),
        }
        for r in sample.itertuples()
    ]
    online = probe(churn, tmp_path, "online", request, now.isoformat())
    offline = probe(
        churn, tmp_path, "offline", [{**r, "event_timestamp": now.isoformat()} for r in request]
    )
    assert len(online) == len(offline) == len(request)
    for asked, on, off in zip(request, online, offline, strict=True):
        assert on["missing"] is None and on["stale"] == [], on
        for feature in [*VIEW_FEATURES, *DERIVED]:
            assert on["row"][feature] is not None, (asked, feature)
            assert same(on["row"][feature], off[feature]), (
                asked,
                feature,
                on["row"][feature],
                off[feature],
            )

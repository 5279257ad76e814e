"""Write the example datasets under specs/data/ from locally bundled sources.

    python scripts/make_datasets.py [--out specs/data]

Sources are the copies shipped inside scikit-learn (breast_cancer, diabetes, wine) and the
palmerpenguins package (penguins); the churn tables (a feature store's source and its entity
rows) are simulated from a fixed seed. Nothing is downloaded. Output bytes are deterministic: rows
keep their source order, integral columns are written as integers, other floats with Python's
shortest round-trip repr, missing values as empty fields, line endings are '\\n'. A test reruns
this script and compares the result with the committed files byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "specs" / "data"


def snake_case(name: str) -> str:
    """`mean radius` -> `mean_radius`; `od280/od315_of_diluted_wines` -> `od280_od315_...`."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    # A leading digit would not be a valid identifier for the spec's column keys.
    return f"c_{cleaned}" if cleaned[:1].isdigit() else cleaned


def _is_integral(series: pd.Series) -> bool:
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return False
    values = series.dropna()
    return bool(len(values)) and bool(((values % 1) == 0).all())


def _formatter(series: pd.Series) -> Callable[[object], str]:
    if pd.api.types.is_bool_dtype(series):
        return lambda v: "true" if v else "false"
    if _is_integral(series):
        return lambda v: str(int(v))  # type: ignore[call-overload]
    if pd.api.types.is_numeric_dtype(series):
        return lambda v: repr(float(v))  # type: ignore[arg-type]
    return str


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise with explicit per-column formatting (pandas' own float output may change)."""
    formatters = {col: _formatter(frame[col]) for col in frame.columns}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            missing = (
                value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
            )
            cells.append("" if missing else formatters[col](value))
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.rename(columns=snake_case)
    # sklearn encodes 0 = malignant, 1 = benign; the positive class here is the diagnosis.
    frame["malignant"] = (bunch.target == 0).astype("int64")
    return frame


def diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    # Unscaled values (age in years, sex 1/2, ...) make readable contract bounds.
    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.data.rename(columns=snake_case)
    frame["progression"] = bunch.target
    return frame


def wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.data.rename(columns=snake_case)
    frame["cultivar"] = bunch.target.astype("int64")
    return frame


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    frame = load_penguins()
    return frame.rename(columns=snake_case)


CHURN_END = pd.Timestamp("2026-11-30", tz="UTC")


def churn_tables(
    end: pd.Timestamp = CHURN_END, customers: int = 1500, seed: int = 11
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly activity snapshots per customer (a feature view's source) and labelled entity
    rows. A label depends on the customer's latest snapshot before the label's time, so only a
    point-in-time join recovers its signal; `end` lets tests make data that is fresh today."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + customers)
    plans = np.array(["basic", "standard", "premium"])
    plan_of = rng.integers(0, 3, customers)
    base_charge = np.array([30.0, 60.0, 95.0])[plan_of] + rng.normal(0, 5, customers)
    snapshots = 11
    rows = []
    total = np.zeros(customers)
    for month in range(snapshots):
        at = end - pd.Timedelta(days=30 * (snapshots - 1 - month))
        at = at - pd.to_timedelta(rng.integers(0, 6 * 3600, customers), unit="s")
        charge = np.round(base_charge + rng.normal(0, 3, customers), 2)
        total = np.round(total + charge, 2)
        login_gap = rng.exponential(6.0, customers)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "event_timestamp": at,
                    "monthly_charges": charge,
                    "total_charges": total,
                    "support_calls": rng.poisson(1.2 + plan_of * 0.3, customers),
                    "plan": plans[plan_of],
                    "last_login_at": at - pd.to_timedelta(np.round(login_gap * 86400), unit="s"),
                }
            )
        )
    activity = pd.concat(rows, ignore_index=True)
    # Two labelled moments per customer, each some days after one of its snapshots.
    picks = activity.sample(n=2 * customers, random_state=seed).reset_index(drop=True)
    label_at = picks["event_timestamp"] + pd.to_timedelta(rng.integers(1, 25, len(picks)), unit="D")
    label_at = label_at.where(label_at <= end, end)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], len(picks), p=[0.5, 0.3, 0.2])
    tenure = rng.integers(1, 72, len(picks))
    idle_days = (picks["event_timestamp"] - picks["last_login_at"]).dt.total_seconds() / 86400
    score = (
        -2.0
        + 0.9 * picks["support_calls"].to_numpy()
        + 0.25 * idle_days.to_numpy()
        + 1.5 * (contract == "month-to-month")
        - 0.04 * tenure
    )
    churned = rng.random(len(picks)) < 1 / (1 + np.exp(-score))
    labels = pd.DataFrame(
        {
            "customer_id": picks["customer_id"],
            "event_timestamp": label_at,
            "contract": contract,
            "tenure_months": tenure,
            "churned": churned,
        }
    ).sort_values(["event_timestamp", "customer_id"], ignore_index=True)
    return activity, labels


def iso_utc(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def churn_activity() -> pd.DataFrame:
    return iso_utc(churn_tables()[0])


def churn_labels() -> pd.DataFrame:
    return iso_utc(churn_tables()[1])


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "breast_cancer": breast_cancer,
    "diabetes": diabetes,
    "wine": wine,
    "penguins": penguins,
    "churn_activity": churn_activity,
    "churn_labels": churn_labels,
}


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DATASETS.items():
        path = out_dir / f"{name}.csv"
        path.write_bytes(to_csv_bytes(build()))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The contract gate: the pandera table check and the per-record check agree and report well."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.contract.training_gate import build_schema, check_record, validate_frame
from mlops_runtime.data import load_table, records_to_frame

DATASETS = ("breast_cancer", "diabetes", "wine", "penguins")


def load(config: dict[str, Any], contract: dict[str, Any]) -> pd.DataFrame:
    return load_table(Path(config["data"]["path"]), contract)


def failures_of(
    frame: pd.DataFrame, contract: dict[str, Any], tmp_path: Path
) -> dict[tuple[str | None, str], dict]:
    report_path = tmp_path / "report.json"
    with pytest.raises(ContractViolation) as info:
        validate_frame(frame, contract, source="test", report_path=report_path)
    written = json.loads(report_path.read_text())
    assert written == info.value.report and written["ok"] is False
    return {(f["column"], f["check"]): f for f in written["failures"]}


@pytest.mark.parametrize("name", DATASETS)
def test_example_datasets_pass_their_contracts(name, dataset_config, tmp_path):
    config, contract = dataset_config(name)
    typed, report = validate_frame(
        load(config, contract), contract, report_path=tmp_path / "r.json"
    )
    assert report["ok"] is True and report["failures"] == []
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == len(typed)


def test_missing_column(dataset_config, tmp_path):
    config, contract = dataset_config("penguins")
    found = failures_of(load(config, contract).drop(columns=["island"]), contract, tmp_path)
    assert set(found) == {("island", "missing_column")}


def test_extra_column_only_when_forbidden(dataset_config, tmp_path):
    config, contract = dataset_config("penguins")
    frame = load(config, contract).assign(comment="x")
    assert set(failures_of(frame, contract, tmp_path)) == {("comment", "extra_column")}
    contract["extra_columns"] = "ignore"
    validate_frame(frame, contract, report_path=tmp_path / "ok.json")


def test_wrong_dtype_names_the_bad_values(dataset_config, tmp_path):
    config, contract = dataset_config("diabetes")
    frame = load(config, contract)
    frame["bmi"] = frame["bmi"].astype(object)
    frame.loc[[3, 10], "bmi"] = ["heavy", "n/a?"]
    frame["age"] = frame["age"].astype("float64")
    frame.loc[5, "age"] = 41.5
    found = failures_of(frame, contract, tmp_path)
    assert set(found) == {("bmi", "dtype"), ("age", "dtype")}
    assert found[("bmi", "dtype")]["count"] == 2
    assert {e["value"] for e in found[("bmi", "dtype")]["examples"]} == {"heavy", "n/a?"}
    assert found[("age", "dtype")]["examples"] == [{"row": 5, "value": 41.5}]


def test_wrong_dtype_in_csv_file(dataset_config, tmp_path):
    config, contract = dataset_config("wine")
    lines = Path(config["data"]["path"]).read_text().splitlines()
    cells = lines[1].split(",")
    cells[4] = "lots"  # magnesium
    path = tmp_path / "wine.csv"
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    found = failures_of(load_table(path, contract), contract, tmp_path)
    assert set(found) == {("magnesium", "dtype")}
    assert found[("magnesium", "dtype")]["examples"] == [{"row": 0, "value": "lots"}]


def test_out_of_range_values(dataset_config, tmp_path):
    config, contract = dataset_config("diabetes")
    frame = load(config, contract)
    frame.loc[[0, 1, 2], "age"] = [150, 130, 200]
    frame.loc[7, "bmi"] = 1.0
    found = failures_of(frame, contract, tmp_path)
    assert set(found) == {("age", "max"), ("bmi", "min")}
    assert found[("age", "max")]["count"] == 3
    assert [e["row"] for e in found[("age", "max")]["examples"]] == [0, 1, 2]


def test_unseen_category(dataset_config, tmp_path):
    config, contract = dataset_config("penguins")
    frame = load(config, contract)
    frame.loc[[4, 9], "island"] = "Atlantis"
    found = failures_of(frame, contract, tmp_path)
    assert set(found) == {("island", "values")}
    assert found[("island", "values")]["examples"][0]["value"] == "Atlantis"


def test_too_many_nulls(dataset_config, tmp_path):
    config, contract = dataset_config("penguins")
    frame = load(config, contract)
    assert int(frame["bill_depth_mm"].isna().sum()) == 2  # rows 3 and 271 in the source data
    frame.loc[frame.index[100:140], "bill_depth_mm"] = None  # 42/344 > 0.05
    frame.loc[3, "island"] = None  # island is not nullable at all
    found = failures_of(frame, contract, tmp_path)
    assert set(found) == {("bill_depth_mm", "max_null_fraction"), ("island", "not_nullable")}
    assert found[("bill_depth_mm", "max_null_fraction")]["count"] == 42


def test_min_rows_and_unique(dataset_config, tmp_path):
    config, contract = dataset_config("wine")
    contract["min_rows"] = 1000
    contract["columns"]["proline"]["unique"] = True
    found = failures_of(load(config, contract), contract, tmp_path)
    assert set(found) == {(None, "min_rows"), ("proline", "unique")}
    assert "178 rows" in found[(None, "min_rows")]["message"]


def test_report_collects_every_failure_with_example_rows(dataset_config, tmp_path):
    config, contract = dataset_config("penguins")
    frame = load(config, contract).drop(columns=["year"])
    frame.loc[0, "island"] = "Atlantis"
    frame.loc[1, "bill_length_mm"] = 500.0
    found = failures_of(frame, contract, tmp_path)
    assert set(found) == {
        ("year", "missing_column"),
        ("island", "values"),
        ("bill_length_mm", "max"),
    }
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failed_checks"] == 3
    assert [r["row"] for r in report["example_rows"]] == [1, 0]
    assert report["example_rows"][0]["bill_length_mm"] == 500.0


def test_schema_without_table_rules_has_no_min_rows_or_unique(dataset_config):
    _, contract = dataset_config("wine")
    contract["columns"]["proline"]["unique"] = True
    assert build_schema(contract).checks and build_schema(contract).columns["proline"].unique
    row_schema = build_schema(contract, table_level=False)
    assert not row_schema.checks and not row_schema.columns["proline"].unique


def test_check_record_reports_each_rule(dataset_config):
    _, contract = dataset_config("penguins")
    good = {"species": "Adelie", "island": "Dream", "bill_length_mm": 39.1, "bill_depth_mm": None,
            "flipper_length_mm": "181", "body_mass_g": 3750.0, "sex": None, "year": 2007}  # fmt: skip
    assert check_record(good, contract) == []
    bad = dict(
        good, island="Atlantis", bill_length_mm=900, flipper_length_mm=181.5, year=None, color="red"
    )
    del bad["sex"]
    checks = {(e["column"], e["check"]) for e in check_record(bad, contract)}
    assert checks == {
        ("island", "values"),
        ("bill_length_mm", "max"),
        ("flipper_length_mm", "dtype"),
        ("year", "not_nullable"),
        ("sex", "missing_column"),
        ("color", "extra_column"),
    }
    serving = {k: v for k, v in good.items() if k != "species"}
    assert check_record(serving, contract, ignore={"species"}) == []


AGREEMENT_CONTRACT: dict[str, Any] = {
    "min_rows": 0,
    "extra_columns": "forbid",
    "columns": {
        "i": {"type": "int", "nullable": True, "min": -5, "max": 5, "values": None},
        "f": {"type": "float", "nullable": False, "min": 0.0, "max": 1.0, "values": None},
        "b": {"type": "bool", "nullable": True, "values": None},
        "c": {"type": "category", "nullable": False, "values": ["a", "b", "c"]},
        "s": {"type": "str", "nullable": True, "values": None},
        "k": {"type": "int", "nullable": False, "values": [0, 1, 2]},
        # Codes: numbers read as text (1 -> "1"), as contract.json lists them.
        "n": {"type": "category", "nullable": True, "values": ["0", "1", "2", "2.5"]},
    },
}
_MISSING = object()
cell = st.one_of(
    st.none(),
    st.integers(-10, 10),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, 2.5, -3.0, 1e20]),
    st.booleans(),
    st.sampled_from(
        ["a", "b", "z", "1", "2", " 3 ", "-4", "0.5", "1e3", "nan", "yes", "no", "true", "", "x"]
    ),
    st.text(max_size=4),
)
record_strategy = st.fixed_dictionaries(
    {name: st.one_of(st.just(_MISSING), cell) for name in AGREEMENT_CONTRACT["columns"]},
    optional={"extra": cell},
).map(lambda r: {k: v for k, v in r.items() if v is not _MISSING})


def _frame_failures(frame: pd.DataFrame) -> set[tuple[str | None, str]]:
    try:
        validate_frame(frame, AGREEMENT_CONTRACT, table_level=False, write=False)
    except ContractViolation as violation:
        return {(f["column"], f["check"]) for f in violation.report["failures"]}
    return set()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=record_strategy)
def test_record_and_table_paths_agree(record):
    expected = {(e["column"], e["check"]) for e in check_record(record, AGREEMENT_CONTRACT)}
    # Object columns exercise per-value coercion; inferred dtypes exercise the vectorised path.
    assert _frame_failures(records_to_frame([record], AGREEMENT_CONTRACT)) == expected
    assert (
        _frame_failures(pd.DataFrame([record]) if record else pd.DataFrame(index=[0])) == expected
    )

"""Loading, typing and splitting the training table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_runtime.contract.coercion import coerce_frame, coerce_value
from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.data import (
    file_sha256,
    load_table,
    records_to_frame,
    resolve_data_path,
    split_frame,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "specs" / "data"
DATASETS = ("breast_cancer", "diabetes", "wine", "penguins")


def test_env_var_overrides_configured_path(dataset_config):
    config, _ = dataset_config("wine")
    assert resolve_data_path(config, {}) == Path(config["data"]["path"])
    assert resolve_data_path(config, {"MLOPS_TRAIN_DATA": "/elsewhere/x.parquet"}) == Path(
        "/elsewhere/x.parquet"
    )


@pytest.mark.parametrize("name", DATASETS)
def test_csv_columns_get_contract_types(name, dataset_config):
    config, contract = dataset_config(name)
    raw = load_table(Path(config["data"]["path"]), contract)
    typed, bad = coerce_frame(raw, contract)
    assert bad == {}
    expected = {
        "int": "Int64",
        "float": "float64",
        "bool": "boolean",
        "category": "string",
        "str": "string",
    }
    for column, rule in contract["columns"].items():
        assert str(typed[column].dtype) == expected[rule["type"]], column


def test_penguins_keeps_missing_values(dataset_config):
    config, contract = dataset_config("penguins")
    typed, _ = coerce_frame(load_table(Path(config["data"]["path"]), contract), contract)
    assert len(typed) == 344
    assert int(typed["sex"].isna().sum()) == 11
    assert int(typed["body_mass_g"].isna().sum()) == 2
    assert typed["body_mass_g"].dropna().iloc[0] == 3750


def test_parquet_and_csv_load_the_same_typed_frame(tmp_path, dataset_config):
    config, contract = dataset_config("penguins")
    from_csv, _ = coerce_frame(load_table(Path(config["data"]["path"]), contract), contract)
    for suffix in (".parquet", ".pq"):
        path = tmp_path / f"penguins{suffix}"
        pd.read_csv(config["data"]["path"]).to_parquet(path)
        from_parquet, bad = coerce_frame(load_table(path, contract), contract)
        assert bad == {}
        pd.testing.assert_frame_equal(from_csv, from_parquet)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (3, "int", (True, 3)),
        (3.0, "int", (True, 3)),
        ("12", "int", (True, 12)),
        (" 7 ", "int", (True, 7)),
        (3.5, "int", (False, None)),
        (True, "int", (False, None)),
        ("x", "int", (False, None)),
        (2**63, "int", (False, None)),
        (float("inf"), "int", (False, None)),
        (None, "int", (True, None)),
        (float("nan"), "float", (True, None)),
        ("2.5", "float", (True, 2.5)),
        (True, "float", (False, None)),
        ("yes", "bool", (True, True)),
        ("False", "bool", (True, False)),
        (1, "bool", (True, True)),
        (2, "bool", (False, None)),
        ("maybe", "bool", (False, None)),
        ("a", "category", (True, "a")),
        (1, "category", (True, "1")),  # a code reads as its text
        (True, "category", (False, None)),
        (pd.NA, "str", (True, None)),
    ],
)
def test_coerce_value(value, kind, expected):
    assert coerce_value(value, kind) == expected


def test_coerce_numeric_columns_flags_bad_cells():
    frame = pd.DataFrame({"i": [1.0, 2.5, np.nan, 4.0], "b": [0, 1, 2, 1], "s": [1, 2, 3, 4]})
    contract = {"columns": {"i": {"type": "int"}, "b": {"type": "bool"}, "s": {"type": "str"}}}
    typed, bad = coerce_frame(frame, contract)
    assert bad["i"].tolist() == [False, True, False, False]
    assert bad["b"].tolist() == [False, False, True, False]
    assert bad["s"].all()
    assert typed["i"].tolist()[0] == 1 and typed["i"].isna().tolist() == [False, True, True, False]
    assert typed["b"].tolist()[:2] == [False, True]


def test_records_to_frame_orders_contract_columns_first():
    contract = {"columns": {"a": {"type": "int"}, "b": {"type": "str"}}}
    frame = records_to_frame([{"z": 1, "b": "x", "a": 1}, {"a": 2}], contract)
    assert list(frame.columns) == ["a", "b", "z"]
    assert frame["b"].tolist()[1] is None


def _expect_violation(path: Path, contract, check: str, report_path: Path) -> dict:
    with pytest.raises(ContractViolation) as info:
        load_table(path, contract, report_path)
    report = json.loads(report_path.read_text())
    assert report == info.value.report
    assert report["ok"] is False
    assert [f["check"] for f in report["failures"]] == [check]
    return report


def test_empty_file_is_a_contract_failure(tmp_path, dataset_config):
    _, contract = dataset_config("wine")
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    report = _expect_violation(path, contract, "readable", tmp_path / "r.json")
    assert "empty.csv" in report["failures"][0]["message"]


def test_header_only_file_is_a_contract_failure(tmp_path, dataset_config):
    _, contract = dataset_config("wine")
    path = tmp_path / "header.csv"
    path.write_text((DATA_DIR / "wine.csv").read_text().splitlines()[0] + "\n")
    _expect_violation(path, contract, "empty", tmp_path / "r.json")


def test_truncated_parquet_is_a_contract_failure(tmp_path, dataset_config):
    _, contract = dataset_config("wine")
    whole = tmp_path / "whole.parquet"
    pd.read_csv(DATA_DIR / "wine.csv").to_parquet(whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    report = _expect_violation(cut, contract, "readable", tmp_path / "r.json")
    assert "cut.parquet" in report["failures"][0]["message"]


def test_missing_and_unsupported_files_are_contract_failures(tmp_path):
    _expect_violation(tmp_path / "nope.csv", None, "readable", tmp_path / "a.json")
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"PK")
    report = _expect_violation(odd, None, "readable", tmp_path / "b.json")
    assert ".xlsx" in report["failures"][0]["message"]


def test_report_defaults_to_reports_dir_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ContractViolation) as info:
        load_table(tmp_path / "absent.csv")
    assert info.value.report_path == tmp_path / "reports" / "contract_report.json"
    assert info.value.report_path.is_file()


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1_000_000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_split_is_deterministic_and_stratified(dataset_config):
    config, contract = dataset_config("wine")
    typed, _ = coerce_frame(load_table(Path(config["data"]["path"]), contract), contract)
    _, test_a = split_frame(typed, config)
    _, test_b = split_frame(typed, config)
    assert list(test_a.index) == list(test_b.index)
    assert len(test_a) == math.ceil(0.25 * len(typed))
    whole = typed["cultivar"].value_counts(normalize=True)
    part = test_a["cultivar"].value_counts(normalize=True)
    assert (abs(whole - part) < 0.03).all()
    config["data"]["split"]["seed"] = 7
    assert list(split_frame(typed, config)[1].index) != list(test_a.index)

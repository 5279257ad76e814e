"""`mlops init`: the inferred starter spec validates, builds and describes the data it came from."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_compiler.init.infer import infer, null_allowance
from mlops_compiler.init.starter import derive_name, schema_ref, yaml_scalar
from tests.compiler.conftest import REPO, SPECS, run_mlops

DATASETS = {
    "breast_cancer": "malignant",
    "diabetes": "progression",
    "wine": "cultivar",
    "penguins": "species",
}


def init(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mlops("init", *args, cwd=cwd)


def columns_of(spec: Path) -> dict[str, dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(spec.read_text(encoding="utf-8"))
    columns: dict[str, dict[str, Any]] = loaded["data"]["contract"]["columns"]
    return columns


def assert_validates_and_builds(spec: Path) -> None:
    cwd = spec.parent
    validated = run_mlops("validate", spec.name, cwd=cwd)
    assert validated.returncode == 0, validated.stderr
    built = run_mlops("build", spec.name, "--out", "generated", cwd=cwd)
    assert built.returncode == 0, built.stderr


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_example_data_gives_a_spec_that_validates_and_builds(tmp_path: Path, dataset: str) -> None:
    (tmp_path / "data").mkdir()
    shutil.copy(SPECS / "data" / f"{dataset}.csv", tmp_path / "data")
    result = init(tmp_path, "--data", f"data/{dataset}.csv", "--target", DATASETS[dataset])
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "mlops.yaml"
    loaded = yaml.safe_load(spec.read_text(encoding="utf-8"))
    assert loaded["name"] == dataset.replace("_", "-")
    assert loaded["data"]["train"] == f"data/{dataset}.csv"
    assert loaded["model"]["params"] == {"random_state": 42}
    assert loaded["level"] == 1
    assert_validates_and_builds(spec)


def test_penguins_nullable_columns_and_categories(tmp_path: Path) -> None:
    shutil.copy(SPECS / "data" / "penguins.csv", tmp_path)
    result = init(tmp_path, "--data", "penguins.csv", "--target", "species", "--out", "p.yaml")
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "p.yaml"
    columns = columns_of(spec)
    assert columns["species"] == {"type": "category", "values": ["Adelie", "Chinstrap", "Gentoo"]}
    assert columns["island"]["values"] == ["Biscoe", "Dream", "Torgersen"]
    # 11 of 344 rows have no sex: 0.032 observed, plus margin, rounded up.
    assert columns["sex"] == {
        "type": "category",
        "values": ["female", "male"],
        "nullable": True,
        "max_null_fraction": 0.06,
    }
    assert columns["bill_length_mm"] == {
        "type": "float",
        "min": 32.1,
        "max": 59.6,
        "nullable": True,
        "max_null_fraction": 0.03,
    }
    assert columns["year"] == {"type": "int", "min": 2007, "max": 2009}
    model = yaml.safe_load(spec.read_text())["model"]
    assert model["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert "gate" not in model


def test_diabetes_is_regression_with_an_int_target(tmp_path: Path) -> None:
    inferred = infer(SPECS / "data" / "diabetes.csv", "progression")
    assert inferred.task == "regression"
    target = {c.name: c for c in inferred.columns}["progression"]
    assert (target.type, target.min, target.max) == ("int", 25, 346)
    assert inferred.min_rows == 221


def test_a_01_int_target_is_a_category_of_its_text_but_a_01_feature_stays_int(
    tmp_path: Path,
) -> None:
    rows = [["flag", "label", "ok"]] + [[str(i % 2), str(i % 2), "true"] for i in range(9)]
    rows.append(["1", "0", "FALSE"])
    inferred = infer(write_csv(tmp_path / "t.csv", rows), "label")
    by_name = {c.name: c for c in inferred.columns}
    assert inferred.task == "classification"
    # The project reads category cells as text, so the labels are the text '0' and '1'.
    assert by_name["label"].values == ("0", "1")
    assert (by_name["flag"].type, by_name["flag"].min, by_name["flag"].max) == ("int", 0, 1)
    assert by_name["ok"].type == "bool"


def test_a_class_with_one_row_turns_stratification_off(tmp_path: Path) -> None:
    rows = [["x", "y"]] + [[str(i), "a" if i else "b"] for i in range(10)]
    inferred = infer(write_csv(tmp_path / "t.csv", rows), "y")
    assert inferred.stratify is False


def test_parquet_works_and_keeps_int_labels_as_numbers(tmp_path: Path) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 60
    table = pa.table(
        {
            "size": pa.array([float(i) if i % 10 else None for i in range(n)]),
            "colour": pa.array([["red", "green", "blue"][i % 3] for i in range(n)]),
            "code": pa.array([f"id-{i}" for i in range(n)]),
            "seen": pa.array([datetime.datetime(2024, 1, 1)] * n),
            "label": pa.array([i % 2 for i in range(n)], type=pa.int8()),
        }
    )
    pq.write_table(table, tmp_path / "Sales 2024.parquet")
    result = init(tmp_path, "--data", "Sales 2024.parquet", "--target", "label")
    assert result.returncode == 0, result.stderr
    assert "'seen'" in result.stderr and "left out" in result.stderr
    spec = tmp_path / "mlops.yaml"
    loaded = yaml.safe_load(spec.read_text())
    assert loaded["name"] == "sales-2024"
    assert loaded["data"]["train"] == "Sales 2024.parquet"
    assert columns_of(spec) == {
        "size": {
            "type": "float",
            "min": 1.0,
            "max": 59.0,
            "nullable": True,
            "max_null_fraction": 0.12,
        },
        "colour": {"type": "category", "values": ["blue", "green", "red"]},
        "code": {"type": "str"},
        "label": {"type": "int", "min": 0, "max": 1},
    }
    assert loaded["model"]["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert_validates_and_builds(spec)


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    shutil.copy(SPECS / "data" / "wine.csv", tmp_path)
    spec = tmp_path / "mlops.yaml"
    spec.write_text("mine\n")
    refused = init(tmp_path, "--data", "wine.csv", "--target", "cultivar")
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert spec.read_text() == "mine\n"
    forced = init(tmp_path, "--data", "wine.csv", "--target", "cultivar", "--force")
    assert forced.returncode == 0, forced.stderr
    assert columns_of(spec)["cultivar"] == {"type": "category", "values": ["0", "1", "2"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "wine.csv", "--target", "cultivr"], "did you mean 'cultivar'"),
        (["--data", "absent.csv", "--target", "y"], "absent.csv: no such file"),
        (["--data", "empty.csv", "--target", "y"], "empty.csv: the file is empty"),
        (["--data", "header.csv", "--target", "y"], "no data rows"),
        (["--data", "wine.csv", "--target", "cultivar", "--name", "Wine!"], "--name 'Wine!'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    shutil.copy(SPECS / "data" / "wine.csv", tmp_path)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("x,y\n\n")
    result = init(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "mlops.yaml").exists()


def test_awkward_column_names_and_labels_round_trip(tmp_path: Path) -> None:
    names = [
        'say "hi"',
        "it's",
        "key: value",
        "Größe (cm) \u2013 寸法 🐧",
        "yes",
        "null",
        "- item",
        "#hash",
        "[a, b]",
        "{c}",
        "two\nlines",
        "<<",
        "",
        "dup",
        "dup",
    ]
    labels = ["no", "a: b", "'q'", "1.0", "~"]
    rows = [[*names, "target"]]
    rows += [[*(str(i) for i in range(len(names))), labels[i % len(labels)]] for i in range(20)]
    data = write_csv(tmp_path / "odd.csv", rows)
    result = init(tmp_path, "--data", data.name, "--target", "target")
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "mlops.yaml"
    columns = columns_of(spec)
    # Blank and repeated headers get the names pandas gives them when the project reads the file.
    expected = [*names[:12], "Unnamed: 12", "dup", "dup.1", "target"]
    assert list(columns) == expected
    assert columns["target"]["values"] == sorted(labels)
    assert_validates_and_builds(spec)


def test_init_reads_csv_without_pandas_and_the_cli_imports_light(tmp_path: Path) -> None:
    shutil.copy(SPECS / "data" / "penguins.csv", tmp_path)
    probe = (
        "import sys\n"
        "import mlops_compiler.cli.main\n"
        "print('pandas' in sys.modules)\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(mlops_compiler.cli.main.cli,"
        " ['init', '--data', 'penguins.csv', '--target', 'species'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted({'pandas', 'numpy', 'pyarrow'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False", "[]"]


@pytest.mark.parametrize(
    ("stem", "name"),
    [
        ("breast_cancer", "breast-cancer"),
        ("Sales 2024 (final)", "sales-2024-final"),
        ("2024_sales", "model-2024-sales"),
        ("Données", "donnees"),
        ("___", "model"),
        ("x" * 60, "x" * 40),
        ("a" * 39 + "_b", "a" * 39),
    ],
)
def test_derived_names_are_dns_style(stem: str, name: str) -> None:
    assert derive_name(stem) == name


def test_null_allowance_rounds_up_with_a_margin() -> None:
    assert null_allowance(2, 344) == 0.03
    assert null_allowance(1, 100) == 0.03  # exactly 0.01 must not round up to 0.04
    assert null_allowance(99, 100) == 1.0


def test_schema_hint_only_inside_the_repository(tmp_path: Path) -> None:
    assert schema_ref(REPO / "specs" / "new.mlops.yaml") == "../schema/mlops.schema.json"
    assert schema_ref(tmp_path / "mlops.yaml") is None


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_text_survives_as_a_key_and_as_a_value(text: str) -> None:
    scalar = yaml_scalar(text)
    assert not any(brk in scalar for brk in "\n\r\x85\u2028\u2029")
    loaded = yaml.safe_load(f"k:\n  {scalar}: {{values: [{scalar}, x]}}\n")
    assert loaded == {"k": {text: {"values": [text, "x"]}}}


def test_a_key_too_long_for_a_simple_key_uses_the_explicit_form(tmp_path: Path) -> None:
    # 200 unprintable characters escape to 1200: past PyYAML's 1024-character simple-key limit.
    name = "\ufffe" * 200
    write_csv(tmp_path / "long.csv", [[name, "y"]] + [[str(i), "ab"[i % 2]] for i in range(10)])
    result = init(tmp_path, "--data", "long.csv", "--target", "y")
    assert result.returncode == 0, result.stderr
    spec = tmp_path / "mlops.yaml"
    assert "      ? " in spec.read_text(encoding="utf-8")
    assert list(columns_of(spec)) == [name, "y"]
    validated = run_mlops("validate", "mlops.yaml", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr

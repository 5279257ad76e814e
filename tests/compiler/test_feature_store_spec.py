"""`features.store`: its rules, where each derived feature is computed, what config.json and
the Feast repository say, and what a level below 2 does with it."""

from __future__ import annotations

import ast
import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import REPO, SPECS, run_mlops
from tests.compiler.test_spec import problems
from tests.system_programs import require

CHURN = yaml.safe_load((SPECS / "churn.mlops.yaml").read_text())


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """The churn spec beside a copy of its data."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    return tmp_path


def write(folder: Path, document: dict[str, Any]) -> Path:
    path = folder / "mlops.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def changed(**store: Any) -> dict[str, Any]:
    document = copy.deepcopy(CHURN)
    document["features"]["store"].update(store)
    return document


def config_of(path: Path, level: int | None = None) -> dict[str, Any]:
    loaded = load_spec(path)
    plan = make_plan(validate(loaded), loaded, path.parent / "out", level)
    return dict(plan.context["config"])


def test_the_example_is_valid_and_places_each_derived_feature(specs: Path) -> None:
    fs = config_of(write(specs, CHURN))["feature_store"]
    (view,) = fs["views"]
    # Inputs all from the view: computed before materialisation and served by the view.
    assert list(view["derived"]) == ["log_total_charges", "days_since_login", "calls_bucket"]
    assert view["features"][-3:] == ["log_total_charges", "days_since_login", "calls_bucket"]
    # A request-time input (tenure_months): computed on demand, after the lookup.
    assert list(fs["on_demand"]) == ["charges_per_month"]
    assert fs["request"] == ["contract", "tenure_months"]
    # The raw column days_since reads is read from the source but not served.
    assert "last_login_at" in view["columns"] and "last_login_at" not in view["features"]
    assert view["ttl_s"] == 45 * 86400 and view["max_age_s"] == 40 * 86400
    assert fs["stale"] == "serve" and fs["entity_timestamp"] == "event_timestamp"


def test_a_derived_feature_of_derived_features_follows_its_inputs(specs: Path) -> None:
    document = changed()
    document["data"]["contract"]["columns"]["spend_gap"] = {"type": "float", "nullable": True}
    derived = document["features"]["store"]["derived"]
    # Declared before its inputs, and on demand because one input is.
    derived_first = {
        "spend_gap": {
            "transform": "difference",
            "inputs": ["charges_per_month", "log_total_charges"],
        }
    }
    document["features"]["store"]["derived"] = {**derived_first, **derived}
    fs = config_of(write(specs, document))["feature_store"]
    assert list(fs["on_demand"]) == ["charges_per_month", "spend_gap"]


def test_the_definition_digest_changes_with_the_definition_only(specs: Path) -> None:
    first = config_of(write(specs, CHURN))["feature_store"]["views"][0]["definition_sha256"]
    described = copy.deepcopy(CHURN)
    described["description"] = "another description"
    same = config_of(write(specs, described))["feature_store"]["views"][0]["definition_sha256"]
    longer = changed()
    longer["features"]["store"]["views"][0]["ttl"] = "60d"
    other = config_of(write(specs, longer))["feature_store"]["views"][0]["definition_sha256"]
    assert first == same != other


@pytest.mark.parametrize(
    ("ttl", "message"),
    [("45 days", "expected a duration"), ("0d", "")],
)
def test_ttl_syntax_is_checked_with_its_position(specs: Path, ttl: str, message: str) -> None:
    document = changed()
    document["features"]["store"]["views"][0]["ttl"] = ttl
    found = problems(write(specs, document))
    if message:
        assert any(p.startswith("features.store.views[0].ttl:") and message in p for p in found), (
            found
        )
    else:
        assert any(p.startswith("features.store.views[0].ttl:") for p in found), found


def test_an_on_demand_feature_cannot_read_a_raw_source_column(specs: Path) -> None:
    document = changed()
    columns = document["data"]["contract"]["columns"]
    columns["login_per_tenure"] = {"type": "float", "nullable": True}
    document["features"]["store"]["derived"]["login_per_tenure"] = {
        "transform": "ratio",
        "inputs": ["last_login_at", "tenure_months"],
    }
    found = problems(write(specs, document))
    assert any(
        p.startswith("features.store.derived.login_per_tenure.inputs[0]:")
        and "read only inside its view" in p
        for p in found
    ), found


def test_a_parquet_source_is_checked_by_its_schema(specs: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(specs / "data" / "churn_activity.csv").drop(columns=["support_calls"])
    frame.to_parquet(specs / "data" / "activity.parquet")
    document = changed()
    document["features"]["store"]["views"][0]["source"] = "data/activity.parquet"
    found = problems(write(specs, document))
    assert found == [
        "features.store.views[0].features[2]: data/activity.parquet has no column 'support_calls'"
    ], found


def test_below_level_2_the_store_is_declared_but_not_emitted(specs: Path) -> None:
    document = copy.deepcopy(CHURN)
    document["level"] = 1
    path = write(specs, document)
    result = run_mlops("build", str(path), "--out", str(specs / "out"), cwd=specs)
    assert result.returncode == 0, result.stderr
    assert (
        "features.store: warning: declared, but level 1 does not emit it (feature-store: levels 2-3)"
        in result.stderr
    )
    project = specs / "out" / "churn"
    assert not (project / "feature_repo").exists()
    config = (project / "config.json").read_text()
    assert "feature_store" not in config and "features-apply" not in config


def test_definitions_are_literals_whatever_the_names(specs: Path) -> None:
    """Column names are free text: they reach the Feast definitions as Python literals."""
    document = changed()
    odd = "x'); import os #"
    columns = document["data"]["contract"]["columns"]
    columns[odd] = columns.pop("plan")
    document["features"]["store"]["views"][0]["features"][3] = odd
    document["features"]["store"]["views"][0]["name"] = "lambda"
    activity = (
        (specs / "data" / "churn_activity.csv").read_text().replace(",plan,", f',"{odd}",', 1)
    )
    (specs / "data" / "churn_activity.csv").write_text(activity)
    path = write(specs, document)
    result = run_mlops("build", str(path), "--out", str(specs / "out"), cwd=specs)
    assert result.returncode == 0, result.stderr
    source = (specs / "out" / "churn" / "feature_repo" / "definitions.py").read_text()
    tree = ast.parse(source)
    names = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert odd in names and "lambda" in names
    assert not any(isinstance(n, ast.Import) and n.names[0].name == "os" for n in ast.walk(tree))


def test_the_golden_example_builds_its_feast_repository() -> None:
    repo = REPO / "generated" / "churn" / "feature_repo"
    assert "provider: local" in (repo / "feature_store.yaml").read_text()
    assert "online_store:\n  type: sqlite" in (repo / "feature_store.yaml").read_text()
    assert "Field(name='calls_bucket', dtype=Int64)" in (repo / "definitions.py").read_text()


def test_level_3_alerts_on_a_stale_view_in_prometheus(specs: Path) -> None:
    import subprocess

    document = copy.deepcopy(CHURN)
    document["level"] = 3
    document["alerts"] = [{"kind": "webhook", "url_env": "ALERT_WEBHOOK_URL"}]
    path = write(specs, document)
    result = run_mlops("build", str(path), "--out", str(specs / "out"), cwd=specs)
    assert result.returncode == 0, result.stderr
    monitoring = specs / "out" / "churn" / "monitoring"
    rules = yaml.safe_load((monitoring / "alert-rules.yml").read_text())
    (stale,) = [r for r in rules["groups"][0]["rules"] if r["alert"] == "MlopsFeatureStale"]
    assert stale["expr"] == 'mlops_monitor_feature_fresh{model="churn"} == 0'
    promtool = require("promtool")
    for args in (("check", "rules", "alert-rules.yml"), ("test", "rules", "alert-rules.test.yml")):
        checked = subprocess.run(
            [promtool, *args], cwd=monitoring, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = (monitoring / "alert-rules.test.yml").read_text()
    assert "MlopsFeatureStale fires" in tests and "MlopsFeatureStale stays quiet" in tests
    assert "### MlopsFeatureStale" in (specs / "out" / "churn" / "README.md").read_text()

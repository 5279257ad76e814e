"""The generated Feast repository is one Feast's own CLI plans and applies, and a trained
version's lineage names the feature views it was trained from."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.feature_store.conftest import StoreProject, write_churn_data
from tests.runtime.serving_fixtures import build_project

pytestmark = pytest.mark.slow

PREPARE = (
    "from pathlib import Path\n"
    "from mlops_runtime.features.store.offline import prepare_all\n"
    "from mlops_runtime.project import load_project\n"
    "p = load_project(Path.cwd())\n"
    "print(prepare_all(p.config, p.contract, p.root))\n"
)
SCHEMA = (
    "import json\n"
    "from feast import FeatureStore\n"
    "view = FeatureStore(repo_path='feature_repo').get_feature_view('activity')\n"
    "print(json.dumps({f.name: str(f.dtype) for f in view.features}))\n"
)


def _python(python: str, project: Path, code: str) -> str:
    result = subprocess.run(
        [python, "-c", code], cwd=project, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _feast(python: str, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    feast = str(Path(python).with_name("feast"))
    result = subprocess.run(
        [feast, *args], cwd=repo, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_feast_plans_and_applies_the_generated_repository(
    tmp_path: Path, feast_interpreter: str
) -> None:
    project = build_project(tmp_path, "churn")
    write_churn_data(tmp_path / "specs", pd.Timestamp.now(tz="UTC").floor("s"))
    _python(feast_interpreter, project, PREPARE)
    repo = project / "feature_repo"
    assert (repo / "data" / "activity.parquet").is_file()

    plan = _feast(feast_interpreter, repo, "plan").stdout
    assert "Created entity customer" in plan and "Created feature view activity" in plan, plan
    _feast(feast_interpreter, repo, "apply")
    assert "activity" in _feast(feast_interpreter, repo, "feature-views", "list").stdout
    assert "customer" in _feast(feast_interpreter, repo, "entities", "list").stdout

    schema = _python(feast_interpreter, project, SCHEMA)
    config = json.loads((project / "config.json").read_text())
    view = config["feature_store"]["views"][0]
    types = {"float": "Float64", "int": "Int64", "category": "String"}
    contract = json.loads((project / "contract.json").read_text())["columns"]
    assert json.loads(schema) == {
        f: types[contract[f]["type"]] for f in view["features"]
    }  # fmt: skip

    # The stage registers the same definitions: Feast finds nothing to change.
    again = subprocess.run(
        [feast_interpreter, "-m", "mlops_runtime", "features-apply"],
        cwd=project, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "No changes to infrastructure" in again.stdout + again.stderr


def test_lineage_names_the_feature_views_a_version_was_trained_from(churn: StoreProject) -> None:
    shown = json.loads(churn.ok("lineage", "--json"))
    config = json.loads((churn.path / "config.json").read_text())
    view = config["feature_store"]["views"][0]
    tag = shown["feature_views"]["activity"]
    table = churn.path / "feature_repo" / view["offline"]
    assert f"definition_sha256={view['definition_sha256']}" in tag
    assert f"offline_sha256={hashlib.sha256(table.read_bytes()).hexdigest()}" in tag
    logged = json.loads((churn.path / "reports" / "feature_views.json").read_text())
    assert [v["name"] for v in logged] == ["activity"]
    assert logged[0]["features"] == view["features"]
    assert "feature view activity:" in churn.ok("lineage")

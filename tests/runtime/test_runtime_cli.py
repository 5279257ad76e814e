"""The stages as a generated project runs them: `python -m mlops_runtime STAGE` in its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.system_programs import require

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime" / "mlops_runtime"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def git(cwd: Path, *args: str) -> str:
    base = [
        require("git"),
        "-c",
        "user.email=ci@example.invalid",
        "-c",
        "user.name=ci",
        "-c",
        "commit.gpgsign=false",
    ]
    return subprocess.run(
        [*base, *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.slow
def test_train_and_lineage_commands(dataset_config, project_factory, sub_env):
    config, contract = dataset_config("breast_cancer")
    root = project_factory(config, contract)
    git(root, "init", "-q")
    git(root, "add", "config.json", "contract.json")
    git(root, "commit", "-q", "-m", "generated")
    commit = git(root, "rev-parse", "HEAD")

    trained = run(["-m", "mlops_runtime", "train"], root, sub_env())
    assert trained.returncode == 0, trained.stderr
    assert "registered version 1 as champion" in trained.stdout
    assert "roc_auc=" in trained.stdout
    assert (root / "mlruns").is_dir() and (root / "reports" / "contract_report.json").is_file()

    shown = run(["-m", "mlops_runtime", "lineage", "--json"], root, sub_env())
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["version"] == "1" and info["git_commit"] == commit
    assert info["spec_sha256"] == config["spec_sha256"] and info["params"]["max_iter"] == "300"
    text = run(["-m", "mlops_runtime", "lineage", "1"], root, sub_env())
    assert text.returncode == 0 and f"git commit {commit}" in text.stdout
    missing = run(["-m", "mlops_runtime", "lineage", "challenger"], root, sub_env())
    assert missing.returncode == 2 and "challenger" in missing.stderr

    bad = root / "bad.csv"
    pd.read_csv(config["data"]["path"]).drop(columns=["mean_area"]).to_csv(bad, index=False)
    refused = run(["-m", "mlops_runtime", "train"], root, sub_env(MLOPS_TRAIN_DATA=str(bad)))
    assert refused.returncode == 3
    assert "mean_area" in refused.stderr
    report = json.loads((root / "reports" / "contract_report.json").read_text())
    assert {("mean_area", "missing_column")} == {
        (f["column"], f["check"]) for f in report["failures"]
    }
    again = json.loads(run(["-m", "mlops_runtime", "lineage", "--json"], root, sub_env()).stdout)
    assert again["version"] == "1"


def test_level0_script_trains_without_mlflow_or_pandera(dataset_config, project_factory, sub_env):
    config, contract = dataset_config("penguins")
    root = project_factory(config, contract, level0=True)
    probe = (
        "import runpy, sys\n"
        "try:\n"
        "    sys.argv = ['mlops_runtime', 'train']\n"
        "    runpy.run_module('mlops_runtime', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pandera'})\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(code)\n"
    )
    result = run(["-c", probe], root, sub_env())
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "saved" in result.stdout and "accuracy=" in result.stdout
    from mlops_runtime.serve.model_source import LocalSource

    config = json.loads((root / "config.json").read_text())
    source = LocalSource(config, root / "model" / "model.skops")
    ref = source.lookup("champion")
    assert ref is not None
    model = source.load(ref)
    sample = pd.DataFrame(
        {
            "bill_length_mm": [39.1],
            "bill_depth_mm": [18.7],
            "flipper_length_mm": [181.0],
            "body_mass_g": [3750.0],
            "island": ["Torgersen"],
            "sex": ["male"],
            "year": [2007.0],
        }
    ).astype({"island": object, "sex": object})
    assert model.predict(sample)[0] == "Adelie"

    (root / "empty.csv").write_bytes(b"")
    refused = run(
        ["-m", "mlops_runtime", "train"], root, sub_env(MLOPS_TRAIN_DATA=str(root / "empty.csv"))
    )
    assert refused.returncode == 3 and "empty.csv" in refused.stderr


def test_runtime_never_imports_the_compiler():
    for path in RUNTIME.rglob("*.py"):
        assert "mlops_compiler" not in path.read_text(), path.name

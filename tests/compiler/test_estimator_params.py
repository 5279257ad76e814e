"""`model.params` is checked against the committed table of constructor parameters."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from mlops_compiler.errors import SpecError
from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.spec.estimator_params import ESTIMATOR_PARAMS
from mlops_compiler.spec.estimators import KNOWN_ESTIMATORS
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import MINIMAL, REPO, run_mlops

SCRIPT = REPO / "scripts" / "estimator_params.py"
WINE = "specs/wine.mlops.yaml"
WINE_PARAMS = "params: {max_iter: 1000}"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("estimator_params_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problems(tmp_path: Path, **model: object) -> list[str]:
    document = yaml.safe_load(MINIMAL)
    document["model"].update(model)
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        validate(load_spec(path))
    except SpecError as exc:
        return [f"{d.path}: {d.message}" for d in exc.diagnostics]
    return []


def _with_wine_params(workspace: Path, params: str) -> Path:
    spec = workspace / WINE
    text = spec.read_text()
    assert WINE_PARAMS in text, "the example spec changed; update this test"
    spec.write_text(text.replace(WINE_PARAMS, params))
    return spec


def test_committed_table_matches_installed_sklearn() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_known_estimator_has_a_sorted_row() -> None:
    assert set(ESTIMATOR_PARAMS) == set(KNOWN_ESTIMATORS)
    for dotted, names in ESTIMATOR_PARAMS.items():
        assert names and list(names) == sorted(set(names)), dotted


def test_check_fails_on_a_stale_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    stale = tmp_path / "estimator_params.py"
    stale.write_text(script.render().replace('        "max_iter",\n', "", 1))
    monkeypatch.setattr(script, "TARGET", stale)
    monkeypatch.setattr(script, "REPO", tmp_path)
    assert script.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert '-        "max_iter",' not in err and '+        "max_iter",' in err
    assert "is out of date with the installed scikit-learn; run" in err


def test_a_misspelt_param_is_reported_at_validate(workspace: Path) -> None:
    spec = _with_wine_params(workspace, "params: {max_itr: 1000}")
    row = spec.read_text().splitlines().index("  params: {max_itr: 1000}") + 1
    result = run_mlops("validate", WINE, cwd=workspace)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # Rule findings are shown at the value, as every cross-field rule is.
    col = len("  params: {max_itr: ") + 1
    diagnostics = [ln for ln in result.stderr.splitlines() if ln.startswith("specs/")]
    assert diagnostics == [
        f"{WINE}:{row}:{col}: model.params.max_itr: unknown parameter 'max_itr' for "
        "sklearn.linear_model.LogisticRegression (did you mean 'max_iter'?)"
    ]
    assert result.stderr.rstrip().endswith("1 problem found; nothing was written.")


def test_every_bad_param_is_reported_at_once(workspace: Path) -> None:
    _with_wine_params(workspace, "params: {max_itr: 1000, C: 1.0, l1ratio: 0.5, bogus: 1}")
    result = run_mlops("build", WINE, "--out", "out", cwd=workspace)
    assert result.returncode == 2, result.stderr
    found = [ln.split(": ", 1)[1] for ln in result.stderr.splitlines() if ln.startswith("specs/")]
    estimator = "sklearn.linear_model.LogisticRegression"
    assert found == [
        f"model.params.max_itr: unknown parameter 'max_itr' for {estimator} (did you mean 'max_iter'?)",
        f"model.params.l1ratio: unknown parameter 'l1ratio' for {estimator} (did you mean 'l1_ratio'?)",
        f"model.params.bogus: unknown parameter 'bogus' for {estimator}",
    ]
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "model",
    [
        {"estimator": "mypkg.models.Custom", "task": "classification"},
        {"estimator": "sklearn.linear_model.LogisticRegression"},
    ],
    ids=["own-class", "known-class"],
)
def test_custom_estimator_params_are_not_checked(tmp_path: Path, model: dict[str, str]) -> None:
    params = {"max_itr": 1, "anything_goes": "yes"}
    assert _problems(tmp_path, **model, custom_estimator=True, params=params) == []


def test_valid_params_and_the_init_default_pass(tmp_path: Path) -> None:
    assert _problems(tmp_path, params={"C": 0.5, "max_iter": 200, "random_state": 42}) == []
    assert (
        _problems(
            tmp_path,
            estimator="sklearn.ensemble.HistGradientBoostingClassifier",
            params={"random_state": 42},
        )
        == []
    )


def test_example_specs_still_validate() -> None:
    result = run_mlops("validate", "specs", cwd=REPO)
    assert result.returncode == 0, result.stderr

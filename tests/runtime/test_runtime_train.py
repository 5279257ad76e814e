"""Training end to end with real data and a real MLflow SQLite store in a temporary folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import mlops_runtime
from mlops_runtime.data import load_table, split_frame
from mlops_runtime.features.pipeline import model_frame
from mlops_runtime.tracking.lineage import lineage, render
from mlops_runtime.tracking.store import resolve_tracking_uri
from mlops_runtime.train.stage import EXIT_CONTRACT, EXIT_GATE, EXIT_OK, run_training

pytestmark = pytest.mark.slow
DATASETS = ("breast_cancer", "diabetes", "wine", "penguins")


def client_for(workdir: Path) -> MlflowClient:
    uri = f"sqlite:///{workdir / 'mlruns.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def versions(client: MlflowClient, name: str) -> list[str]:
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{name}'"))


def champion(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, "champion").version)
    except mlflow.exceptions.MlflowException:
        return None


def load_registered(name: str, ref: str, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    # Loading any serialised model needs this explicit opt-in in MLflow 3.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlruns.db'}")
    mlflow.set_registry_uri(f"sqlite:///{workdir / 'mlruns.db'}")
    return mlflow.sklearn.load_model(
        f"models:/{name}/{ref}" if ref.isdigit() else f"models:/{name}@{ref}"
    )


@pytest.mark.parametrize("dataset", DATASETS)
def test_train_registers_champion_with_lineage(dataset, dataset_config, workdir, monkeypatch):
    config, contract = dataset_config(dataset)
    name = config["tracking"]["registered_model"]
    result = run_training(config, contract)
    assert result.exit_code == EXIT_OK, result.message
    assert (result.version, result.alias) == ("1", "champion")

    client = client_for(workdir)
    version = client.get_model_version(name, "1")
    data_sha = hashlib.sha256(Path(config["data"]["path"]).read_bytes()).hexdigest()
    tags = version.tags
    assert tags["mlops.data_sha256"] == data_sha
    assert tags["mlops.spec_sha256"] == config["spec_sha256"]
    assert tags["mlops.run_id"] == result.run_id == version.run_id
    assert tags["mlops.compiler_version"] == config["compiler_version"] == mlops_runtime.__version__
    assert int(tags["mlops.data_rows"]) == len(pd.read_csv(config["data"]["path"]))
    assert "mlops.git_commit" not in tags  # the temporary folder is not a git checkout
    for metric, value in result.metrics.items():
        assert float(tags[f"mlops.metric.{metric}"]) == value
    assert champion(client, name) == "1"

    run = client.get_run(result.run_id)
    assert run.data.tags["mlops.gate"] == "passed"
    assert run.data.tags["mlops.data_sha256"] == data_sha
    assert run.data.tags["mlops.pkg.scikit-learn"]
    assert run.data.metrics == result.metrics
    for param, value in config["model"]["params"].items():
        assert run.data.params[param] == str(value)
    assert "random_state" in run.data.params
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "reports")}
    assert artifacts == {
        "reports/contract_report.json",
        "reports/gate.json",
        "reports/reference_profile.json",
    }
    # Every file the run produced sits inside the project folder.
    assert (
        workdir / "mlruns" / result.run_id / "artifacts" / "reports" / "reference_profile.json"
    ).is_file()
    profile = json.loads((workdir / "reports" / "reference_profile.json").read_text())
    assert set(profile["features"]) == {
        *config["features"]["numeric"]["columns"],
        *config["features"]["categorical"]["columns"],
        *config["features"]["passthrough"],
    }

    info = lineage(client, name, "champion")
    assert info["version"] == "1" and info["aliases"] == ["champion"]
    assert info["data_sha256"] == data_sha and info["run_id"] == result.run_id
    assert info["metrics"] == result.metrics
    assert info["params"]["random_state"] == "42"
    text = render(info)
    assert data_sha in text and "version 1" in text and config["spec_sha256"] in text

    model = load_registered(name, "champion", workdir, monkeypatch)
    typed = load_table(Path(config["data"]["path"]), contract)
    assert len(model.predict(model_frame(typed.head(7), config))) == 7


def test_training_is_reproducible(dataset_config, workdir, monkeypatch):
    config, contract = dataset_config("penguins")
    first, second = run_training(config, contract), run_training(config, contract)
    assert first.exit_code == second.exit_code == EXIT_OK
    assert first.metrics == second.metrics
    from mlops_runtime.contract.training_gate import validate_frame

    typed, _ = validate_frame(
        load_table(Path(config["data"]["path"]), contract), contract, write=False
    )
    _, test = split_frame(typed, config)
    x_test = model_frame(test, config)
    a = load_registered("penguins", "1", workdir, monkeypatch)
    b = load_registered("penguins", "2", workdir, monkeypatch)
    np.testing.assert_array_equal(a.predict(x_test), b.predict(x_test))
    np.testing.assert_array_equal(a.predict_proba(x_test), b.predict_proba(x_test))


@pytest.mark.parametrize(
    ("promote", "vs_rule", "champion_after", "second_alias"),
    [
        ("auto", {"metric": "rmse", "op": "<=", "value": 1.0}, "2", "champion"),
        ("manual", {"metric": "rmse", "op": "<=", "value": 1.0}, "1", "challenger"),
        (
            "auto",
            {"metric": "rmse", "op": "<", "value": 0.0},
            "1",
            "challenger",
        ),  # must strictly improve
    ],
)
def test_second_run_follows_alias_policy(
    promote, vs_rule, champion_after, second_alias, dataset_config, workdir
):
    config, contract = dataset_config("diabetes")
    config["gate"]["promote"] = promote
    config["gate"]["vs_champion"] = [vs_rule]
    assert run_training(config, contract).alias == "champion"
    second = run_training(config, contract)
    assert second.exit_code == EXIT_OK and second.alias == second_alias
    client = client_for(workdir)
    assert champion(client, "diabetes") == champion_after
    aliases = client.get_registered_model("diabetes").aliases
    assert str(aliases.get(second_alias)) == "2"
    assert lineage(client, "diabetes", second_alias)["version"] == "2"


def test_gate_failure_registers_nothing(dataset_config, workdir):
    config, contract = dataset_config("breast_cancer")
    config["gate"]["absolute"] = [{"metric": "roc_auc", "op": ">=", "value": 0.9999}]
    result = run_training(config, contract)
    assert result.exit_code == EXIT_GATE and result.version is None
    assert "roc_auc" in result.message
    client = client_for(workdir)
    assert client.search_registered_models() == []
    run = client.get_run(result.run_id)
    assert run.data.tags["mlops.gate"] == "failed"
    assert run.data.metrics["roc_auc"] < 0.9999


def _penguin_rows(config) -> pd.DataFrame:
    return pd.read_csv(config["data"]["path"], keep_default_na=True)


def _bad_missing_column(config, path: Path) -> Path:
    _penguin_rows(config).drop(columns=["island"]).to_csv(path, index=False)
    return path


def _bad_dtype(config, path: Path) -> Path:
    frame = _penguin_rows(config).astype({"body_mass_g": object})
    frame.loc[10, "body_mass_g"] = "heavy"
    frame.to_csv(path, index=False)
    return path


def _bad_range(config, path: Path) -> Path:
    frame = _penguin_rows(config)
    frame.loc[5, "flipper_length_mm"] = 9999
    frame.to_csv(path, index=False)
    return path


def _bad_category(config, path: Path) -> Path:
    frame = _penguin_rows(config)
    frame.loc[0, "island"] = "Atlantis"
    frame.to_csv(path, index=False)
    return path


def _bad_nulls(config, path: Path) -> Path:
    frame = _penguin_rows(config)
    frame.loc[frame.index[:100], "sex"] = None
    frame.to_csv(path, index=False)
    return path


def _bad_empty(config, path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _bad_truncated_parquet(config, path: Path) -> Path:
    whole = path.with_name("whole.parquet")
    _penguin_rows(config).to_parquet(whole)
    target = path.with_suffix(".parquet")
    target.write_bytes(whole.read_bytes()[:-200])
    return target


BAD_DATA = {
    "missing_column": (_bad_missing_column, ("island", "missing_column")),
    "wrong_dtype": (_bad_dtype, ("body_mass_g", "dtype")),
    "out_of_range": (_bad_range, ("flipper_length_mm", "max")),
    "unseen_category": (_bad_category, ("island", "values")),
    "too_many_nulls": (_bad_nulls, ("sex", "max_null_fraction")),
    "empty_file": (_bad_empty, (None, "readable")),
    "truncated_parquet": (_bad_truncated_parquet, (None, "readable")),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_stops_at_the_gate_and_leaves_registry_untouched(case, dataset_config, workdir):
    config, contract = dataset_config("penguins")
    assert run_training(config, contract).exit_code == EXIT_OK
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("penguins").experiment_id
    runs_before = len(client.search_runs([experiment]))
    make, (column, check) = BAD_DATA[case]
    bad = make(config, workdir / "bad.csv")

    result = run_training(config, contract, environ={"MLOPS_TRAIN_DATA": str(bad)})

    assert result.exit_code == EXIT_CONTRACT
    assert result.report_path == workdir / "reports" / "contract_report.json"
    report = json.loads(result.report_path.read_text())
    assert report["ok"] is False and report["source"] == str(bad)
    assert (column, check) in {(f["column"], f["check"]) for f in report["failures"]}
    assert versions(client, "penguins") == ["1"]
    assert champion(client, "penguins") == "1"
    assert len(client.search_runs([experiment])) == runs_before


def test_tracking_uri_env_var_wins(dataset_config, workdir, empty_store, tmp_path):
    import shutil

    config, contract = dataset_config("wine")
    elsewhere = tmp_path / "elsewhere" / "store.db"
    elsewhere.parent.mkdir()
    shutil.copyfile(empty_store, elsewhere)
    result = run_training(
        config, contract, environ={"MLFLOW_TRACKING_URI": f"sqlite:///{elsewhere}"}
    )
    assert result.exit_code == EXIT_OK
    assert versions(MlflowClient(f"sqlite:///{elsewhere}", f"sqlite:///{elsewhere}"), "wine") == [
        "1"
    ]
    assert client_for(workdir).search_registered_models() == []


def test_resolve_tracking_uri_precedence(dataset_config):
    config, _ = dataset_config("wine")
    assert resolve_tracking_uri(config, {}) == "sqlite:///mlruns.db"
    assert (
        resolve_tracking_uri(config, {"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
        == "http://mlflow:5000"
    )
    del config["tracking"]["uri"]
    assert resolve_tracking_uri(config, {}) == "sqlite:///mlruns.db"


def test_unimportable_estimator_is_a_configuration_error(dataset_config, workdir):
    from mlops_runtime.train.stage import EXIT_CONFIG

    config, contract = dataset_config("wine")
    config["model"]["estimator"] = "sklearn.ensemble.NoSuchForest"
    result = run_training(config, contract)
    assert result.exit_code == EXIT_CONFIG and "NoSuchForest" in result.message
    assert client_for(workdir).search_experiments(filter_string="name = 'wine'") == []


@pytest.mark.parametrize(
    ("dataset", "estimator"),
    [
        ("breast_cancer", "sklearn.linear_model.LogisticRegression"),
        ("breast_cancer", "sklearn.ensemble.HistGradientBoostingClassifier"),
        ("wine", "sklearn.ensemble.RandomForestClassifier"),
        ("wine", "sklearn.ensemble.HistGradientBoostingClassifier"),
        ("penguins", "sklearn.tree.DecisionTreeClassifier"),
    ],
)
def test_one_pass_predictions_equal_predict(dataset, estimator, dataset_config):
    from mlops_runtime.train.fitting import PREDICT_IS_ARGMAX_PROBA, fit_and_evaluate
    from mlops_runtime.train.stage import load_validated

    config, contract = dataset_config(dataset)
    config["model"].update(estimator=estimator, params={"random_state": 0})
    assert estimator in PREDICT_IS_ARGMAX_PROBA
    frame, _, _ = load_validated(config, contract)
    fitted = fit_and_evaluate(frame, config)
    assert np.array_equal(fitted.predictions, fitted.pipeline.predict(fitted.x_test))
    assert np.array_equal(fitted.proba, fitted.pipeline.predict_proba(fitted.x_test))


def test_tied_probabilities_are_predicted_by_predict_itself():
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    from mlops_runtime.train.fitting import predict_test

    # Identical rows with opposite labels: the leaf holds [0.5, 0.5] for every row.
    x = pd.DataFrame({"a": [1.0, 1.0, 1.0, 1.0]})
    y = np.array(["no", "yes", "yes", "no"])
    pipeline = Pipeline([("model", DecisionTreeClassifier())]).fit(x, y)
    config = {
        "model": {"task": "classification", "estimator": "sklearn.tree.DecisionTreeClassifier"}
    }
    predictions, proba, classes = predict_test(pipeline, x, config)
    assert proba is not None and (proba == 0.5).all()
    assert np.array_equal(predictions, pipeline.predict(x)) and classes == ["no", "yes"]


def test_a_fit_that_fails_ends_its_run_failed_and_registers_nothing(dataset_config, workdir):
    from sklearn.utils._param_validation import InvalidParameterError

    config, contract = dataset_config("breast_cancer")
    config["model"]["params"] = {"C": -1.0}  # scikit-learn refuses it when fit starts
    with pytest.raises(InvalidParameterError):
        run_training(config, contract)
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("breast_cancer").experiment_id
    [run] = client.search_runs([experiment])
    assert run.info.status == "FAILED"
    assert run.data.params["C"] == "-1.0" and run.data.tags["mlops.data_sha256"]
    assert client.search_registered_models() == []


def test_a_tracking_store_that_cannot_open_fails_the_stage_with_its_error(dataset_config, workdir):
    config, contract = dataset_config("wine")
    blocker = workdir / "a-file"
    blocker.write_text("a file where the store's folder would go\n")
    missing = blocker / "store.db"
    with pytest.raises(RuntimeError, match="tracking failed"):
        run_training(config, contract, environ={"MLFLOW_TRACKING_URI": f"sqlite:///{missing}"})
    assert not missing.exists()


def test_bad_data_on_a_new_store_does_not_create_it(dataset_config, workdir):
    config, contract = dataset_config("penguins")
    (workdir / "mlruns.db").unlink()
    bad = _bad_category(config, workdir / "bad.csv")
    result = run_training(config, contract, environ={"MLOPS_TRAIN_DATA": str(bad)})
    assert result.exit_code == EXIT_CONTRACT
    assert not (workdir / "mlruns.db").exists() and not (workdir / "mlruns").exists()

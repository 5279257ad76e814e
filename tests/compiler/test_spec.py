"""Field syntaxes and cross-field rules of the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_compiler.errors import SpecError
from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.spec.model import Spec
from mlops_compiler.spec.scalars import check_cron, looks_secret, parse_duration, parse_threshold
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import MINIMAL


def spec_with(tmp_path: Path, **changes: object) -> Path:
    document = yaml.safe_load(MINIMAL)
    for dotted, value in changes.items():
        node = document
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def problems(path: Path) -> list[str]:
    try:
        validate(load_spec(path))
    except SpecError as exc:
        return [f"{d.path}: {d.message}" for d in exc.diagnostics]
    return []


@pytest.mark.parametrize(
    "expr", ["0 * * * *", "*/15 2-4 1,15 jan-mar mon-fri", "@daily", "5 0 * 8 7"]
)
def test_valid_cron(expr: str) -> None:
    check_cron(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "* * * *",
        "60 * * * *",
        "0 24 * * *",
        "0 0 0 * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "0 0 * foo *",
    ],
)
def test_invalid_cron(expr: str) -> None:
    with pytest.raises(ValueError):
        check_cron(expr)


def test_thresholds_and_durations() -> None:
    assert parse_threshold(">= 0.8").op == ">=" and parse_threshold("<-1e-2").value == -0.01
    with pytest.raises(ValueError):
        parse_threshold("=> 0.8")
    assert (
        parse_duration("90s") == 90
        and parse_duration("1h") == 3600
        and parse_duration("7d") == 604800
    )
    with pytest.raises(ValueError):
        parse_duration("1 hour")


@pytest.mark.parametrize(
    "text",
    [
        "https://u:p@host/x",
        "ghp_" + "a" * 36,
        "xoxb-123456789012-abc",
        "AKIA" + "A" * 16,
        "sk-" + "x" * 30,
    ],
)
def test_secret_looking_literals(text: str) -> None:
    assert looks_secret(text)


def test_ordinary_text_is_not_a_secret() -> None:
    assert looks_secret("sqlite:///mlruns.db") is None
    assert looks_secret("https://mlflow.internal:5000") is None


def test_minimal_spec_is_about_ten_lines_and_fills_defaults(
    minimal_spec: Path, tmp_path: Path
) -> None:
    assert len(minimal_spec.read_text().splitlines()) <= 13
    loaded = load_spec(minimal_spec)
    spec = validate(loaded)
    assert spec.level == 1 and spec.tracking.uri == "sqlite:///mlruns.db"
    config = make_plan(spec, loaded, tmp_path / "out").context["config"]
    assert config["model"]["task"] == "classification"
    assert config["features"]["numeric"]["columns"] == ["tenure"]
    assert config["features"]["categorical"]["columns"] == ["plan"]
    assert config["data"]["split"]["stratify"] is True
    assert config["data"]["path"] == "../../churn.csv"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"model__task": "regression"},
            "model.task: sklearn.linear_model.LogisticRegression is a classification estimator",
        ),
        ({"model__estimator": "mypkg.models.Custom"}, "model.estimator: unknown estimator"),
        (
            {"model__estimator": "mypkg.models.Custom", "model__custom_estimator": True},
            "model.task: a custom estimator needs an explicit task",
        ),
        (
            {"model__gate": {"vs_champion": {"roc_auc": "<= 0.1"}}},
            "roc_auc is higher-is-better: bound the change with >=",
        ),
        ({"model__gate": {"metrics": {"accuracy": ">= 80"}}}, "accuracy lies in [0, 1]"),
        (
            {
                "data__split": {"stratify": True},
                "model__estimator": "sklearn.linear_model.Ridge",
                "data__target": "tenure",
            },
            "stratified splits apply to classification only",
        ),
        ({"rollback": {"when": ["errors > 5"]}}, "rollback.when[0]: unknown trigger"),
        (
            {"deploy": {"autoscale": {"min": 5, "max": 2}}},
            "deploy.autoscale.min: min 5 is greater than max 2",
        ),
        ({"alerts": [{"kind": "webhook", "url_env": "lower-case"}]}, "alerts[0].url_env"),
        (
            {"features": {"categorical": {"columns": ["tenure"]}}},
            "'tenure' is a int column; categorical features take",
        ),
        ({"features": {"numeric": {"columns": ["churned"]}}}, "'churned' is the target"),
    ],
)
def test_cross_field_rules(tmp_path: Path, changes: dict[str, object], expected: str) -> None:
    found = problems(spec_with(tmp_path, **changes))
    assert any(expected in p for p in found), found


def test_a_valid_custom_estimator_is_accepted(tmp_path: Path) -> None:
    path = spec_with(
        tmp_path,
        model__estimator="mypkg.models.Custom",
        model__custom_estimator=True,
        model__task="classification",
    )
    assert problems(path) == []


def test_schema_forbids_extra_keys_everywhere() -> None:
    schema = Spec.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(
        d.get("additionalProperties") is False
        for d in schema["$defs"].values()
        if d.get("type") == "object" and "properties" in d
    )


def test_compiler_and_runtime_agree_on_metrics() -> None:
    """The compiler validates metric names without importing the runtime (which brings
    scikit-learn), so the metric table lives twice; this keeps the two copies equal."""
    from mlops_compiler.spec.metrics import HIGHER_IS_BETTER, METRICS_BY_TASK
    from mlops_runtime.train import evaluation as runtime

    assert runtime.HIGHER_IS_BETTER == HIGHER_IS_BETTER
    assert sorted(runtime.CLASSIFICATION_METRICS) == list(METRICS_BY_TASK["classification"])
    assert sorted(runtime.REGRESSION_METRICS) == list(METRICS_BY_TASK["regression"])


@pytest.mark.parametrize(("workers", "ok"), [(1, True), (4, True), (0, False), (65, False)])
def test_serving_workers_are_bounded(tmp_path: Path, workers: int, ok: bool) -> None:
    found = problems(spec_with(tmp_path, serving__workers=workers))
    assert (found == []) is ok, found
    if not ok:
        assert any(p.startswith("serving.workers") for p in found), found

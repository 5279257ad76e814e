"""The rollback policy: both trigger forms, their rules, and config.json's resolved triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.spec.triggers import parse_trigger
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import MINIMAL
from tests.compiler.test_spec import problems

MONITORS: dict[str, Any] = {
    "labels": {"file": "labels.csv"},
    "performance": {"metric": "roc_auc", "min": 0.8},
    "latency": {"p99_ms": 50},
    "error_rate": {"max": 0.02},
    "drift": {"drift_share": 0.3},
    "kpis": [{"name": "pro_share", "kind": "prediction_share", "class": True, "min": 0.1}],
}


def write(tmp_path: Path, rollback: dict[str, Any], **sections: Any) -> Path:
    document = yaml.safe_load(MINIMAL)
    document.update({"monitors": MONITORS, **sections, "rollback": rollback})
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def rollback_config(path: Path, level: int) -> dict[str, Any]:
    loaded = load_spec(path)
    config: dict[str, Any] = make_plan(
        validate(loaded), loaded, path.parent / "out", level
    ).context["config"]
    return config["rollback"]


def row(on: str, **fields: Any) -> dict[str, Any]:
    base = {"metric": None, "min": None, "max": None, "kpi": None, "min_samples": 100, "k": 1}
    return {"on": on, **base, "n": 1, **fields}


def test_every_trigger_is_resolved_in_full_from_level_2(tmp_path: Path) -> None:
    when = [
        "performance",
        "performance < 0.85",
        "error_rate",
        "error_rate > 0.05",
        "latency",
        "latency > 80",
        "drift",
        "drift > 0.6",
        "kpi pro_share",
        {"on": "kpi", "kpi": "pro_share", "max": 0.9, "min_samples": 30},
        {"on": "performance", "min": 0.9, "min_samples": 50, "windows": {"k": 2, "n": 3}},
    ]
    path = write(tmp_path, {"when": when, "min_samples": 100, "windows": {"k": 1, "n": 1}})
    config = rollback_config(path, level=2)
    assert config == {
        "keep_versions": 5,
        "automatic": True,
        "grace_samples": 200,
        "history": "reports/serving-history.jsonl",
        "triggers": [
            row("performance", metric="roc_auc", min=0.8),
            row("performance", metric="roc_auc", min=0.85),
            row("error_rate", max=0.02),
            row("error_rate", max=0.05),
            row("latency", max=50.0),
            row("latency", max=80.0),
            row("drift", max=0.3),
            row("drift", max=0.6),
            row("kpi", kpi="pro_share", min=0.1),
            row("kpi", kpi="pro_share", min=0.1, max=0.9, min_samples=30),
            row("performance", metric="roc_auc", min=0.9, min_samples=50, k=2, n=3),
        ],
    }


def test_section_defaults_reach_every_trigger_and_drift_defaults_to_half(tmp_path: Path) -> None:
    monitors = {k: v for k, v in MONITORS.items() if k != "drift"}
    path = write(
        tmp_path,
        {"when": ["drift", "latency"], "min_samples": 40, "windows": {"k": 2, "n": 4}},
        monitors=monitors,
    )
    triggers = rollback_config(path, level=3)["triggers"]
    assert triggers == [
        row("drift", max=0.5, min_samples=40, k=2, n=4),
        row("latency", max=50.0, min_samples=40, k=2, n=4),
    ]


def test_a_lower_is_better_metric_is_bounded_with_max(tmp_path: Path) -> None:
    document = yaml.safe_load(MINIMAL)
    document["model"] = {"estimator": "sklearn.linear_model.Ridge"}
    document["data"]["target"] = "tenure"
    document["monitors"] = {
        "labels": {"file": "labels.csv"},
        "performance": {"metric": "rmse", "max": 3.0},
    }
    document["rollback"] = {"when": ["performance", "performance > 4"]}
    path = tmp_path / "mlops.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert [t["max"] for t in rollback_config(path, level=2)["triggers"]] == [3.0, 4.0]
    document["rollback"] = {"when": ["performance < 4", {"on": "performance", "min": 2}]}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    found = problems(path)
    assert found == [
        "rollback.when[0]: rmse is lower-is-better: bound it with max ('performance > X')",
        "rollback.when[1].min: rmse is lower-is-better: bound it with max ('performance > X')",
    ], found


@pytest.mark.parametrize("level", [0, 1])
def test_below_level_2_rollback_is_manual_and_lists_no_trigger(tmp_path: Path, level: int) -> None:
    path = write(tmp_path, {"when": ["performance"], "keep_versions": 7, "grace_samples": 0})
    assert rollback_config(path, level) == {
        "keep_versions": 7,
        "automatic": False,
        "grace_samples": 0,
        "history": "reports/serving-history.jsonl",
        "triggers": [],
    }


def test_a_spec_without_a_rollback_section_still_gets_its_key_and_stages(tmp_path: Path) -> None:
    path = tmp_path / "mlops.yaml"
    path.write_text(MINIMAL)
    loaded = load_spec(path)
    for level in range(4):
        plan = make_plan(validate(loaded), loaded, tmp_path / "out", level)
        config = plan.context["config"]
        assert config["rollback"]["triggers"] == []
        assert config["rollback"]["automatic"] is (level >= 2)
        assert {"rollback", "history"} <= set(plan.commands)
        stages = config["stages"]
        assert stages.index("monitor") < stages.index("rollback") < stages.index("history")
        # The server polls its alias often enough for a rollback to serve within seconds.
        assert config["serving"]["reload_interval_s"] == 2


def test_the_old_short_strings_still_read() -> None:
    assert parse_trigger("performance").on == "performance"
    assert parse_trigger(" latency ").max is None
    assert parse_trigger("error_rate > 0.05").max == 0.05
    assert parse_trigger("error_rate>1").max == 1.0
    assert parse_trigger("drift").on == "drift"
    assert parse_trigger("kpi pro_share").kpi == "pro_share"
    assert parse_trigger("performance < 0.85").min == 0.85
    for bad in ("errors > 5", "latency >= 80", "kpi", "performance < high", "drift > 1e999"):
        with pytest.raises(ValueError):
            parse_trigger(bad)


@pytest.mark.parametrize(
    ("when", "monitors", "expected"),
    [
        (
            ["performance"],
            {},
            "rollback.when[0]: a performance trigger needs monitors.performance and "
            "monitors.labels",
        ),
        (["performance < 1.2"], None, "rollback.when[0]: roc_auc lies in [0, 1], not 1.2"),
        (
            [{"on": "performance", "min": 0.7, "max": 0.9}],
            None,
            "rollback.when[0].max: roc_auc is higher-is-better: bound it with min",
        ),
        (
            ["error_rate"],
            {},
            "rollback.when[0]: error_rate needs a bound: 'error_rate > 0.05' or "
            "monitors.error_rate.max",
        ),
        (["error_rate > 1.5"], None, "rollback.when[0]: error_rate is a share of requests"),
        (
            [{"on": "error_rate", "max": 0}],
            None,
            "rollback.when[0].max: error_rate is a share of requests: 0.0 is not in (0, 1]",
        ),
        (["latency"], {}, "rollback.when[0]: latency needs a bound"),
        (["latency > 0"], None, "rollback.when[0]: the p99 bound must be positive"),
        (["latency < 5"], None, "rollback.when[0]: latency fires above a bound: give max"),
        (["drift > 0"], None, "rollback.when[0]: drift is a share of features"),
        (
            ["kpi pro_shar"],
            None,
            "rollback.when[0]: 'pro_shar' is not a KPI of monitors.kpis (did you mean 'pro_share'?)",
        ),
        (
            [{"on": "kpi", "min": 0.2}],
            None,
            "rollback.when[0]: an `on: kpi` trigger needs kpi",
        ),
        (
            [{"on": "kpi", "kpi": "pro_share", "max": 0.05}],
            None,
            "rollback.when[0].max: min 0.1 is greater than max 0.05",
        ),
        (
            [{"on": "drift", "kpi": "pro_share"}],
            None,
            "rollback.when[0].kpi: kpi names the KPI of an `on: kpi` trigger only",
        ),
        (
            [{"on": "latency", "windows": {"k": 3, "n": 2}}],
            None,
            "rollback.when[0].windows.k: k 3 is greater than n 2",
        ),
        (
            [{"on": "latency", "bound": 3}],
            None,
            "rollback.when[0].bound: unknown key 'bound'",
        ),
        ([{"on": "errors"}], None, "rollback.when[0].on: 'errors' is not one of"),
        (["errors > 5"], None, "rollback.when[0]: unknown trigger 'errors > 5'; use performance"),
    ],
)
def test_trigger_rules(
    tmp_path: Path, when: list[Any], monitors: dict[str, Any] | None, expected: str
) -> None:
    sections = {} if monitors is None else {"monitors": monitors}
    found = problems(write(tmp_path, {"when": when}, **sections))
    assert any(p.startswith(expected) for p in found), found
    assert not any("not a valid string" in p for p in found), "a mapping is judged as a mapping"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"when": ["errors", "drift > 2", {"on": "latency", "max": -1}], "windows": {"k": 2}},
    )
    found = problems(path)
    assert sorted(p.split(":")[0] for p in found) == [
        "rollback.when[0]",
        "rollback.when[1]",
        "rollback.when[2].max",
        "rollback.windows.k",
    ], found


def test_triggers_below_level_2_are_warned_about(tmp_path: Path) -> None:
    path = write(tmp_path, {"when": ["latency"], "keep_versions": 3})
    loaded = load_spec(path)
    spec = validate(loaded)
    warned = [w.path for w in make_plan(spec, loaded, tmp_path / "out", 1).warnings]
    assert warned == ["rollback.when"]
    assert make_plan(spec, loaded, tmp_path / "out", 2).warnings == ()

"""Level-3 alerting files: Prometheus rules that promtool accepts and whose generated unit
tests pass, a Grafana dashboard over known metrics only, and spec values that cannot escape
their PromQL matchers or Prometheus templates."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mlops_compiler.plan import alerting
from mlops_compiler.plan.alerting import (
    RULES_FILE,
    RUNBOOK_BASE,
    alert_rules,
    alerting_context,
    dashboard_uid,
    grafana_dashboard,
    grafana_provisioning,
    promql_string,
    rule_tests,
    runbook_entries,
)
from mlops_compiler.render.environment import make_environment
from mlops_compiler.render.filters import yaml_document
from mlops_compiler.render.render import header_for
from tests.system_programs import require

FILES = {
    "alert-rules.yml": "project/monitoring/alert-rules.yml.jinja",
    "alert-rules.test.yml": "project/monitoring/alert-rules.test.yml.jinja",
    "grafana-dashboard.json": "project/monitoring/grafana-dashboard.json.jinja",
    "grafana-provisioning.yml": "project/monitoring/grafana-provisioning.yml.jinja",
}

RICH: dict[str, Any] = {
    "schedule": "0 * * * *",
    "window": {"duration_s": 3600, "records": None},
    "reference": True,
    "min_rows": 100,
    "drift": {"method": "auto", "threshold": None, "drift_share": 0.5, "columns": {}},
    "performance": {
        "labels": "../../specs/data/labels.csv",
        "join_key": "request_id",
        "metric": "roc_auc",
        "min": 0.9,
        "min_samples": 100,
    },
    "latency": {"p99_ms": 37.3},
    "error_rate": {"max": 0.05},
    "kpis": [
        {
            "name": "malignant_share",
            "kind": "prediction_share",
            "class": "1",
            "column": None,
            "min": 0.1,
            "max": 0.6,
        },
        {
            "name": "benign_share",
            "kind": "prediction_share",
            "class": "0",
            "column": None,
            "min": 0.2,
            "max": None,
        },
    ],
    "reports_dir": "reports/monitor",
    "textfile": "reports/monitor/mlops_monitor.prom",
}
MINIMAL: dict[str, Any] = {
    **RICH,
    "reference": False,
    "drift": None,
    "performance": None,
    "latency": None,
    "error_rate": None,
    "kpis": [],
}
# Beyond RICH: both metric bounds and a feature store, so every row of the tables applies.
EVERYTHING: dict[str, Any] = {
    **RICH,
    "performance": {**RICH["performance"], "max": 0.99},
    "feature_views": ["customer", "orders"],
}
RICH_ALERTS = {
    "MlopsMonitorStale",
    "MlopsMonitorFailing",
    "MlopsDatasetDrift",
    "MlopsFeatureDrift",
    "MlopsPredictionDrift",
    "MlopsModelMetricLow",
    "MlopsLatencyP99High",
    "MlopsErrorRateHigh",
    "MlopsKpiOutOfBounds",
    "MlopsPredictionLogDropping",
}
ALWAYS = {"MlopsMonitorStale", "MlopsMonitorFailing", "MlopsPredictionLogDropping"}
# The metrics the runtime exports: the monitor's textfile gauges and the server's /metrics.
KNOWN_METRICS = {
    "mlops_monitor_status",
    "mlops_monitor_last_run_timestamp_seconds",
    "mlops_monitor_window_rows",
    "mlops_monitor_drift_score",
    "mlops_monitor_drift_threshold",
    "mlops_monitor_feature_drifted",
    "mlops_monitor_drifted_share",
    "mlops_monitor_dataset_drift",
    "mlops_monitor_prediction_drifted",
    "mlops_monitor_metric",
    "mlops_monitor_metric_baseline",
    "mlops_monitor_kpi",
    "mlops_monitor_kpi_ok",
    "mlops_monitor_latency_p99_ms",
    "mlops_monitor_error_rate",
    "mlops_monitor_null_rate",
    "mlops_monitor_violations",
    "mlops_requests_total",
    "mlops_request_latency_seconds_bucket",
    "mlops_predictions_total",
    "mlops_prediction_log_dropped_total",
    "mlops_model_info",
}
# A selector's metric name: an identifier right before its label matchers.
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
HOSTILE = 'a"b}'
HOSTILE_KPI = 'a"b}\\ {{ $value }}\n{{'


def render(name: str, monitor: dict[str, Any], dest: Path) -> dict[str, str]:
    """The four files as the build writes them, header lines included."""
    env = make_environment()
    context = {"alerting": alerting_context(name, monitor)}
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for path, template in FILES.items():
        body = env.get_template(template).render(context)
        header = header_for(f"monitoring/{path}", "specs/x.mlops.yaml")
        text = f"{header}\n{body}" if header else body
        (dest / path).write_text(text, encoding="utf-8")
        out[path] = text
    return out


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [require("promtool"), *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=60)


def rules_of(monitor: dict[str, Any], name: str = "churn") -> list[dict[str, Any]]:
    groups = alert_rules(name, monitor)["groups"]
    assert len(groups) == 1 and groups[0]["name"] == f"mlops-{name}"
    rules: list[dict[str, Any]] = groups[0]["rules"]
    return rules


@pytest.mark.parametrize(
    "monitor", [RICH, MINIMAL, EVERYTHING], ids=["rich", "minimal", "everything"]
)
def test_promtool_checks_the_rules_and_passes_their_tests(
    monitor: dict[str, Any], tmp_path: Path
) -> None:
    render("churn", monitor, tmp_path)
    check = promtool("check", "rules", "alert-rules.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules_of(monitor))} rules found" in check.stdout
    test = promtool("test", "rules", "alert-rules.test.yml", cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_the_alerts_are_those_the_monitor_declares() -> None:
    rich = [r["alert"] for r in rules_of(RICH)]
    assert set(rich) == RICH_ALERTS
    assert rich.count("MlopsKpiOutOfBounds") == 2
    assert {r["alert"] for r in rules_of(MINIMAL)} == ALWAYS
    lower_is_better = {**MINIMAL, "performance": {"metric": "rmse", "min": None, "max": 40.0}}
    (high,) = [r for r in rules_of(lower_is_better) if r["alert"].startswith("MlopsModelMetric")]
    assert high["alert"] == "MlopsModelMetricHigh"
    assert high["expr"] == 'mlops_monitor_metric{model="churn",metric="rmse"} > 40'


# What each conditional alert and panel needs declared (docs/monitoring-alerting.md).
EMITTED_WHEN = {
    "drift": {"MlopsDatasetDrift", "MlopsFeatureDrift", "MlopsPredictionDrift"},
    "performance": {"MlopsModelMetricLow", "MlopsModelMetricHigh"},
    "latency": {"MlopsLatencyP99High"},
    "error_rate": {"MlopsErrorRateHigh"},
    "kpis": {"MlopsKpiOutOfBounds"},
    "feature_views": {"MlopsFeatureStale"},
}
PANELS_WHEN = {
    "drift": {"Drift score per feature", "Drifted feature share"},
    "performance": {"Live metric vs baseline"},
    "kpis": {"KPIs"},
}


def test_every_row_of_the_tables_applies_to_a_monitor_declaring_everything() -> None:
    names = [r["alert"] for r in rules_of(EVERYTHING)]
    assert list(dict.fromkeys(names)) == [a.name for a in alerting.ALERTS]
    assert names.count("MlopsKpiOutOfBounds") == len(EVERYTHING["kpis"])
    titles = [p["title"] for p in grafana_dashboard("churn", EVERYTHING)["panels"]]
    assert titles == [p.title for p in alerting.PANELS]
    # One runbook entry per alert name, each saying what to check.
    entries = runbook_entries("churn", EVERYTHING)
    assert [alert for alert, _, _ in entries] == list(
        dict.fromkeys(a.name for a in alerting.ALERTS)
    )
    assert all(steps for _, _, steps in entries)


@pytest.mark.parametrize("section", sorted(EMITTED_WHEN))
def test_each_conditional_alert_and_panel_goes_with_its_declaration(section: str) -> None:
    without = {**EVERYTHING, section: [] if section in ("kpis", "feature_views") else None}
    everything = {r["alert"] for r in rules_of(EVERYTHING)}
    assert {r["alert"] for r in rules_of(without)} == everything - EMITTED_WHEN[section]
    titles = {p["title"] for p in grafana_dashboard("churn", EVERYTHING)["panels"]}
    kept = {p["title"] for p in grafana_dashboard("churn", without)["panels"]}
    assert kept == titles - PANELS_WHEN.get(section, set())


def test_a_metric_alert_per_declared_bound() -> None:
    for bounds, alerts in (
        ({"min": 0.9, "max": None}, {"MlopsModelMetricLow"}),
        ({"min": None, "max": 0.99}, {"MlopsModelMetricHigh"}),
        ({"min": None, "max": None}, set()),
    ):
        monitor = {**MINIMAL, "performance": {"metric": "roc_auc", **bounds}}
        assert {r["alert"] for r in rules_of(monitor)} - ALWAYS == alerts
        # The panel shows the metric whether or not a bound is declared.
        titles = {p["title"] for p in grafana_dashboard("churn", monitor)["panels"]}
        assert "Live metric vs baseline" in titles


def test_an_alert_carrying_series_labels_has_one_firing_series() -> None:
    (stale,) = [a for a in alerting.ALERTS if a.name == "MlopsMonitorStale"]
    with pytest.raises(ValueError, match="one firing series"):
        dataclasses.replace(stale, firing=[*stale.firing, *stale.firing])


def test_the_expressions_read_as_documented() -> None:
    exprs = {r["alert"]: r["expr"] for r in rules_of(RICH)}
    assert exprs["MlopsMonitorStale"] == (
        'time() - mlops_monitor_last_run_timestamp_seconds{model="churn"} > 10800'
    )
    assert exprs["MlopsMonitorFailing"] == 'mlops_monitor_status{model="churn"} == 2'
    assert exprs["MlopsModelMetricLow"] == (
        'mlops_monitor_metric{model="churn",metric="roc_auc"} < 0.9'
    )
    assert exprs["MlopsLatencyP99High"] == (
        "histogram_quantile(0.99, sum by (le) "
        '(rate(mlops_request_latency_seconds_bucket{job="churn",'
        'endpoint=~"/predict|/invocations|/v2/models/.+/infer",status="200"}[5m]))) '
        "* 1000 > 37.3"
    )
    assert exprs["MlopsErrorRateHigh"] == (
        'sum(rate(mlops_requests_total{job="churn",'
        'endpoint=~"/predict|/invocations|/v2/models/.+/infer",status=~"5.."}[5m])) / '
        'sum(rate(mlops_requests_total{job="churn",'
        'endpoint=~"/predict|/invocations|/v2/models/.+/infer",status!~"4.."}[5m])) > 0.05'
    )
    assert exprs["MlopsPredictionLogDropping"] == (
        'increase(mlops_prediction_log_dropped_total{job="churn"}[15m]) > 0'
    )
    kpis = [r for r in rules_of(RICH) if r["alert"] == "MlopsKpiOutOfBounds"]
    # Sorted by KPI name, one matcher and one label each.
    assert [r["labels"]["kpi"] for r in kpis] == ["benign_share", "malignant_share"]
    assert kpis[0]["expr"] == ('mlops_monitor_kpi_ok{model="churn",kpi="benign_share"} == 0')
    assert "(min 0.2)" in kpis[0]["annotations"]["description"]
    assert "(min 0.1, max 0.6)" in kpis[1]["annotations"]["description"]


def test_the_live_alerts_select_exactly_the_servers_prediction_endpoints() -> None:
    """The endpoint labels the runtime counts as predictions (its prediction log's) are the
    ones the live rules match; probes and scrapes are not."""
    from mlops_runtime.serve import app

    selects = re.compile(alerting.PREDICTION_ENDPOINTS)
    for endpoint in app._PREDICTION_ENDPOINTS:
        assert selects.fullmatch(endpoint), endpoint
    assert selects.fullmatch(app._endpoint_label("/v2/models/breast-cancer/infer"))
    others = ["/ping", "/health", "/ready", "/v2", "/v2/health/live", "/v2/health/ready",
              "/metrics", "/openapi.json", "/v2/models/m", "/v2/models/m/ready", "/nope"]  # fmt: skip
    for path in others:
        assert not selects.fullmatch(app._endpoint_label(path)), path


@pytest.mark.parametrize(
    ("window", "bound"),
    [
        ({"duration_s": 7200, "records": None}, 21600),
        ({"duration_s": 600, "records": None}, 3600),  # never under an hour
        ({"duration_s": None, "records": 500}, 10800),  # a window of records: hourly runs
    ],
)
def test_the_staleness_bound_is_three_windows(window: dict[str, Any], bound: int) -> None:
    (stale,) = [r for r in rules_of({**MINIMAL, "window": window}) if "Stale" in r["alert"]]
    assert stale["expr"].endswith(f"> {bound}")


def test_every_alert_has_for_severity_and_annotations() -> None:
    base = "https://runbooks.example.org/churn/"
    for monitor in (RICH, MINIMAL, {**RICH, "runbook_base": base}):
        for rule in rules_of(monitor):
            assert re.fullmatch(r"(5|10|15)m", rule["for"]), rule
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["labels"]["model"] == "churn"
            notes = rule["annotations"]
            assert set(notes) == {"summary", "description", "runbook_url"}
            assert notes["summary"] and "{{ $value" in notes["description"]
            if "runbook_base" in monitor:
                assert notes["runbook_url"] == f"{base}{rule['alert']}"
            else:
                assert notes["runbook_url"] == f"{RUNBOOK_BASE}{rule['alert'].lower()}"
    by_name = {r["alert"]: r for r in rules_of(RICH)}
    assert by_name["MlopsMonitorFailing"]["labels"]["severity"] == "critical"
    assert by_name["MlopsModelMetricLow"]["labels"]["severity"] == "critical"
    assert "{{ $labels.feature }}" in by_name["MlopsFeatureDrift"]["annotations"]["description"]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    for monitor in (RICH, MINIMAL):
        rules = rules_of(monitor)
        tests = rule_tests("churn", monitor)
        assert tests["rule_files"] == [RULES_FILE]
        cases = tests["tests"]
        assert len(cases) == 2 * len(rules)
        for rule, fires, quiet in zip(rules, cases[::2], cases[1::2], strict=True):
            (fire_check,) = fires["alert_rule_test"]
            (quiet_check,) = quiet["alert_rule_test"]
            assert fire_check["alertname"] == quiet_check["alertname"] == rule["alert"]
            (expected,) = fire_check["exp_alerts"]
            assert quiet_check["exp_alerts"] == []
            # The rule's own labels, expanded, are among the ones the alert must carry.
            assert rule["labels"].items() <= expected["exp_labels"].items()
            assert set(expected["exp_annotations"]) == set(rule["annotations"])
            assert "{{" not in expected["exp_annotations"]["description"]


def test_the_cases_fail_against_rules_that_never_or_always_fire(tmp_path: Path) -> None:
    """The generated cases have teeth: promtool fails every firing case when no rule can fire
    and every quiet case when every rule fires."""
    render("churn", RICH, tmp_path)
    rules = yaml.safe_load((tmp_path / "alert-rules.yml").read_text())
    names = [t["name"] for t in rule_tests("churn", RICH)["tests"]]
    for expr, failing in (("vector(0) > 1", "fires"), ("vector(1)", "stays quiet")):
        broken = copy.deepcopy(rules)
        for rule in broken["groups"][0]["rules"]:
            rule["expr"] = expr
        (tmp_path / "alert-rules.yml").write_text(yaml.safe_dump(broken))
        result = promtool("test", "rules", "alert-rules.test.yml", cwd=tmp_path)
        assert result.returncode != 0
        output = result.stdout + result.stderr
        failed = set(re.findall(r"name: (.+?),\n", output))
        cases = {n for n in names if n.endswith(failing)}
        # An expression that always fires carries no series labels, so the firing cases may
        # fail with it too; one that never fires fails the firing cases only.
        assert (failed == cases) if failing == "fires" else (cases <= failed), output


def test_the_files_are_the_documents_with_prometheus_templates_intact(tmp_path: Path) -> None:
    files = render("churn", RICH, tmp_path)
    context = alerting_context("churn", RICH)
    for path, key in (
        ("alert-rules.yml", "rules"),
        ("alert-rules.test.yml", "rule_tests"),
        ("grafana-provisioning.yml", "provisioning"),
    ):
        assert files[path].startswith("# Generated by mlops-compiler from specs/x.mlops.yaml")
        assert yaml.safe_load(files[path]) == context[key]
    assert json.loads(files["grafana-dashboard.json"]) == context["dashboard"]
    # Printed as data, so Jinja left Prometheus's own templates alone.
    assert '{{ $value | printf "%.0f" }}' in files["alert-rules.yml"]
    assert "{{ $labels.feature }}" in files["alert-rules.yml"]
    # Readable block YAML, not one long flow line.
    assert "\n      - alert: MlopsMonitorStale\n" in files["alert-rules.yml"]


def test_the_output_is_deterministic(tmp_path: Path) -> None:
    first = render("churn", RICH, tmp_path / "a")
    shuffled = {**copy.deepcopy(RICH), "kpis": list(reversed(RICH["kpis"]))}
    assert render("churn", shuffled, tmp_path / "b") == first
    assert render("churn", RICH, tmp_path / "c") == first


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.mark.parametrize("monitor", [RICH, MINIMAL], ids=["rich", "minimal"])
def test_the_dashboard_queries_known_metrics_only(monitor: dict[str, Any], tmp_path: Path) -> None:
    files = render("churn", monitor, tmp_path)
    dashboard = json.loads(files["grafana-dashboard.json"])
    assert dashboard["uid"] == "mlops-churn" and dashboard["id"] is None
    assert 36 <= dashboard["schemaVersion"] <= 41
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "DS_PROMETHEUS" and variable["type"] == "datasource"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            used = set(SELECTOR.findall(target["expr"]))
            assert used and used <= KNOWN_METRICS, target["expr"]
            assert 'job="churn"' in target["expr"] or 'model="churn"' in target["expr"]
    # Every query parses as PromQL: promtool checks them as recording rules.
    records = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(dashboard_exprs(dashboard))
    ]
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "q", "rules": records}]})
    )
    check = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    drift_panels = {"Drift score per feature", "Drifted feature share"}
    titles = {p["title"] for p in dashboard["panels"]}
    assert (drift_panels <= titles) == (monitor["drift"] is not None)
    assert ("KPIs" in titles) == bool(monitor["kpis"])
    assert ("Live metric vs baseline" in titles) == (monitor["performance"] is not None)
    assert {"Requests per second", "Error rate", "Latency p50 / p99", "Monitor status"} <= titles


def test_the_dashboard_shows_the_declared_bounds() -> None:
    panels = {p["title"]: p for p in grafana_dashboard("churn", RICH)["panels"]}

    def bound(title: str) -> object:
        return panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]

    assert bound("Latency p50 / p99") == 37.3
    assert bound("Error rate") == 0.05
    assert bound("Drifted feature share") == 0.5
    assert bound("Live metric vs baseline") == 0.9
    # Grid positions never overlap.
    cells: set[tuple[int, int]] = set()
    for panel in panels.values():
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert g["x"] + g["w"] <= 24 and not cells & area
        cells |= area


def test_dashboard_uids_are_valid_for_any_name() -> None:
    assert dashboard_uid("breast-cancer") == "mlops-breast-cancer"
    for name in (HOSTILE, "x" * 60, "a/b c"):
        uid = dashboard_uid(name)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), uid
    assert dashboard_uid("a/b") != dashboard_uid("a b")  # the hash tells them apart


def test_the_provisioning_points_grafana_at_the_dashboard_folder() -> None:
    config = grafana_provisioning("churn")
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/etc/grafana/dashboards/churn"


def test_names_cannot_break_out_of_matchers_or_templates(tmp_path: Path) -> None:
    """A model or KPI name with quotes, braces, a backslash, a newline and Prometheus template
    syntax stays one label value: promtool accepts the rules and the generated tests, which
    feed series carrying exactly that value and expect exactly that text back."""
    monitor = copy.deepcopy(RICH)
    monitor["kpis"][0]["name"] = HOSTILE_KPI
    files = render(HOSTILE, monitor, tmp_path)
    check = promtool("check", "rules", "alert-rules.yml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", "alert-rules.test.yml", cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout
    rules = rules_of(monitor, HOSTILE)
    (kpi,) = [r for r in rules if r["labels"].get("kpi", "").startswith("a")]
    assert kpi["expr"] == (
        'mlops_monitor_kpi_ok{model="a\\"b}",kpi="a\\"b}\\\\ {{ $value }}\\n{{"} == 0'
    )
    # In labels and annotations the name's "{{" is printed by a template action of its own.
    assert kpi["labels"]["kpi"] == 'a"b}\\ {{ "{{" }} $value }}\n{{ "{{" }}'
    tests = yaml.safe_load(files["alert-rules.test.yml"])["tests"]
    expected = [
        a["exp_labels"]
        for t in tests
        for check_ in t["alert_rule_test"]
        for a in check_["exp_alerts"]
        if "kpi" in a["exp_labels"]
    ]
    assert {"kpi": HOSTILE_KPI, "model": HOSTILE, "severity": "warning"} in expected
    dashboard = json.loads(files["grafana-dashboard.json"])
    for expr in dashboard_exprs(dashboard):
        assert 'model="a\\"b}"' in expr or 'job="a\\"b}"' in expr


def test_promql_strings_escape_what_ends_them() -> None:
    assert promql_string('a"b}') == '"a\\"b}"'
    assert promql_string("\\") == '"\\\\"'
    assert promql_string("a\nb\x00") == '"a\\nb\\x00"'
    assert promql_string("é") == '"é"'


def test_the_alerting_module_keeps_the_compiler_import_light() -> None:
    modules = sorted(Path(alerting.__file__).parent.glob("*.py"))
    assert len(modules) > 1  # the package's families and printers, not just its front
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for path in modules
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    # The standard library and the package's own modules, nothing else.
    outside = {name for name in imported if not name.startswith(f"{alerting.__name__}.")}
    outside.discard(alerting.__name__)
    assert {name.split(".")[0] for name in outside} <= sys.stdlib_module_names | {"__future__"}
    code = (
        "import sys, mlops_compiler.plan.alerting; "
        "heavy = {'numpy', 'pandas', 'sklearn', 'scipy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bounds_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        alert_rules("churn", {**MINIMAL, "latency": {"p99_ms": math.inf}})


# -- the yaml_document filter ----------------------------------------------------------------

text = st.text(max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.sampled_from(["5m", "1h30m", "yes", "No", "null", "1e5", "0x1F", "- a", "a: b", "#"])
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=16,
)


@given(documents)
def test_yaml_document_reads_back_as_the_same_value(value: object) -> None:
    assert yaml.safe_load(yaml_document(value)) == value


def test_yaml_document_is_block_yaml_with_plain_words() -> None:
    doc = {"groups": [{"name": "g", "rules": [{"for": "5m", "expr": 'a{b="c"} > 1'}]}], "e": []}
    assert yaml_document(doc) == (
        "groups:\n  - name: g\n    rules:\n      - for: 5m\n        expr: 'a{b=\"c\"} > 1'\ne: []"
    )
    assert yaml_document({"on": "yes"}) == "'on': 'yes'"


def test_yaml_document_refuses_what_yaml_cannot_say() -> None:
    with pytest.raises(TypeError, match="text keys"):
        yaml_document({1: "a"})
    with pytest.raises(ValueError, match="non-finite"):
        yaml_document({"a": [math.nan]})

"""Alert tables to Prometheus documents: the rules file, its `promtool test rules` file and the
runbook entries. Each rule and its two test cases are printed from the same row and facts, so
the tests cover every rule by construction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops_compiler.plan.alerting.promql import (
    Part,
    expanded,
    matcher,
    parts,
    template,
    template_literal,
    vocabulary,
)
from mlops_compiler.plan.alerting.table import EVAL_MINUTES, SAMPLES, Alert, Monitor, Series

RULES_FILE = "alert-rules.yml"
# Where alert annotations point when no runbook URL is configured: the runbook section of
# the generated project's README, one heading per alert name (`README.md#<alertname>`, the
# anchor GitHub and GitLab give a heading). A `runbook_base` key in the monitor section (an
# absolute URL) replaces it, as `<runbook_base>/<AlertName>`.
RUNBOOK_BASE = "README.md#"

Rule = tuple[Alert, Mapping[str, str]]  # a row and the facts its templates are filled with


def rules_of(alerts: Sequence[Alert], name: str, monitor: Monitor) -> list[Rule]:
    """The rules the monitor's declarations call for, in table order."""
    words = {**vocabulary(name), "samples": str(SAMPLES)}
    return [
        (alert, {**words, **facts})
        for alert in alerts
        if alert.when(monitor)
        for facts in alert.facts(name, monitor)
    ]


def _runbook(monitor: Monitor) -> str:
    base = monitor.get("runbook_base")
    return str(base).rstrip("/") + "/" if base else RUNBOOK_BASE


def runbook_url(base: str, alert: str) -> str:
    return f"{base}{alert.lower()}" if base == RUNBOOK_BASE else f"{base}{alert}"


def _own_labels(alert: Alert, facts: Mapping[str, str]) -> dict[str, str]:
    return {k: v.format_map(facts) for k, v in alert.labels.items()}


def _labels(alert: Alert, facts: Mapping[str, str]) -> dict[str, str]:
    return {"severity": alert.severity, "model": facts["name"], **_own_labels(alert, facts)}


def _annotations(alert: Alert, facts: Mapping[str, str], runbook: str) -> dict[str, list[Part]]:
    return {
        "summary": parts(alert.summary, facts),
        "description": parts(alert.description, facts),
        "runbook_url": [runbook_url(runbook, alert.name)],
    }


def alert_rules(alerts: Sequence[Alert], name: str, monitor: Monitor) -> dict[str, Any]:
    runbook = _runbook(monitor)
    rules = [
        {
            "alert": alert.name,
            "expr": alert.expr.format_map(facts),
            "for": alert.for_,
            "labels": {k: template_literal(v) for k, v in _labels(alert, facts).items()},
            "annotations": {k: template(v) for k, v in _annotations(alert, facts, runbook).items()},
        }
        for alert, facts in rules_of(alerts, name, monitor)
    ]
    return {"groups": [{"name": f"mlops-{name}", "rules": rules}]}


def _series_labels(series: Series, facts: Mapping[str, str]) -> dict[str, str]:
    return {k: v.format_map(facts) for k, v in series.labels.items()}


def _input(series: Sequence[Series], facts: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {
            "series": s.metric + matcher(_series_labels(s, facts)),
            "values": s.values.format_map(facts),
        }
        for s in series
    ]


def rule_tests(alerts: Sequence[Alert], name: str, monitor: Monitor) -> dict[str, Any]:
    runbook = _runbook(monitor)
    tests: list[dict[str, Any]] = []
    for alert, facts in rules_of(alerts, name, monitor):
        carried = _series_labels(alert.firing[0], facts) if alert.carries_labels else {}
        value = float(alert.value.format_map(facts))
        # Rules sharing an alert name (the KPIs) are told apart by their own labels.
        own = _own_labels(alert, facts)
        title = " ".join([alert.name, *(f"{k}={v}" for k, v in own.items())])
        expected = {
            "exp_labels": {**carried, **_labels(alert, facts)},
            "exp_annotations": {
                k: expanded(v, value, carried)
                for k, v in _annotations(alert, facts, runbook).items()
            },
        }
        for case, series, exp_alerts in (
            ("fires", alert.firing, [expected]),
            ("stays quiet", alert.quiet, []),
        ):
            tests.append(
                {
                    "name": f"{title} {case}",
                    "interval": "1m",
                    "input_series": _input(series, facts),
                    "alert_rule_test": [
                        {
                            "eval_time": f"{EVAL_MINUTES}m",
                            "alertname": alert.name,
                            "exp_alerts": exp_alerts,
                        }
                    ],
                }
            )
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


def runbook_entries(
    alerts: Sequence[Alert], name: str, monitor: Monitor
) -> list[tuple[str, str, str]]:
    """(alert, severity, what to check) for each alert the rules file holds, once per name."""
    seen: dict[str, tuple[str, str, str]] = {}
    for alert, _ in rules_of(alerts, name, monitor):
        seen.setdefault(alert.name, (alert.name, alert.severity, alert.runbook))
    return list(seen.values())

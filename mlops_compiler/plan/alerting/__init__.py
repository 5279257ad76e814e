"""Level-3 alerting files computed from config.json's `monitor` section: Prometheus alert
rules, their `promtool test rules` unit tests, a Grafana dashboard and its file-provisioning
config (see docs/monitoring-prometheus-grafana.md).

Each alert family (health, drift, performance, serving, kpis, features) is a table: one row
per alert, with the scenario that proves it, and one per dashboard panel, each with the
predicate that decides whether a spec gets it. The generic printers in `prometheus` and
`grafana` turn the tables into documents.

Every function is pure and returns plain dicts and lists, laid out the same way on every
build. The templates print them whole through `yaml_document` / `json_document`, never as
Jinja text, so the Prometheus templates in annotations (`{{ $value }}`) reach the files as
written. What comes from the spec is escaped for the two languages it lands in (`promql`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_compiler.plan.alerting import (
    drift,
    features,
    grafana,
    health,
    kpis,
    performance,
    prometheus,
    serving,
)
from mlops_compiler.plan.alerting.grafana import dashboard_uid, grafana_provisioning
from mlops_compiler.plan.alerting.prometheus import RULES_FILE, RUNBOOK_BASE
from mlops_compiler.plan.alerting.promql import (
    PREDICTION_ENDPOINTS,
    promql_string,
    template_literal,
)

# The order of the rules file and of the dashboard, which the committed projects (and the
# diffs of their users) depend on: the monitor's health first, then each declared check.
ALERTS = (
    *health.ALERTS,
    *drift.ALERTS,
    *performance.ALERTS,
    serving.LATENCY,
    serving.ERROR_RATE,
    *kpis.ALERTS,
    *features.ALERTS,
    serving.LOG_DROPPING,
)
PANELS = (
    *health.PANELS,
    *serving.PANELS,
    *drift.PANELS,
    *performance.PANELS,
    *kpis.PANELS,
    health.NULL_RATE,
)


def alert_rules(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The Prometheus rules file: one group `mlops-<name>` with the always-on alerts and one
    per check the monitor declares."""
    return prometheus.alert_rules(ALERTS, name, monitor)


def rule_tests(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The `promtool test rules` file of `alert_rules`: a firing and a quiet case per alert."""
    return prometheus.rule_tests(ALERTS, name, monitor)


def runbook_entries(name: str, monitor: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(alert, severity, what to check) for each alert the rules file holds, once per name."""
    return prometheus.runbook_entries(ALERTS, name, monitor)


def grafana_dashboard(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """A Grafana dashboard of the live server (request, error, latency and prediction rates)
    and of the monitor's gauges; panels of undeclared checks are left out."""
    return grafana.grafana_dashboard(PANELS, name, monitor)


def alerting_context(name: str, monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The render context's `alerting` entry, as the monitoring templates read it."""
    return {
        "rules": alert_rules(name, monitor),
        "rule_tests": rule_tests(name, monitor),
        "dashboard": grafana_dashboard(name, monitor),
        "provisioning": grafana_provisioning(name),
        "runbook": runbook_entries(name, monitor),
    }


__all__ = [
    "ALERTS",
    "PANELS",
    "PREDICTION_ENDPOINTS",
    "RULES_FILE",
    "RUNBOOK_BASE",
    "alert_rules",
    "alerting_context",
    "dashboard_uid",
    "grafana_dashboard",
    "grafana_provisioning",
    "promql_string",
    "rule_tests",
    "runbook_entries",
    "template_literal",
]

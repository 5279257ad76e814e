"""Automatic rollback (level 2 and above), run by the monitor after its report.

For the champion, and with an A/B test the challenger, the monitor builds the report of the
rows that version served since it took its alias, judges the rollback triggers on it
(rollback/triggers.py) and, when one decides after the grace period, acts: a failing champion
is rolled back to the previous good version (tracking/registry_versions.py), a failing
challenger leaves the split. The servers follow by themselves: they poll the aliases.

What was judged and done is the report's `rollback` section; an action, or a rollback refused
because no version is good, is also an alert-severity violation, so level 3 sends it to the
webhooks and the monitor exits 3. Never rolls back to nothing: with no good version the
champion keeps serving.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlops_runtime.config import ProjectConfig
from mlops_runtime.monitor_report import (
    ArmJudgement,
    MonitorReport,
    RollbackAction,
    RollbackSection,
    TriggerJudgement,
    Violation,
    read_report,
)
from mlops_runtime.project import Project
from mlops_runtime.rollback.triggers import grace, judge
from mlops_runtime.timestamps import iso_millis
from mlops_runtime.tracking import serving_history as history

MONITOR = "monitor"

# The monitor's report of what one version served: (project, version, since, run_id) -> report.
# The monitor stage passes its own window builder, so rollback never imports the stage.
WindowOf = Callable[[Project, str, "float | None", "str | None"], MonitorReport]


def _arms(client: Any, name: str, settings: ProjectConfig) -> list[tuple[str, Any]]:
    from mlops_runtime.tracking.registry import CHALLENGER, CHAMPION, alias_version

    arms = [(CHAMPION, alias_version(client, name, CHAMPION))]
    if settings.serving.ab_test is not None:
        arms.append((CHALLENGER, alias_version(client, name, CHALLENGER)))
    return [(arm, version) for arm, version in arms if version is not None]


def _judging_project(project: Project) -> Project:
    """The project as the per-version reports need it: the live metric computed from the
    first labelled sample (each trigger applies its own min_samples), no webhooks."""
    config = dict(project.config)
    monitor = dict(config.get("monitor") or {})
    if monitor.get("performance"):
        monitor["performance"] = {**monitor["performance"], "min_samples": 1}
    config["monitor"] = monitor
    return dataclasses.replace(project, config=config)


def reusable(report: MonitorReport | Mapping[str, Any], version: str, since: float) -> bool:
    """Whether the window's own report already is this version's: it alone served the whole
    window, which began after it took its alias, and the live metric has a value wherever
    there were labels. The steady state (one champion serving for long) then costs no second
    pass over the log."""
    from datetime import datetime

    report = read_report(report)
    if set(report.served_versions) != {version}:
        return False
    start = report.window.start if report.window else None
    if not start:
        return False
    began = datetime.fromisoformat(str(start).replace("Z", "+00:00")).timestamp()
    status = report.performance.status if report.performance else None
    return since <= began and status != "insufficient_samples"


def _earlier(
    reports: Sequence[MonitorReport], arm: str, version: str, since: float
) -> list[list[TriggerJudgement]]:
    out = []
    for report in reports:
        past = report.rollback.arms.get(arm) if report.rollback else None
        if past is not None and past.version == version and past.since_epoch == since:
            out.append(list(past.judged))
    return out


def evaluate(
    project: Project,
    report: MonitorReport,
    earlier_reports: Sequence[MonitorReport],
    window_of: WindowOf,
    *,
    now: float | None = None,
) -> MonitorReport:
    """Judge and act; returns the report with its `rollback` section and the violations of
    what was done (the report unchanged when the rollback is not automatic).

    `window_of(project, version, since, run_id)` builds the report of the rows `version`
    served since `since` (when the window's own `report` is not already that)."""
    config, settings = project.config, project.settings
    policy = settings.rollback
    triggers = policy.triggers
    if not policy.automatic or not triggers:
        return report
    from mlops_runtime.rollback.stage import model_name
    from mlops_runtime.tracking import registry_versions
    from mlops_runtime.tracking.registry import CHAMPION
    from mlops_runtime.tracking.store import absolute_uri, connect, resolve_tracking_uri

    now = time.time() if now is None else now
    client = connect(config, uri=absolute_uri(resolve_tracking_uri(config), project.root))
    name = model_name(settings)
    # A change killed half made would leave the champion without the tag its window starts at.
    registry_versions.reconcile(client, name, history.history_path(project.root, config))
    labelled = settings.monitor.labels is not None
    judging = _judging_project(project)
    arms: dict[str, ArmJudgement] = {}
    actions: list[RollbackAction] = []
    for arm, version in _arms(client, name, settings):
        ident = str(version.version)
        since = (
            registry_versions.champion_since(version)
            if arm == CHAMPION
            else registry_versions.challenger_since(version)
        )
        window = (
            report
            if reusable(report, ident, since)
            else window_of(judging, ident, since or None, version.run_id)
        )
        judged = judge(window, triggers, _earlier(earlier_reports, arm, ident, since))
        over = grace(window, policy.grace_samples, labelled)
        rows = window.window.rows if window.window else None
        arms[arm] = ArmJudgement(
            version=ident,
            since=iso_millis(since) if since else None,
            since_epoch=since,
            rows=rows,
            grace=over,
            judged=judged,
        )
        deciding = [j for j in judged if j.decides]
        if not deciding or not over.over:
            continue
        why = {
            "trigger": ", ".join(str(j.trigger) for j in deciding),
            "observed": {
                str(j.trigger): {
                    "value": j.value,
                    "samples": j.samples,
                    "fired_in": j.fired_in,
                    "of": j.n,
                }
                for j in deciding
            },
            "report": report.generated_at,
            "window": {"since": arms[arm].since, "rows": rows},
        }
        actions.append(RollbackAction.from_json(_act(project, client, name, arm, ident, why)))
    section = RollbackSection(arms=arms, actions=actions)
    return report.replace(rollback=section).with_violations(_violations(section))


def _act(
    project: Project, client: Any, name: str, arm: str, version: str, why: Mapping[str, Any]
) -> dict[str, Any]:
    from mlops_runtime.rollback.stage import roll_back
    from mlops_runtime.tracking import registry_versions
    from mlops_runtime.tracking.registry import CHAMPION

    if arm != CHAMPION:
        change = registry_versions.remove_challenger(
            client,
            name,
            history.history_path(project.root, project.config),
            expect=version,
            why=why,
            by=MONITOR,
        )
        return {"arm": arm, "changed": change.changed, **change.entry}
    try:
        change = roll_back(project, why=why, by=MONITOR, expect_from=version)
    except registry_versions.RollbackRefused as refused:
        return {
            "arm": arm,
            "changed": False,
            "event": history.ROLLBACK_REFUSED,
            "from": version,
            "to": None,
            "why": {**why, "refused": str(refused)},
        }
    return {"arm": arm, "changed": change.changed, **change.entry}


def _violations(section: RollbackSection) -> list[Violation]:
    """An alert for each change of who serves, and for a rollback refused."""
    out = []
    for action in section.actions:
        event = action.event
        trigger = (action.why or {}).get("trigger")
        if event == history.ROLLED_BACK:
            text = f"rolled the champion back from version {action.from_version} to {action.to_version}: {trigger}"
        elif event == history.CHALLENGER_REMOVED:
            text = f"removed challenger version {action.from_version} from the A/B split: {trigger}"
        elif event == history.ROLLBACK_REFUSED:
            text = (
                f"champion version {action.from_version} failed {trigger} but stays: "
                f"{(action.why or {}).get('refused')}"
            )
        else:
            continue  # already done by another monitor: nothing new to tell
        out.append(
            Violation(
                check="rollback_refused" if event == history.ROLLBACK_REFUSED else "rollback",
                feature=None,
                observed=action.from_version,
                threshold=action.to_version,
                severity="alert",
                description=text,
            )
        )
    return out

"""Retraining from the monitor (level 3): on declared triggers, at most once per cooldown.

After each report the monitor asks whether a trigger fired in k of the last n reports
(`drift`: the dataset drifted; `performance`: the live metric passed its bound; `schedule`:
every run). If so, and the last retraining is older than the cooldown, it runs the project's
own train stage on the configured fresh data: the data-contract gate, the model gate, the
vs-champion gate and the spec's promotion policy decide exactly as in a manual run, so a
retrained model becomes champion only when the spec says it may. Every step is a line of the
append-only audit log (what, why, which versions, when).

Two monitors started at once never train twice: the decision is taken again, cooldown
included, under an exclusive lock on the audit log's lock file; the one that does not get it
records that it stood aside.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_runtime.config import RetrainConfig
from mlops_runtime.monitor_report import MonitorReport, read_report
from mlops_runtime.project import Project

_REGISTERED = re.compile(r"registered version (\S+) as (\w+)")
TRIGGER_CHECKS = {"drift": {"dataset_drift"}, "performance": {"performance"}}


def fired(report: MonitorReport | Mapping[str, Any], trigger: str) -> bool:
    if trigger == "schedule":
        return True
    checks = {v.check for v in read_report(report).violations}
    return bool(checks & TRIGGER_CHECKS.get(trigger, set()))


def triggers(
    history: Sequence[MonitorReport | Mapping[str, Any]],
    settings: RetrainConfig | Mapping[str, Any],
) -> dict[str, dict[str, int]]:
    """Triggers that fired in at least k of the last n reports (the newest last). `settings`:
    the project's `retrain` settings (or that section of a config.json, as a tool reads it)."""
    if isinstance(settings, RetrainConfig):
        k, n, on = settings.windows.k, settings.windows.n, settings.on
    else:
        windows = settings.get("windows") or {}
        k, n = int(windows.get("k", 1)), int(windows.get("n", 1))
        on = list(settings.get("on") or [])
    recent = list(history)[-n:]
    out = {}
    for trigger in on:
        count = sum(1 for report in recent if fired(report, trigger))
        if count >= k:
            out[trigger] = {"fired": count, "of": len(recent), "k": k, "n": n}
    return out


def audit_entries(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                yield entry


def append_audit(path: Path, entry: Mapping[str, Any]) -> None:
    """One line, appended in a single write so concurrent writers never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _last_retraining(path: Path) -> float | None:
    started = [
        e.get("ts_epoch") for e in audit_entries(path) if e.get("event") == "retrain_started"
    ]
    return max((float(t) for t in started if t is not None), default=None)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _entry(event: str, now: float, **fields: Any) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {"event": event, "ts": stamp, "ts_epoch": now, "by": "monitor", **fields}


def maybe_retrain(
    project: Project,
    report: MonitorReport,
    history: Sequence[MonitorReport],
    *,
    now: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """Run the train stage when a trigger fired and the cooldown is over; the audit entry of
    what happened, or None when nothing fired."""
    settings = project.settings.retrain
    if not settings.enabled:
        return None
    now = time.time() if now is None else now
    why = triggers(history, settings)
    if not why:
        return None
    audit = project.root / settings.audit_log
    served = dict(report.served_versions)
    context = {"why": why, "report": report.generated_at, "served_versions": served}
    with _exclusive(audit.with_suffix(".lock")) as mine:
        if not mine:
            entry = _entry(
                "retrain_skipped", now, reason="another monitor is retraining", **context
            )
            append_audit(audit, entry)
            return entry
        last = _last_retraining(audit)
        cooldown = float(settings.cooldown_s)
        if last is not None and now - last < cooldown:
            entry = _entry(
                "retrain_skipped",
                now,
                reason=f"cooldown: last retraining {now - last:.0f} s ago, cooldown {cooldown:.0f} s",
                **context,
            )
            append_audit(audit, entry)
            return entry
        append_audit(audit, _entry("retrain_started", now, **context))
        entry = _train(project, settings, environ, now, context)
        append_audit(audit, entry)
        return entry


def _train(
    project: Project,
    settings: RetrainConfig,
    environ: Mapping[str, str] | None,
    now: float,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    env = dict(os.environ if environ is None else environ)
    # A version this retraining promotes was promoted by the monitor, whoever runs it.
    env["MLOPS_ACTOR"] = "monitor"
    data = settings.data
    path_env = project.settings.data.path_env
    if data:
        env[path_env] = str(project.root / data)
    # What the audit names is what training read: the override, when the environment has one.
    data = data or env.get(path_env) or project.settings.data.path
    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "train"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    registered = _REGISTERED.search(result.stdout)
    outcome = {0: "registered", 3: "stopped_by_data_contract", 4: "stopped_by_model_gate"}
    fields: dict[str, Any] = {
        **context,
        "exit_code": result.returncode,
        "outcome": outcome.get(result.returncode, "failed"),
        "data": data,
        "stage": "retrain",
        "message": output.splitlines()[0][:500] if output else "",
    }
    if registered is not None:
        fields["version"], fields["alias"] = registered.group(1), registered.group(2)
    event = "retrain_finished" if result.returncode == 0 else "retrain_failed"
    return _entry(event, time.time() if now is None else max(now, time.time()), **fields)

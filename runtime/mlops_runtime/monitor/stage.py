"""`python -m mlops_runtime monitor`: one monitoring run over the prediction log's window.

Writes reports/monitor/report-<time>.json (and latest.json), dashboard.html (whose path it
prints: on stdout after the summary, on stderr with --json, whose stdout is the report alone),
the Prometheus textfile, and at level 3 sends the webhook alerts. Exit codes (docs/runtime-exit-codes.md):
0 ok, 1 warning, 3 alert, 2 configuration or usage error. Bad input (an empty window, a
corrupt log file, a missing or older reference, a named labels file that is absent or
unusable, labels matching nothing) is a problem in the report, never a traceback. The monitor never changes a model; from level 2 it moves the
registry's aliases when a rollback trigger decides (rollback/automatic.py), and at level 3 it
may retrain (retraining.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from mlops_runtime.config import DriftConfig
from mlops_runtime.monitor_report import (
    FeatureFreshness,
    Grace,
    MonitorReport,
    Problem,
    Window,
    read_report,
)
from mlops_runtime.project import Project, ProjectError, Stopped, stop_on_signals

EXIT_USAGE = 2
HISTORY = 50  # past reports the dashboard's time series show


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops_runtime monitor")
    parser.add_argument("--window", help="the last duration of the log: 30m, 1h, 7d")
    parser.add_argument("--window-records", type=int, help="the last N records instead")
    parser.add_argument("--end", help="end of the window, ISO 8601 UTC (default: now)")
    parser.add_argument("--labels", type=Path, help="labels file instead of the spec's")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON document (the dashboard's path goes to stderr)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="skip dashboard.html")
    return parser


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h or 7d")
    return float(number) * units[unit]


def _end(text: str | None) -> float | None:
    if text is None:
        return None
    from datetime import datetime

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def load_reference(
    root: Path, run_id: str | None, *, downloaded: bool = False
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The reference profile of the run that served the newest requests (reports/reference/
    <run id>.json, written when it was trained), else the latest profile trained here, else
    the serving run's profile from the tracking store."""
    from mlops_runtime.train.reference_profile import PROFILE_PATH, PROFILE_VERSION, RUN_PROFILES

    candidates = []
    if run_id:
        candidates.append(root / RUN_PROFILES / f"{run_id}.json")
    candidates.append(root / PROFILE_PATH)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            profile = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            return None, {
                "status": "unreadable",
                "path": str(path.relative_to(root)),
                "message": str(exc),
            }
        version = profile.get("version") if isinstance(profile, dict) else None
        status = {
            "path": str(path.relative_to(root)),
            "version": version,
            "run_id": profile.get("run_id"),
        }
        if version != PROFILE_VERSION:
            message = f"reference profile version {version}, this runtime reads {PROFILE_VERSION}: retrain to refresh it"
            return None, {**status, "status": "unsupported", "message": message}
        if run_id and profile.get("run_id") not in (None, run_id):
            status["served_run_id"] = run_id  # the serving run's own profile is not here
        return profile, {**status, "status": "ok", "rows": profile.get("rows")}
    if run_id and not downloaded:
        # Not trained on this machine: the serving run's profile is in the tracking store.
        from mlops_runtime.monitor.reference_download import download_run_profile
        from mlops_runtime.project import load_project

        why = download_run_profile(root, load_project(root).config, run_id, candidates[0])
        if why is None:
            return load_reference(root, run_id, downloaded=True)
        message = f"no reference profile here, nor in the tracking store ({why}): train first"
        return None, {"status": "missing", "message": message}
    return None, {"status": "missing", "message": "no reference profile: train the model first"}


def run_monitor(
    project: Project,
    args: argparse.Namespace,
    *,
    now: float | None = None,
    environ: Mapping[str, str] | None = None,
    version: str | None = None,
    since: float | None = None,
    run_id: str | None = None,
) -> MonitorReport:
    """The report of the window; with `version`, of the rows that version served there since
    `since`, judged against the reference of its own training run `run_id`."""
    from mlops_runtime.features.columns import feature_columns, feature_split
    from mlops_runtime.monitor import labels as late_labels
    from mlops_runtime.monitor.checks import Violations, build_monitor_report
    from mlops_runtime.monitor.prediction_window import (
        WindowScan,
        choose_window,
        log_files,
        partitions,
        restrict,
    )
    from mlops_runtime.monitor.window_summary import WindowSummary

    env = os.environ if environ is None else environ
    now = time.time() if now is None else now
    config, settings, root = project.config, project.settings, project.root
    monitor = settings.monitor
    records = args.window_records if args.window_records is not None else monitor.window.records
    duration = _duration(args.window) if args.window else monitor.window.duration_s
    if args.window and args.window_records is None:
        records = None
    log_dir = Path(env.get("MLOPS_PREDICTION_LOG_DIR") or settings.serving.prediction_log.dir)
    log_dir = log_dir if log_dir.is_absolute() else root / log_dir
    problems: list[dict[str, Any]] = []
    scan = WindowScan()
    files = log_files(log_dir)
    start, end = choose_window(
        files, scan, duration_s=duration, records=records, end=_end(args.end) or now
    )
    if since is not None:
        start = max(start, since)
    reference: dict[str, Any] | None = None
    reference_status: dict[str, Any] = {"status": "not_used"}
    if monitor.reference:
        served_run = run_id if version is not None else _newest_run(scan)
        reference, reference_status = load_reference(root, served_run)
        if reference is None:
            problems.append(
                {
                    "status": f"reference_{reference_status['status']}",
                    "message": reference_status.get("message", ""),
                }
            )
    numeric, categorical = feature_split(config, project.contract)
    keep = {name for name in numeric if _exact_ks(monitor.drift, name, reference)}
    labels_cfg = monitor.labels
    wants_labels = labels_cfg is not None and (
        monitor.performance is not None or any(k.kind.startswith("outcome_") for k in monitor.kpis)
    )
    summary = WindowSummary(
        task=settings.model.task,
        features=feature_columns(config),
        categorical=set(categorical),
        contract=project.contract,
        reference=reference,
        keep_values=keep,
        keep_pairs=bool(wants_labels),
    )
    for part in partitions(scan, start, end):
        mine = part if version is None else restrict(part, version)
        if mine is not None:
            summary.add(mine)
    if reference is not None:
        # The profile names its training run, not the registered version: the log says which
        # version served that run's model (None when it served nothing in the window).
        ref_run = reference_status.get("run_id")
        reference_status["model_version"] = summary.version_of_run(ref_run) or (
            version if version is not None and ref_run == run_id else None
        )
    for bad in scan.corrupt_files:
        problems.append({"status": "corrupt_log_file", "message": bad})
    if scan.corrupt_lines:
        problems.append(
            {
                "status": "corrupt_log_lines",
                "message": f"{scan.corrupt_lines} lines of the log are not prediction records "
                "(not JSON or not UTF-8, not an object, no time in `ts`, or a field of the wrong "
                "type) and were skipped",
            }
        )
    if not summary.rows and not summary.errors and not summary.client_errors:
        problems.append(
            {
                "status": "empty_window",
                "message": f"no predictions in the window ({len(files)} log files in {log_dir.name}/)",
            }
        )
    performance = None
    outcomes = None
    target = settings.data.target if monitor.performance is not None else None
    if labels_cfg is not None:
        path = Path(args.labels or (root / labels_cfg.path))
        join_key = labels_cfg.join_key
    if labels_cfg is not None and not wants_labels:
        # Named but nothing here reads it: still say when it is not there.
        missing = late_labels.check_labels_file(path, join_key, None)
        if missing is not None:
            problems.append(missing)
    if wants_labels and labels_cfg is not None:
        frame, problem = late_labels.read_labels(path, join_key, target)
        why = None if problem is None else problem["message"]
        if problem is not None:
            problems.append(problem)
        joined = late_labels.join(summary.labelled_frame(), frame)
        if frame is not None and joined is not None and not len(joined) and summary.rows:
            problems.append(
                {
                    "status": "labels_unmatched",
                    "message": f"none of the {len(frame)} labels of {path.name} matches a "
                    f"request id ({join_key!r}, and `row`) of the window's {summary.rows} "
                    "predictions",
                }
            )
        outcomes = joined
        if monitor.performance is not None and monitor.reference:
            classes = list(
                ((reference or {}).get("predictions") or {}).get("class_frequencies", {})
            )
            performance = late_labels.live_metric(
                joined,
                target=settings.data.target,
                task=settings.model.task,
                settings=monitor.performance,
                baseline=(reference or {}).get("baseline_metrics", {}),
                classes=classes,
                labels_problem=why,
            )
    violations = Violations()
    if performance is not None and performance["status"] == "ok":
        _performance_violation(performance, violations)
    freshness = None
    if version is None:
        # Read from the store, not the log: judged the same with or without traffic. The
        # per-version windows of the rollback triggers share the one store, so skip it there.
        from mlops_runtime.monitor.feature_freshness import check_freshness

        freshness = check_freshness(config, root, now=now, violations=violations, problems=problems)
    window = {
        "kind": "records" if records is not None else "duration",
        "duration_s": None if records is not None else duration,
        "records": records,
        "start_epoch": summary.start if records is not None else start,
        "end_epoch": end if records is None else summary.end,
    }
    report = build_monitor_report(
        settings,
        summary,
        window=window,
        reference_status=reference_status,
        performance=performance,
        outcomes=outcomes,
        problems=problems,
        violations=violations,
        now=now,
    )
    if freshness is not None:
        report = report.replace(feature_freshness=FeatureFreshness.from_json(freshness))
    return report.replace(gates=_gates(root, summary.rejected, report))


def _gates(root: Path, rejected: int, report: MonitorReport) -> dict[str, Any]:
    """What the one contract stopped at each stage: the last training run's gate, the serving
    door in this window, the monitor's window; retraining adds its own when it runs."""
    try:
        training = json.loads((root / "reports/contract_report.json").read_bytes())
        trained = {k: training.get(k) for k in ("ok", "rows", "failed_checks", "source")}
    except (OSError, ValueError):
        trained = {"ok": None, "status": "not_run"}
    return {
        "training": trained,
        "serving": {"rejected_requests": rejected},
        "monitor": {"violations": report.data_quality.violations if report.data_quality else None},
    }


def _performance_violation(performance: Mapping[str, Any], violations: Any) -> None:
    value, low, high = performance["value"], performance.get("min"), performance.get("max")
    if low is not None and value < low:
        bound = low
    elif high is not None and value > high:
        bound = high
    else:
        return
    violations.add(
        "performance",
        None,
        value,
        bound,
        "alert",
        f"live {performance['metric']} {value:.4g} on {performance['labelled']} labelled predictions is past {bound:g} (baseline {performance.get('baseline')})",
    )


def _newest_run(scan: Any) -> str | None:
    """The run id of the newest logged prediction: the model serving now."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_runtime.monitor.prediction_window import parse_record

    for path in reversed(scan.files):
        if path in scan.bad_files:
            continue
        try:
            if path.suffix == ".parquet":
                handle = pq.ParquetFile(path)
                last = handle.read_row_group(handle.num_row_groups - 1, columns=["run_id"])
                column = last.column("run_id").to_pylist()
            else:
                # Through the window's gate: a line that is no record names no run (and was
                # counted as corrupt when the window was read).
                parsed = (parse_record(line) for line in path.read_bytes().splitlines()[-50:])
                column = [record["run_id"] for record in parsed if record is not None]
        except (OSError, ValueError, KeyError, IndexError, pa.ArrowException):
            continue
        for value in reversed(column):
            if value:
                return str(value)
    return None


def _exact_ks(drift: DriftConfig | None, name: str, reference: Mapping[str, Any] | None) -> bool:
    if reference is None or drift is None:
        return False
    column = drift.columns.get(name)
    method = (column.method if column is not None else None) or drift.method
    if method == "ks":
        return True
    from mlops_runtime.monitor.drift import SMALL_REFERENCE_ROWS

    return method == "auto" and int(reference.get("rows", 0)) <= SMALL_REFERENCE_ROWS


@dataclass(frozen=True)
class Outputs:
    report: Path
    dashboard: Path | None  # None with --no-dashboard


def write_outputs(project: Project, report: MonitorReport, now: float, dashboard: bool) -> Outputs:
    from mlops_runtime.monitor import prometheus_textfile

    monitor = project.settings.monitor
    folder = project.root / monitor.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    data = _report_json(report) + "\n"
    path = folder / f"report-{stamp}.json"
    _atomic(path, data, "report-*.json")
    _atomic(folder / "latest.json", data)
    # Replaced atomically, so node-exporter's textfile collector never reads half of it.
    textfile = project.root / monitor.textfile
    textfile.parent.mkdir(parents=True, exist_ok=True)
    _atomic(textfile, prometheus_textfile.render(report, now))
    if not dashboard:
        return Outputs(path, None)
    from mlops_runtime.monitor.dashboard import render_dashboard

    page = folder / "dashboard.html"
    _atomic(page, render_dashboard(report, read_history(folder)))
    return Outputs(path, page)


def reports_dir(project: Project) -> Path:
    return project.root / project.settings.monitor.reports_dir


def read_history(folder: Path) -> list[MonitorReport]:
    """Past reports, oldest first (their names sort by time), of any version."""
    history = []
    for old in sorted(folder.glob("report-*.json"))[-HISTORY:]:
        try:
            history.append(read_report(json.loads(old.read_bytes())))
        except (OSError, ValueError):
            continue
    return history


def _report_json(report: MonitorReport) -> str:
    """The report as written: one JSON document, keys sorted."""
    return json.dumps(report.to_json(), indent=1, sort_keys=True, allow_nan=False, default=str)


def _atomic(path: Path, text: str, family: str | None = None) -> None:
    """Replace `path` whole: a reader (the dashboard's browser, node-exporter, the next run)
    sees the old file or the new one, and so does a run killed in the middle of it.
    `family`: the glob of the names this file's earlier runs wrote (report-*.json)."""
    _sweep_partials(path.parent, family or path.name)
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        # On disk before the rename, so a machine that loses power keeps one of the two too.
        os.fsync(handle.fileno())
    tmp.replace(path)


# The writer's host is in a partial file's name: a pid means something only on its own host
# (a reports folder can be a volume that monitors in several containers write).
_HOST = socket.gethostname().replace(".", "_").replace("/", "_") or "host"
# A partial file of another host is a killed run's once it is this old: a write takes
# milliseconds.
ABANDONED_S = 3600.0


def _sweep_partials(folder: Path, family: str) -> None:
    """Remove what runs killed before their rename left: `.<name>.<host>.<pid>.tmp` of a
    process of this host that is gone, or of another host long ago. A running monitor's own
    partial file is left to it."""
    now = time.time()
    for partial in folder.glob(f".{family}.*.tmp"):
        _, host, pid = partial.name[: -len(".tmp")].rsplit(".", 2)
        try:
            if host == _HOST and pid.isdigit():
                stale = not _alive(int(pid))
            else:
                stale = now - partial.stat().st_mtime > ABANDONED_S
            if stale:
                partial.unlink(missing_ok=True)
        except OSError:
            continue  # gone already, or not ours to remove: the next run tries again


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def _alert(project: Project, report: MonitorReport) -> None:
    alerts = project.settings.alerts
    if not alerts:
        return
    from mlops_runtime.monitor.alerts import send_alerts

    state = reports_dir(project) / "alerts-state.json"
    send_alerts(report, alerts, project.settings.alerting, state)


def main(argv: list[str], project: Project) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.window:
            _duration(args.window)
        _end(args.end)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        project.settings  # noqa: B018 - config.json read, and refused here if incomplete
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with stop_on_signals():
            return _monitor(project, args)
    except Stopped as stop:
        # Every file the monitor writes is replaced whole, so a stop leaves each as it was
        # or as the new run wrote it; the next run starts from what is there.
        print(f"{project.settings.name}: monitor stopped by {stop.name}", file=sys.stderr)
        return stop.exit_code


def _monitor(project: Project, args: argparse.Namespace) -> int:
    now = time.time()
    report = run_monitor(project, args, now=now)
    earlier = read_history(reports_dir(project))
    report = _roll_back_if_needed(project, report, earlier, args, now)
    from mlops_runtime.monitor.retraining import maybe_retrain

    retrained = maybe_retrain(project, report, [*earlier, report])
    if retrained is not None:
        gates = dict(report.gates or {})
        if "outcome" in retrained:
            gates["retraining"] = {
                "ok": retrained["outcome"] == "registered",
                "outcome": retrained["outcome"],
                "data": retrained.get("data"),
            }
        report = report.replace(retraining=retrained, gates=gates)
    outputs = write_outputs(project, report, now, not args.no_dashboard)
    _alert(project, report)
    if args.json:
        print(_report_json(report))
    else:
        print(_summary(report, outputs.report.relative_to(project.root)))
    if outputs.dashboard is not None:
        # Absolute: `mlops run` runs the stage in the project's folder, not the user's. With
        # --json, stdout is the report alone.
        print(
            f"dashboard: {outputs.dashboard.resolve()}",
            file=sys.stderr if args.json else sys.stdout,
        )
    return int(report.exit_code or 0)


def _roll_back_if_needed(
    project: Project,
    report: MonitorReport,
    earlier: list[MonitorReport],
    args: argparse.Namespace,
    now: float,
) -> MonitorReport:
    """Automatic rollback (level 2+), before retraining: serving the previous good model again
    is the urgent part. A registry that cannot be reached is a problem in the report, not a
    crash of the monitor."""
    from mlops_runtime.rollback.automatic import evaluate

    try:
        return evaluate(
            project,
            report,
            earlier,
            lambda judging, version, since, run_id: run_monitor(
                judging, args, now=now, version=version, since=since, run_id=run_id
            ),
            now=now,
        )
    except Exception as exc:  # noqa: BLE001 - reported, and the next run tries again
        message = f"{type(exc).__name__}: {exc}"[:500]
        return report.with_problem(Problem(status="rollback_not_evaluated", message=message))


def _summary(report: MonitorReport, path: Path) -> str:
    window = report.window or Window()
    requests = report.traffic.requests if report.traffic else None
    lines = [
        f"monitor {report.name}: {report.status} ({window.rows} predictions, "
        f"{requests} requests from {window.start} to {window.end}) -> {path}"
    ]
    for v in report.violations:
        where = f" {v.feature}" if v.feature else ""
        lines.append(f"  {v.severity}: {v.check}{where}: {v.description}")
    for p in report.problems:
        lines.append(f"  note: {p.status}: {p.message}")
    from mlops_runtime.monitor.feature_freshness import age_text

    views = report.feature_freshness.views if report.feature_freshness else {}
    for view, verdict in views.items():
        age, bound = verdict.age_s, verdict.max_age_s
        lines.append(
            f"  freshness: {view}: {verdict.status}"
            + (f", newest {verdict.newest}, {age_text(age)} old" if age is not None else "")
            + (f" (bound {age_text(bound)})" if bound is not None else "")
        )
    arms = report.rollback.arms if report.rollback else {}
    for arm, judged in arms.items():
        fired = [str(j.trigger) for j in judged.judged if j.fired]
        grace = judged.grace or Grace()
        lines.append(
            f"  rollback: {arm} version {judged.version}: "
            f"{'fired: ' + ', '.join(fired) if fired else 'no trigger fired'}"
            f"{'' if grace.over else ' (grace period: ' + str(grace.samples) + ' of ' + str(grace.needed) + ' samples)'}"
        )
    retrained = report.retraining
    if retrained is not None:
        detail = retrained.get("reason") or retrained.get("outcome")
        lines.append(f"  retraining: {retrained['event']}: {detail} (why: {retrained['why']})")
    return "\n".join(lines)

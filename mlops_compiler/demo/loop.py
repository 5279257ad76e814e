"""The loop, step by step, on a generated project: what each step runs and what it prints.

Which steps run is read from the project's own config.json (the level table decided it):
registry or local model file, late labels, automatic rollback, drift, retraining, alerts.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_compiler.demo import rows
from mlops_compiler.demo.console import Console
from mlops_compiler.demo.example import copy_example, prepare_workdir
from mlops_compiler.demo.processes import DemoError, Server, Stages, WebhookReceiver
from mlops_compiler.demo.traffic import Answer, Phase, Traffic
from mlops_compiler.errors import UsageError, display_path

_REGISTERED = re.compile(r"registered version (\S+) as (\w+)")
_ROLLED_BACK = re.compile(r"rolled back from (\S+) to (\S+)")
# Variables of the user's shell that would point the demo's stages somewhere else.
_UNSET = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_TRAIN_DATA", "PYTHONPATH")


@dataclass(frozen=True)
class Sizes:
    """Requests per phase: enough for each check's minimum samples, fewer with --fast."""

    healthy: int
    degraded: int
    shifted: int

    @classmethod
    def of(cls, config: Mapping[str, Any], fast: bool) -> Sizes:
        monitor = config.get("monitor") or {}
        rollback = config.get("rollback") or {}
        floor = int(monitor.get("min_rows", 100))
        grace = int(rollback.get("grace_samples", 0)) if rollback.get("automatic") else 0
        samples = max([int(t.get("min_samples", 0)) for t in rollback.get("triggers") or []] or [0])
        scale = 1 if fast else 3
        healthy = max(floor, 100) * 2 * scale
        return cls(healthy, max(healthy, grace + samples + 50) * scale, max(floor, 150) * scale)


class Demo:
    def __init__(self, spec: Path, workdir: Path, fast: bool, python: str, console: Console):
        self.spec = spec
        self.workdir = workdir
        self.fast = fast
        self.python = python
        self.say = console.say
        self.step = console.step
        self.console = console
        self.cleanup: list[Callable[[], None]] = []

    # The loop -------------------------------------------------------------------------------

    def run(self) -> None:
        project = self.build()
        config = json.loads((project / "config.json").read_text(encoding="utf-8"))
        self.config = config
        self.tracked = bool((config.get("training") or {}).get("tracking", True))
        self.sizes = Sizes.of(config, self.fast)
        data = project / config["data"]["path"]
        self.table = rows.read_table(data, project / "contract.json", config["data"]["target"])
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        # A second between alias polls, so the server follows each change within the step.
        env["MLOPS_RELOAD_INTERVAL_S"] = "1"
        if self.tracked:  # never the user's tracking server: a registry inside the demo
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{(project / 'mlruns.db').resolve()}"
        self.receiver = self._alerts(config, env)
        self.stages = Stages(self.python, project, self.workdir / "logs", env)

        first = self.train("train v1")
        server = Server(self.stages)
        self.cleanup.append(server.close)
        with self.step("serve") as step:
            server.start()
            step.done(f"{config['name']} on {server.url} (prediction log, /metrics)")
        traffic = Traffic(server.port, Phase("healthy", self.table.records()), pause_s=0.003)
        self.cleanup.append(traffic.stop)
        self.traffic = traffic.start()
        self.cut = time.time()
        self.answered_at_cut = 0
        self.send("healthy", self.sizes.healthy)
        labels = self.labels()
        self.monitor("monitor (healthy)", self.sizes.healthy, labels)

        second = self.worse_model()
        if second is not None:
            self.send("degraded", self.sizes.degraded)
            labels = self.labels()
            self.fall_back(first, labels)

        if (config.get("monitor") or {}).get("drift"):
            self.world_shifts(labels)
        self.finish(project, server)

    def build(self) -> Path:
        from mlops_compiler.pipeline import build, compile_specs

        with self.step("build") as step:
            out = self.workdir / "generated"
            compiled = compile_specs([self.spec], out)
            if len(compiled) != 1:
                raise UsageError("mlops demo takes exactly one spec")
            item = compiled[0]
            if "feature_store" in item.plan.context["config"]:
                raise UsageError(
                    f"{display_path(self.spec)}: mlops demo does not run specs with a feature "
                    "store yet (its requests need a materialised online store)"
                )
            if "serve" not in item.plan.commands or "monitor" not in item.plan.commands:
                raise UsageError(f"{display_path(self.spec)}: the level emits no serve/monitor")
            build(compiled)
            step.done(
                f"{len(item.files)} files in {display_path(item.plan.out_dir)}/ "
                f"(level {item.plan.level}: {', '.join(item.plan.commands)})"
            )
        return item.plan.out_dir

    def train(self, name: str, data: Path | None = None, ok: tuple[int, ...] = (0,)) -> str | None:
        """The train stage; the version it made serve, or None when its gate refused it."""
        with self.step(name) as step:
            extra = (
                {self.config["data"].get("path_env", "MLOPS_TRAIN_DATA"): str(data)} if data else {}
            )
            run = self.stages.run("train", ok=ok, **extra)
            metrics = next(
                (ln.strip() for ln in run.stdout.splitlines() if ln.strip().startswith("metrics:")),
                "",
            )
            if run.returncode != 0:
                why = (run.stderr.strip().splitlines() or ["refused"])[0]
                step.done(f"refused by its gate (exit {run.returncode}): {why}")
                return None
            if not self.tracked:
                version = self._local_version()
                step.done(f"saved the model in model/ as local version {version}; {metrics}")
                return version
            found = _REGISTERED.search(run.stdout)
            if found is None:
                raise DemoError(f"train printed no registered version:\n{run.tail()}")
            version, alias = found.groups()
            step.done(f"registered version {version} as {alias}; {metrics}")
            return version if alias == "champion" else None

    def send(self, phase: str, count: int) -> None:
        """Wait for `count` more answers in `phase`; the moment they are in is the end of the
        next monitor window (traffic goes on meanwhile, as it would)."""
        with self.step(f"traffic ({phase})") as step:
            start = self.traffic.count(phase)
            step.track(lambda: (self.traffic.count(phase) - start, count))
            if not self.traffic.wait(phase, start + count, 120 + count / 5):
                raise DemoError(
                    f"the server answered {self.traffic.count(phase) - start} of {count} "
                    f"requests; see {display_path(self.workdir / 'logs' / 'serve.log')}"
                )
            self.cut = time.time()
            self.answered_at_cut = len(self.traffic.answers())
            answers = self.traffic.answers(phase)[start:]
            by = sorted({a.version for a in answers})
            failed = len(self.traffic.failures)
            step.done(
                f"{len(answers)} requests answered by version {', '.join(by)} "
                f"({len(answers) / max(step.elapsed, 1e-9):.0f}/s), {failed} failed so far"
            )

    def labels(self) -> Path | None:
        """The true labels of every request answered so far, arriving late, keyed by the
        request id each answer carried."""
        settings = (self.config.get("monitor") or {}).get("labels")
        if not settings:
            return None
        with self.step("late labels") as step:
            declared = self.stages.project / settings["path"]
            path = (
                declared
                if self.spec.parent.resolve() == self.workdir.resolve()
                else self.workdir / "labels.csv"
            )
            answered = [a for a in self.answered_by_cut() if a.phase != "shifted"]
            rows.write_labels(
                path,
                settings["join_key"],
                self.table.target,
                ((a.request_id, self.table.truth(a.row)) for a in answered),
            )
            step.done(
                f"{len(answered)} true labels, by {settings['join_key']}, in {display_path(path)}"
            )
        return path

    def monitor(self, name: str, window: int, labels: Path | None, **env: str) -> dict[str, Any]:
        """The monitor over the last `window` requests before the last traffic step ended."""
        with self.step(name) as step:
            time.sleep(1.2)  # the prediction log's writer flushes within a second
            args = ["--json", "--window-records", str(window), "--end", _iso(self.cut)]
            if labels is not None:
                args += ["--labels", str(labels.resolve())]
            run = self.stages.run("monitor", *args, ok=(0, 1, 3), **env)
            report: dict[str, Any] = json.loads(run.stdout)
            step.done(_verdict(report))
        return report

    def worse_model(self) -> str | None:
        corrupt, feature = rows.corrupted(self.table, self.workdir / "data" / "worse-labels.csv")
        second = self.train("train v2 (worse)", corrupt, ok=(0, 3, 4))
        if second is None:
            return None
        passed = (
            "it passed its gate on its own held-out split"
            if self.tracked
            else "level 0 trains with no gate"
        )
        with self.step("server follows") as step:
            self.traffic.switch(Phase("degraded", self.table.records()))
            self.follow("degraded", second)
            step.done(
                f"version {second} serves (trained with the labels of the largest {feature} "
                f"flipped; {passed})"
            )
        return second

    def fall_back(self, good: str | None, labels: Path | None) -> None:
        window = sum(1 for a in self.answered_by_cut() if a.phase == "degraded")
        report = self.monitor("monitor (degraded)", window, labels)
        if self.receiver is not None and report.get("status") == "alert":
            with self.step("alert") as step:
                deadline = time.monotonic() + 10
                while not self.receiver.received and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not self.receiver.received:
                    raise DemoError("the monitor raised an alert but no webhook arrived")
                step.done(f"webhook received: {_alert_text(self.receiver.received[-1])}")
        actions = (report.get("rollback") or {}).get("actions") or []
        rolled = next((a for a in actions if a.get("event") == "rolled_back"), None)
        if rolled is not None:
            target = str(rolled["to"])
            with self.step("rollback (monitor)") as step:
                step.done(f"champion {rolled['from']} -> {target}: {_why(rolled)}")
        else:
            with self.step("rollback (by hand)") as step:
                # Below level 2 nothing rolls back by itself: the operator does, as here.
                run = self.stages.run("rollback", "--reason", "demo: the new model is worse")
                found = _ROLLED_BACK.search(run.stdout)
                target = found.group(2) if found else (good or "")
                step.done(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "done")
        with self.step("server follows") as step:
            before = len(self.traffic.answers())
            started = time.monotonic()
            self.traffic.switch(Phase("restored", self.table.records()))
            self.follow("restored", target)
            step.done(
                f"version {target} serves again {time.monotonic() - started:.1f} s later; "
                f"{len(self.traffic.failures)} of {before} requests failed"
            )

    def world_shifts(self, labels: Path | None) -> None:
        requests, training = rows.shifted(self.table)
        fresh = rows.write_csv(self.workdir / "data" / "fresh.csv", self.table.header, training)
        retrain = self.config.get("retrain") or {}
        windows = (retrain.get("windows") or {}) if retrain.get("enabled") else {}
        runs = max(1, int(windows.get("k", 1))) if retrain.get("enabled") else 1
        self.traffic.switch(Phase("shifted", requests))
        path_env = self.config["data"].get("path_env", "MLOPS_TRAIN_DATA")
        for n in range(runs):
            self.send("shifted", self.sizes.shifted)
            # Retraining, when it fires, reads the shifted world's rows with their labels.
            report = self.monitor(
                f"monitor (shifted {n + 1}/{runs})",
                self.sizes.shifted,
                labels,
                **{path_env: str(fresh)},
            )
        retrained = report.get("retraining")
        if retrained and retrained.get("alias") == "champion":
            version = str(retrained["version"])
            with self.step("server follows") as step:
                self.follow("shifted", version)
                step.done(f"retrained version {version} (on the shifted data) serves")

    def finish(self, project: Path, server: Server) -> None:
        self.traffic.stop()
        answers = self.traffic.answers()
        failures = self.traffic.failures
        by_version: dict[str, int] = {}
        for a in answers:
            by_version[a.version] = by_version.get(a.version, 0) + 1
        with self.step("stop") as step:
            server.close()
            split = ", ".join(
                f"{'v' if v.isdigit() else ''}{v}: {n}" for v, n in sorted(by_version.items())
            )
            step.done(f"{len(answers)} requests ({split}), {len(failures)} failed; server stopped")
        history = self.stages.run("history")
        self.say("\nserving history (python -m mlops_runtime history):")
        self.say(_indent(history.stdout))
        if "lineage" in (self.config.get("stages") or []):
            lineage = self.stages.run("lineage")
            self.say("lineage of the champion (python -m mlops_runtime lineage):")
            self.say(_indent(lineage.stdout))
        self.where(project)
        if failures:
            raise DemoError(f"{len(failures)} requests failed, the first: {failures[0]}")

    def where(self, project: Path) -> None:
        at = display_path(project)
        spec = display_path(self.spec)
        out = display_path(self.workdir / "generated")
        lines = [
            f"dashboard     {at}/reports/monitor/dashboard.html",
            f"reports       {at}/reports/monitor/ (latest.json, mlops_monitor.prom)",
            f"history       {at}/{self.config['rollback']['history']}",
            f"logs          {display_path(self.workdir / 'logs')}/ (every stage's output)",
        ]
        if self.tracked:
            lines.append(f"registry      {at}/mlruns.db")
        lines += [
            "",
            f"look again    mlops run {spec} monitor --out {out}",
            f"serve it      mlops run {spec} serve --out {out}",
            f"who served    mlops history {spec} --out {out}",
        ]
        if self.tracked:
            lines.append(
                f"runs, models  mlflow ui --backend-store-uri sqlite:///{(project / 'mlruns.db').resolve()}"
            )
        self.say("\n".join(lines))

    # Helpers --------------------------------------------------------------------------------

    def follow(self, phase: str, version: str, timeout_s: float = 60) -> None:
        """Wait until the running server answers with `version` (it polls the registry)."""
        if not self.traffic.wait(phase, 1, timeout_s, version=version):
            raise DemoError(f"the server did not serve version {version} within {timeout_s:.0f} s")

    def answered_by_cut(self) -> list[Answer]:
        """Answers up to the end of the last traffic step: those whose labels have arrived."""
        answers = self.traffic.answers()
        return [a for a in answers[: self.answered_at_cut] if a.status == 200]

    def _local_version(self) -> str:
        path = self.stages.project / self.config["rollback"]["history"]
        entries = (
            [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
            if path.is_file()
            else []
        )
        return str(entries[-1]["to"]) if entries else "1"

    def _alerts(self, config: Mapping[str, Any], env: dict[str, str]) -> WebhookReceiver | None:
        hooks = [a for a in config.get("alerts") or [] if a.get("kind") == "webhook"]
        if not hooks:
            return None
        receiver = WebhookReceiver()
        self.cleanup.append(receiver.close)
        for hook in hooks:
            env[str(hook["url_env"])] = receiver.url
        return receiver


def _verdict(report: Mapping[str, Any]) -> str:
    parts = [str(report.get("status"))]
    window = report.get("window") or {}
    parts.append(f"{window.get('rows', 0)} predictions")
    checks = sorted({str(v.get("check")) for v in report.get("violations") or []})
    if checks:
        parts.append("violations: " + ", ".join(checks))
    retrained = report.get("retraining")
    if retrained:
        detail = (
            retrained.get("version")
            and f"version {retrained['version']} as {retrained.get('alias')}"
        )
        parts.append(
            f"retraining: {retrained.get('event')} {detail or retrained.get('reason') or retrained.get('outcome') or ''}".strip()
        )
    return "; ".join(parts)


def _why(action: Mapping[str, Any]) -> str:
    why = action.get("why") or {}
    trigger = why.get("trigger") if isinstance(why, Mapping) else None
    return str(trigger or why)


def _alert_text(body: Mapping[str, Any]) -> str:
    for key in ("text", "summary", "message", "title"):
        if isinstance(body.get(key), str):
            return str(body[key]).splitlines()[0][:100]
    return json.dumps(body, sort_keys=True)[:100]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}Z"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines()) + "\n"


def run_demo(spec: Path | None, workdir: Path, fast: bool, python: str | None) -> None:
    import importlib.util

    interpreter = python or sys.executable
    if python is None and importlib.util.find_spec("mlops_runtime") is None:
        raise UsageError(
            "mlops demo runs the generated project on the mlops-runtime library, which is not "
            "installed here: pip install './runtime[train,serve]' (or pass --python)"
        )
    console = Console()
    prepare_workdir(workdir)
    chosen = copy_example(workdir) if spec is None else spec
    demo = Demo(chosen.resolve(), workdir.resolve(), fast, interpreter, console)
    started = time.monotonic()
    try:
        demo.run()
    finally:
        for close in reversed(demo.cleanup):
            close()
    console.say(f"\nthe loop ran in {time.monotonic() - started:.0f} s")

"""Rollback speed benchmark: the generated server's rollback beside restarting `mlflow models serve`.

    python benchmarks/rollback_speed.py [--quick] [--repeats N] [--lead S] [--tail S]
                                        [--connections N] [--threads N] [--json PATH] [--keep]

(--quick: one repeat, 1 s of load before and after each switch, MLflow's restart under load
only.)

Target: from the decision to roll back to the first response served by the previous version,
at most 10 s with default settings, and no failed request under load meanwhile.

The script builds `specs/breast-cancer.mlops.yaml` (level 3) with `python -m mlops_compiler
build` in a temp dir beside a copy of specs/, and trains it twice with `python -m
mlops_runtime train` (the gate promotes automatically: version 2 becomes champion). Then, per
repeat:

1. The generated server, `python -m mlops_runtime serve` (started once, default settings:
   `serving.reload_interval_s` 2 s, one worker), under wrk load (`POST /predict`, one JSON
   record, 16 connections, 2 threads; a Lua `response` hook counts non-200 answers and the
   `x-model-version` of each answer) while a probe thread (httpx, one keep-alive connection)
   posts the same record every ~5 ms and records when each answer arrived, its status and its
   `x-model-version`. After --lead seconds of load, `python -m mlops_runtime rollback --reason
   benchmark` runs in the project; the decision time is the `ts_epoch` of the `rolled_back`
   line it appends to reports/serving-history.jsonl (taken before the alias moves), and the
   switch time runs to the first probe answer from the version rolled back to. wrk runs on for
   --tail seconds after that answer. The next repeat trains again (a new version becomes
   champion, since a version rolled back from is never eligible again), waits until the probe
   sees it, and rolls back from it.
2. What a user would otherwise run: `mlflow models serve -m models:/breast-cancer/<new>
   --env-manager local` under the same wrk load (`POST /invocations` with
   `{"dataframe_records": [record]}`) and the same probe. MLflow's server neither follows
   aliases nor rolls back, so rolling back is a restart on the previous version's URI on the
   same port (no load balancer in front): the decision is the moment the script starts the
   switch (SIGTERM to the old server's process group), and the switch time runs to the first
   successful probe answer from the new server (started once the old one has exited, so every
   answer after its start is its own). MLflow needs MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true to
   load these models (skops-serialised; its sklearn loader asks for the switch whatever the
   format). wrk reconnects at once while nothing listens, so during the restart it spins on
   socket errors and takes CPU from the starting server; the same restart is therefore also
   timed with the probe alone, without wrk.

Failed requests: wrk's non-200 answers (Lua) plus its socket errors (connect, read, write,
timeout; --timeout 5s), and separately the probe's failed requests. Every server binds
127.0.0.1 on a free port in its own process group and is always stopped; the temp dir is
removed unless --keep.

A missed target is printed as MISSED; the exit code is non-zero when something could not be
measured (a command that fails, a server that does not start, a switch that never shows).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from harness import (
    PYTHON,
    ROOT,
    BackgroundWrk,
    BenchError,
    Server,
    Target,
    add_output,
    child_env,
    command_line,
    cpu_model,
    free_port,
    judge,
    parser,
    require_wrk,
    revision,
    run_checked,
    table,
    utc_now,
    versions,
    workdir,
    write_json,
    wrk_command,
)

SPEC = ROOT / "specs" / "breast-cancer.mlops.yaml"
HISTORY = "reports/serving-history.jsonl"
TARGETS = (
    Target(
        "decision → first answer from the previous version, worst repeat",
        "worst_s",
        10.0,
        show=lambda x: f"{x:.2f} s",
    ),
    Target(
        "failed requests under load (wrk + probe), all repeats",
        "failures",
        0,
        show=lambda x: f"{x:.0f}",
    ),
    Target(
        "answers from the rolled-back version after the switch",
        "mixed",
        0,
        show=lambda x: f"{x:.0f}",
    ),
)
WRK_TIMEOUT_S = 5
SWITCH_TIMEOUT_S = 120.0  # give up waiting for a switch after this long
READY_TIMEOUT_S = 180.0
PROBE_INTERVAL_S = 0.005
PACKAGES = ("mlops-runtime", "mlflow", "uvicorn", "httpx", "scikit-learn", "skops")

# wrk script: POST the body file's bytes; count non-200 answers and x-model-version per answer
# in every thread; the last line printed is `WRK_JSON {...}` with the sums over the threads.
LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"), "cannot open the body file " .. tostring(args[1]))
  wrk.body = f:read("*a")
  f:close()
  non200 = 0
  versions = {}
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
  local v = headers["x-model-version"] or headers["X-Model-Version"] or "-"
  versions[v] = (versions[v] or 0) + 1
end

function done(summary, latency, requests)
  local failed, merged = 0, {}
  for _, t in ipairs(threads) do
    failed = failed + t:get("non200")
    for k, n in pairs(t:get("versions")) do
      merged[k] = (merged[k] or 0) + n
    end
  end
  local parts = {}
  for k, n in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', k, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non200": %d, "status": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "versions": {%s}, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, failed, e.status,
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Settings:
    repeats: int
    lead: float  # seconds of load before the switch
    tail: float  # seconds of load after the first answer from the previous version
    connections: int
    threads: int
    probe_only: bool = True  # MLflow's restart timed once more without wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non200: int
    connect: int
    read: int
    write: int
    timeout: int
    versions: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def failed(self) -> int:
        return self.non200 + self.socket_errors

    def errors_text(self) -> str:
        return (
            f"non-200 {self.non200}, connect {self.connect}, read {self.read}, "
            f"write {self.write}, timeout {self.timeout}"
        )


@dataclass
class Switch:
    """One measured switch of one server."""

    server: str  # "generated", "mlflow" (under wrk) or "mlflow, probe only"
    repeat: int
    from_version: str
    to_version: str
    seconds: float  # decision -> first answer from the version switched to
    wrk: WrkResult | None  # None: the probe alone, no wrk load
    probe_requests: int
    probe_failed: int
    probe_gap_ms: float  # between the first answer from the new version and the one before
    # generated: the rollback command's wall time, and decision -> the command's exit
    command_s: float = 0.0
    decision_to_exit_s: float = 0.0
    command_to_first_s: float = 0.0  # the command's start -> first answer from the old version
    # answers from another version after the first one from the version switched to
    mixed_after: int = 0
    # mlflow: decision -> old server gone, and its exit -> first answer from the new one
    stop_s: float = 0.0
    start_s: float = 0.0
    probe_errors: dict[str, int] = field(default_factory=dict)


@dataclass
class Results:
    started: str = ""
    command: str = ""
    revision: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    reload_interval_s: float = 0.0
    generated_command: str = ""
    rollback_command: str = ""
    mlflow_command: str = ""
    wrk_command: str = ""
    switches: list[Switch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_wrk(
    url: str, body: Path, lua: Path, log: Path, s: Settings, ceiling: float
) -> BackgroundWrk:
    """wrk for the whole switch: started with a -d beyond it, ended by finish()."""
    cmd = wrk_command(
        url,
        lua,
        str(body),
        seconds=ceiling,
        connections=s.connections,
        threads=s.threads,
        timeout_s=WRK_TIMEOUT_S,
    )
    return BackgroundWrk(cmd, log)


def wrk_result(d: dict[str, Any]) -> WrkResult:
    """The summary post_count.lua prints."""
    return WrkResult(
        requests=int(d["requests"]),
        seconds=d["duration_us"] / 1e6,
        non200=int(d["non200"]),
        connect=int(d["connect"]),
        read=int(d["read"]),
        write=int(d["write"]),
        timeout=int(d["timeout"]),
        versions={str(k): int(v) for k, v in d["versions"].items()},
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
    )


@dataclass(frozen=True)
class Answer:
    sent: float  # time.time() before the request
    received: float  # time.time() after the answer (or the error)
    version: str  # x-model-version, "" when absent
    status: int  # 0: no HTTP answer (connection refused, reset, timed out)
    error: str = ""


class Probe:
    """One keep-alive client posting the same body every ~5 ms and recording every answer."""

    def __init__(self, url: str, body: bytes):
        self.url = url
        self.body = body
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def _run(self) -> None:
        headers = {"Content-Type": "application/json"}
        with httpx.Client(timeout=WRK_TIMEOUT_S) as client:
            while not self._stop.is_set():
                sent = time.time()
                try:
                    reply = client.post(self.url, content=self.body, headers=headers)
                    reply.read()
                    answer = Answer(
                        sent,
                        time.time(),
                        reply.headers.get("x-model-version", ""),
                        reply.status_code,
                    )
                except httpx.HTTPError as exc:
                    answer = Answer(sent, time.time(), "", 0, type(exc).__name__)
                self.answers.append(answer)
                self._stop.wait(PROBE_INTERVAL_S)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WRK_TIMEOUT_S + 5)

    def snapshot(self) -> list[Answer]:
        return list(self.answers)

    def wait_for(
        self, ok: Any, timeout: float, what: str, *alive: Server | BackgroundWrk, start: int = 0
    ) -> Answer:
        """The first answer from index `start` on for which ok(answer) holds, waiting up to
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        seen = start
        while True:
            answers = self.snapshot()
            for answer in answers[seen:]:
                if ok(answer):
                    return answer
            seen = len(answers)
            if time.monotonic() > deadline:
                last = answers[-1] if answers else None
                raise BenchError(
                    f"timed out after {timeout:.0f} s waiting for {what} (last: {last})"
                )
            for process in alive:
                process.check_alive()
            time.sleep(0.01)


# --- the project ------------------------------------------------------------------------------


def build_project(work: Path) -> Path:
    """The spec's project built in work/generated/<name>/ beside a copy of specs/."""
    shutil.copytree(SPEC.parent, work / "specs")
    name = str(yaml.safe_load(SPEC.read_text())["name"])
    run_checked(
        [PYTHON, "-m", "mlops_compiler", "build", f"specs/{SPEC.name}"],
        cwd=work,
        env=child_env(PYTHONPATH=str(ROOT)),  # this checkout's compiler and templates
    )
    project = work / "generated" / name
    config = json.loads((project / "config.json").read_text())
    stages = config.get("stages", [])
    for stage in ("train", "serve", "rollback"):
        if stage not in stages:
            raise BenchError(f"the built project has no {stage} stage (stages: {stages})")
    if (config.get("serving") or {}).get("model_source", "registry") != "registry":
        raise BenchError("the built project does not serve from the registry")
    return project


def train(project: Path) -> str:
    """Train once; the version registered, which the gate must have made champion."""
    proc = run_checked([PYTHON, "-m", "mlops_runtime", "train"], cwd=project, env=child_env())
    for line in proc.stdout.splitlines():
        words = line.split()
        if "registered version" in line and line.rstrip().endswith("as champion"):
            return words[words.index("version") + 1]
    raise BenchError(f"training registered no new champion:\n{proc.stdout[-3000:]}")


def history(project: Path) -> list[dict[str, Any]]:
    path = project / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def one_record() -> dict[str, Any]:
    """The first row of the spec's data as a JSON record typed by the contract, target removed."""
    document = yaml.safe_load(SPEC.read_text())
    data = document["data"]
    types = {c: rule["type"] for c, rule in data["contract"]["columns"].items()}
    with (SPEC.parent / data["train"]).open(newline="") as handle:
        row = next(csv.DictReader(handle))
    row.pop(data["target"])
    out: dict[str, Any] = {}
    for key, value in row.items():
        kind = types.get(key)
        out[key] = None if value == "" else float(value) if kind == "float" else value
    return out


# --- measurements -----------------------------------------------------------------------------


def first_gap(answers: Sequence[Answer], first: Answer) -> float:
    """ms between `first` and the answer before it: the probe's resolution at the switch."""
    index = answers.index(first)
    return 0.0 if index == 0 else (first.received - answers[index - 1].received) * 1000


def probe_errors(answers: Sequence[Answer]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in answers:
        if a.status != 200:
            key = a.error or str(a.status)
            out[key] = out.get(key, 0) + 1
    return out


def generated_switch(
    repeat: int,
    project: Path,
    server: Server,
    base: str,
    from_version: str,
    work: Path,
    s: Settings,
    lua: Path,
    body: Path,
) -> Switch:
    url = f"{base}/predict"
    with Probe(url, body.read_bytes()) as probe:
        probe.wait_for(
            lambda a: a.status == 200 and a.version == from_version,
            SWITCH_TIMEOUT_S,
            f"version {from_version} to answer",
            server,
        )
        ceiling = s.lead + SWITCH_TIMEOUT_S + s.tail + 60
        with load_wrk(url, body, lua, work / f"wrk-generated-{repeat}.log", s, ceiling) as load:
            time.sleep(s.lead)
            load.check_alive()
            server.check_alive()
            # Answers from here on are after the new champion served: the probe saw it first.
            start = len(probe.snapshot())
            before = len(history(project))
            started = time.time()
            proc = run_checked(
                [PYTHON, "-m", "mlops_runtime", "rollback", "--reason", "benchmark"],
                cwd=project,
                env=child_env(),
                timeout=SWITCH_TIMEOUT_S,
            )
            ended = time.time()
            added = [e for e in history(project)[before:] if e.get("event") == "rolled_back"]
            if len(added) != 1:
                raise BenchError(f"the rollback appended no single rolled_back line: {added}")
            entry = added[0]
            decision = float(entry["ts_epoch"])
            if str(entry["from"]) != from_version:
                raise BenchError(f"rolled back from {entry['from']}, not {from_version}")
            to_version = str(entry["to"])
            first = probe.wait_for(
                lambda a: a.status == 200 and a.version == to_version and a.received > decision,
                SWITCH_TIMEOUT_S,
                f"version {to_version} to answer after the rollback ({proc.stdout.strip()})",
                server,
                load,
                start=start,
            )
            time.sleep(s.tail)
            result = wrk_result(load.finish())
    answers = probe.snapshot()
    after = answers[answers.index(first) :]
    # Between the new champion's first answer and the decision, only the new champion answers.
    early = [
        a for a in answers[start:] if a.received <= decision and a.version not in ("", from_version)
    ]
    if early:
        raise BenchError(f"version {early[0].version} answered before the rollback: {early[0]}")
    return Switch(
        server="generated",
        repeat=repeat,
        from_version=from_version,
        to_version=to_version,
        seconds=first.received - decision,
        wrk=result,
        probe_requests=len(answers),
        probe_failed=sum(1 for a in answers if a.status != 200),
        probe_gap_ms=first_gap(answers, first),
        command_s=ended - started,
        decision_to_exit_s=ended - decision,
        command_to_first_s=first.received - started,
        mixed_after=sum(1 for a in after if a.status == 200 and a.version != to_version),
        probe_errors=probe_errors(answers),
    )


def mlflow_cmd(name: str, version: str, port: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{name}/{version}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]


def mlflow_switch(
    repeat: int,
    project: Path,
    name: str,
    from_version: str,
    to_version: str,
    work: Path,
    s: Settings,
    lua: Path,
    body: Path,
    *,
    under_load: bool,
) -> Switch:
    """Restart MLflow's server from `from_version` on `to_version`, on the same port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/invocations"
    env = child_env(
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlruns.db'}",  # absolute: four slashes
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true",
    )
    tag = f"{repeat}-{'wrk' if under_load else 'probe'}"
    old, new = (
        Server(
            f"mlflow models serve (version {version})",
            mlflow_cmd(name, version, port),
            cwd=project,
            env=env,
            log=work / f"mlflow-{tag}-{which}.log",
            port=port,
            ready_path="/ping",
            timeout=READY_TIMEOUT_S,
        )
        for version, which in ((from_version, "old"), (to_version, "new"))
    )
    result: WrkResult | None = None
    try:
        old.start()
        old.wait_ready()
        with contextlib.ExitStack() as stack:
            probe = stack.enter_context(Probe(url, body.read_bytes()))
            probe.wait_for(lambda a: a.status == 200, 60, "MLflow's first answer", old)
            load: BackgroundWrk | None = None
            if under_load:
                ceiling = s.lead + SWITCH_TIMEOUT_S + s.tail + 60
                load = stack.enter_context(
                    load_wrk(url, body, lua, work / f"wrk-mlflow-{repeat}.log", s, ceiling)
                )
            watched: list[Server | BackgroundWrk] = [new] if load is None else [new, load]
            time.sleep(s.lead)
            for process in (old, *watched[1:]):
                process.check_alive()
            decision = time.time()
            old.stop()
            stopped = time.time()
            new.start()
            first = probe.wait_for(
                lambda a: a.status == 200 and a.sent >= stopped,
                SWITCH_TIMEOUT_S,
                f"MLflow's server on version {to_version} to answer",
                *watched,
            )
            if load is not None:
                time.sleep(s.tail)
                new.check_alive()
                result = wrk_result(load.finish())
        answers = probe.snapshot()
    finally:
        old.stop()
        new.stop()
    return Switch(
        server="mlflow" if under_load else "mlflow, probe only",
        repeat=repeat,
        from_version=from_version,
        to_version=to_version,
        seconds=first.received - decision,
        wrk=result,
        probe_requests=len(answers),
        probe_failed=sum(1 for a in answers if a.status != 200),
        probe_gap_ms=first_gap(answers, first),
        stop_s=stopped - decision,
        start_s=first.received - stopped,
        probe_errors=probe_errors(answers),
    )


# --- reporting --------------------------------------------------------------------------------


def loaded(sw: Switch) -> WrkResult:
    if sw.wrk is None:
        raise BenchError(f"repeat {sw.repeat} of {sw.server} ran without wrk")
    return sw.wrk


def failed_text(sw: Switch) -> str:
    w = loaded(sw)
    return f"{w.failed:,} ({w.non200:,} non-200, {w.socket_errors:,} socket)"


def median_text(values: Sequence[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "-"


def report(r: Results) -> str:
    by: dict[str, dict[int, Switch]] = {}
    for sw in r.switches:
        by.setdefault(sw.server, {})[sw.repeat] = sw
    ours, theirs = by.get("generated", {}), by.get("mlflow", {})
    idle = by.get("mlflow, probe only", {})
    out: list[str] = []
    rows = []
    for repeat in sorted({sw.repeat for sw in r.switches}):
        a, b, c = ours.get(repeat), theirs.get(repeat), idle.get(repeat)
        rows.append(
            [
                str(repeat),
                f"{a.from_version} → {a.to_version}" if a else "-",
                f"{a.seconds:.2f}" if a else "-",
                failed_text(a) if a else "-",
                f"{a.probe_failed} / {a.probe_requests:,}" if a else "-",
                f"{loaded(a).requests:,}" if a else "-",
                f"{b.seconds:.2f}" if b else "-",
                failed_text(b) if b else "-",
                f"{b.probe_failed:,} / {b.probe_requests:,}" if b else "-",
                f"{loaded(b).requests:,}" if b else "-",
                f"{b.seconds / a.seconds:.1f}x" if a and b and a.seconds > 0 else "-",
                f"{c.seconds:.2f}" if c else "-",
            ]
        )
    if rows:
        ma = statistics.median(sw.seconds for sw in ours.values()) if ours else 0.0
        mb = statistics.median(sw.seconds for sw in theirs.values()) if theirs else 0.0
        rows.append(
            [
                "median",
                "",
                f"**{ma:.2f}**" if ours else "-",
                median_text([loaded(sw).failed for sw in ours.values()], ",.0f"),
                median_text([sw.probe_failed for sw in ours.values()], ",.0f"),
                median_text([loaded(sw).requests for sw in ours.values()], ",.0f"),
                f"**{mb:.2f}**" if theirs else "-",
                median_text([loaded(sw).failed for sw in theirs.values()], ",.0f"),
                median_text([sw.probe_failed for sw in theirs.values()], ",.0f"),
                median_text([loaded(sw).requests for sw in theirs.values()], ",.0f"),
                f"**{mb / ma:.1f}x**" if ours and theirs and ma > 0 else "-",
                median_text([sw.seconds for sw in idle.values()], ".2f"),
            ]
        )
    out.append(
        table(
            [
                "repeat",
                "versions",
                "generated: switch s",
                "generated: wrk failed",
                "generated: probe failed / sent",
                "generated: wrk requests",
                "MLflow restart: switch s",
                "MLflow: wrk failed",
                "MLflow: probe failed / sent",
                "MLflow: wrk requests",
                "MLflow / generated",
                "MLflow restart without wrk: switch s",
            ],
            rows,
        )
    )
    out.append("")
    detail = []
    for sw in r.switches:
        w = sw.wrk
        where = (
            f"rollback command {sw.command_s:.2f} s, decision → its exit "
            f"{sw.decision_to_exit_s:.2f} s, its start → first answer "
            f"{sw.command_to_first_s:.2f} s, other versions after the switch {sw.mixed_after}"
            if sw.server == "generated"
            else f"decision → old server gone {sw.stop_s:.2f} s, → new server's first answer "
            f"{sw.start_s:.2f} s"
        )
        detail.append(
            [
                str(sw.repeat),
                sw.server,
                f"{sw.seconds:.2f}",
                "-" if w is None else f"{w.seconds:.1f}",
                "-" if w is None or not w.seconds else f"{w.requests / w.seconds:,.0f}",
                "-" if w is None else f"{w.p99_ms:.1f}",
                "-" if w is None else f"{w.max_ms:.0f}",
                "-" if w is None else w.errors_text(),
                "-"
                if w is None
                else ", ".join(f"{k}: {n:,}" for k, n in sorted(w.versions.items())),
                f"{sw.probe_gap_ms:.1f}",
                ", ".join(f"{k} {n}" for k, n in sorted(sw.probe_errors.items())) or "-",
                where,
            ]
        )
    out.append(
        table(
            [
                "repeat",
                "server",
                "switch s",
                "wrk s",
                "req/s",
                "p99 ms",
                "max ms",
                "wrk errors",
                "wrk answers by x-model-version",
                "probe gap ms",
                "probe errors",
                "breakdown",
            ],
            detail,
        )
    )
    out.append("")
    if ours:
        worst = max(sw.seconds for sw in ours.values())
        failures = sum(loaded(sw).failed + sw.probe_failed for sw in ours.values())
        mixed = sum(sw.mixed_after for sw in ours.values())
        rows, _ = judge(
            TARGETS, {"worst_s": worst, "failures": failures, "mixed": mixed}, bold=True
        )
        out.append(
            table(
                ["target (generated server, default settings)", "wanted", "measured", "result"],
                rows,
            )
        )
        median = statistics.median(sw.seconds for sw in ours.values())
        out.append(f"\nswitch, median of the repeats: {median:.2f} s")
    return "\n".join(out)


# --- the run ----------------------------------------------------------------------------------


def run(s: Settings, r: Results, work: Path) -> None:
    name = str(yaml.safe_load(SPEC.read_text())["name"])
    lua = work / "post_count.lua"
    lua.write_text(LUA)
    record = one_record()
    predict_body = work / "predict.json"
    predict_body.write_bytes(json.dumps(record).encode())
    invocations_body = work / "invocations.json"
    invocations_body.write_bytes(json.dumps({"dataframe_records": [record]}).encode())

    print(f"building {SPEC.name} in {work} ...", flush=True)
    project = build_project(work)
    config = json.loads((project / "config.json").read_text())
    r.reload_interval_s = float((config.get("serving") or {}).get("reload_interval_s", 2))
    for _ in range(2):
        t0 = time.monotonic()
        version = train(project)
        print(f"  trained: version {version} is champion ({time.monotonic() - t0:.0f} s)")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(
        "the generated server",
        [PYTHON, "-m", "mlops_runtime", "serve"],
        cwd=project,
        env=child_env(HOST="127.0.0.1", PORT=str(port)),
        log=work / "serve.log",
        port=port,
        timeout=READY_TIMEOUT_S,
    )
    r.generated_command = "python -m mlops_runtime serve  # HOST=127.0.0.1 PORT=<free>"
    r.rollback_command = "python -m mlops_runtime rollback --reason benchmark"
    r.mlflow_command = shlex.join(["mlflow", *mlflow_cmd(name, "V", 0)[3:-1], "PORT"])
    r.wrk_command = (
        f"wrk -t{s.threads} -c{s.connections} -d<until stopped> --timeout {WRK_TIMEOUT_S}s "
        "--latency -s post_count.lua URL -- BODY"
    )
    try:
        server.start()
        server.wait_ready()
        for repeat in range(1, s.repeats + 1):
            if repeat > 1:
                t0 = time.monotonic()
                version = train(project)
                print(f"  trained: version {version} is champion ({time.monotonic() - t0:.0f} s)")
            print(f"repeat {repeat}: generated server, rollback from version {version} ...")
            ours = generated_switch(
                repeat, project, server, base, version, work, s, lua, predict_body
            )
            r.switches.append(ours)
            print(
                f"  {ours.from_version} → {ours.to_version}: {ours.seconds:.2f} s, wrk failed "
                f"{loaded(ours).failed} ({loaded(ours).errors_text()}), probe failed "
                f"{ours.probe_failed}/{ours.probe_requests}",
                flush=True,
            )
            print(f"repeat {repeat}: mlflow models serve, restart on version {ours.to_version} ...")
            for under_load in (True, False) if s.probe_only else (True,):
                theirs = mlflow_switch(
                    repeat,
                    project,
                    name,
                    version,
                    ours.to_version,
                    work,
                    s,
                    lua,
                    invocations_body,
                    under_load=under_load,
                )
                r.switches.append(theirs)
                w = theirs.wrk
                print(
                    f"  {theirs.server}: {theirs.seconds:.2f} s"
                    + ("" if w is None else f", wrk failed {w.failed} ({w.errors_text()})")
                    + f", probe failed {theirs.probe_failed}/{theirs.probe_requests}",
                    flush=True,
                )
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser_ = parser(
        __doc__, quick="one repeat, 1 s of load around each switch, MLflow under load only"
    )
    parser_.add_argument("--repeats", type=int, help="switches per server (default 3)")
    parser_.add_argument("--lead", type=float, help="seconds of load before a switch (default 5)")
    parser_.add_argument(
        "--tail", type=float, help="seconds of load after the first new answer (default 5)"
    )
    parser_.add_argument("--connections", type=int, default=16)
    parser_.add_argument("--threads", type=int, default=2, help="wrk threads")
    add_output(parser_)
    args = parser_.parse_args(argv)
    quick_s = 1.0 if args.quick else 5.0
    s = Settings(
        repeats=args.repeats or (1 if args.quick else 3),
        lead=quick_s if args.lead is None else args.lead,
        tail=quick_s if args.tail is None else args.tail,
        connections=args.connections,
        threads=args.threads,
        probe_only=not args.quick,
    )
    if s.repeats < 1:
        parser_.error("--repeats must be at least 1")
    missing = require_wrk()
    if missing is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2

    r = Results(
        started=utc_now(),
        command=command_line("rollback_speed.py", argv),
        revision=revision(),
        machine={
            "nproc": str(os.cpu_count()),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "packages": versions(PACKAGES, wrk=True),
        },
        load_before=os.getloadavg(),
    )
    failed: str | None = None
    with workdir("mlops-rollback-bench-", keep=args.keep) as work:
        try:
            run(s, r, work)
        except BenchError as exc:
            failed = str(exc)
        finally:
            r.load_after = os.getloadavg()

    print()
    print(f"- date: {r.started}")
    print(f"- command: `{r.command}`")
    print(f"- commit: {r.revision}")
    print(
        f"- machine: {r.machine['nproc']} CPUs, {r.machine['cpu']}, "
        f"Python {r.machine['python']}, Linux {r.machine['kernel']}"
    )
    print(f"- packages: {r.machine['packages']}")
    print(
        f"- load average before: {' '.join(f'{x:.2f}' for x in r.load_before)}, "
        f"after: {' '.join(f'{x:.2f}' for x in r.load_after)}"
    )
    print(f"- generated server: `{r.generated_command}`, reload_interval_s {r.reload_interval_s:g}")
    print(f"- rollback: `{r.rollback_command}`")
    print(f"- MLflow: `{r.mlflow_command}` (restarted on the previous version)")
    print(f"- load: `{r.wrk_command}`; probe: one keep-alive httpx client every ~5 ms")
    print()
    if r.switches:
        print(report(r))
    write_json(args.json, r)
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The monitor stage killed with SIGKILL at random points of its run, its report being written
included: every file it writes is the previous run's or a whole new one, never half of one,
and the next run succeeds and leaves no partial file behind."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import build_project, records, stage_env, train

pytestmark = pytest.mark.slow

KILLS = 9
SEED = 2612


def monitor(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "monitor", "--window", "1h"],
        cwd=project,
        env=stage_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def outputs(project: Path) -> dict[str, Path]:
    config = json.loads((project / "config.json").read_text())["monitor"]
    folder = project / config["reports_dir"]
    return {
        "latest": folder / "latest.json",
        "dashboard": folder / "dashboard.html",
        "textfile": project / config["textfile"],
    }


def metric_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def assert_whole(project: Path, before: dict[str, bytes], metrics: set[str], why: str) -> None:
    """Each output is the earlier run's bytes or a complete new document."""
    for name, path in outputs(project).items():
        data = path.read_bytes()
        if data == before[name]:
            continue
        text = data.decode("utf-8")
        if name == "latest":
            assert json.loads(text)["name"] == "breast-cancer", why
        elif name == "dashboard":
            assert text.rstrip().endswith("</html>"), f"{why}: {path} is cut"
        else:
            assert text.endswith("\n") and metric_names(text) == metrics, f"{why}: {path} is cut"
    folder = outputs(project)["latest"].parent
    for report in folder.glob("report-*.json"):
        json.loads(report.read_bytes())  # a report in the history is whole, or absent


def partial_files(project: Path) -> list[Path]:
    places = {p.parent for p in outputs(project).values()}
    return sorted(p for folder in places for p in folder.glob(".*.tmp"))


def test_a_monitor_killed_anywhere_leaves_whole_files_and_reruns(tmp_path: Path) -> None:
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    log_lines(project, records("breast_cancer", 150))
    started = time.monotonic()
    first = monitor(project)
    _, err = first.communicate(timeout=300)
    took = time.monotonic() - started
    code = first.returncode
    assert code in (0, 1, 3), err.decode()
    metrics = metric_names(outputs(project)["textfile"].read_text())
    assert "mlops_monitor_status" in metrics
    folder = outputs(project)["latest"].parent
    rng = random.Random(SEED)

    for kill in range(KILLS):
        before = {name: path.read_bytes() for name, path in outputs(project).items()}
        seen = {p.name for p in folder.iterdir()}
        run = monitor(project)
        mode = kill % 3
        if mode == 0:
            # Anywhere in the run: importing, reading the log, judging, writing.
            delay = rng.uniform(0.0, took)
            time.sleep(delay)
            where = f"kill {kill} after {delay:.3f} s of a {took:.2f} s run"
        else:
            # While it writes: the moment a file of the run appears (its first temporary
            # file, mostly), or a little after.
            deadline = time.monotonic() + 300
            while run.poll() is None and time.monotonic() < deadline:
                if {e.name for e in os.scandir(folder)} - seen:
                    break
            delay = 0.0 if mode == 1 else rng.uniform(0.0, 0.05)
            time.sleep(delay)
            where = f"kill {kill} {delay * 1000:.1f} ms into writing"
        run.send_signal(signal.SIGKILL)
        run.communicate(timeout=60)
        assert_whole(project, before, metrics, where)
    left = partial_files(project)

    # What a run killed on another machine's schedule left, beside what these left: a
    # dead process's half-written file (swept) and a live one's (its own, left alone).
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname().replace(".", "_").replace("/", "_")
    (folder / f".latest.json.{host}.{gone.pid}.tmp").write_text('{"name": "breast-cancer"')
    alive = folder / f".dashboard.html.{host}.{os.getpid()}.tmp"
    alive.write_text("<html><body>")
    # Another container's: its pid means nothing here, only its age does.
    elsewhere = folder / ".mlops_monitor.prom.monitor-pod-7.1.tmp"
    elsewhere.write_text("mlops_monitor_status 2\nmlops_monitor_")
    recent = folder / ".report-20261201T100000Z.json.monitor-pod-8.1.tmp"
    recent.write_text("{")
    hours_ago = time.time() - 2 * 3600
    os.utime(elsewhere, (hours_ago, hours_ago))

    # Each run names its report by the second: the rerun's must be a new one.
    time.sleep(1.1)
    rerun = monitor(project)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == code, err.decode()
    assert b"Traceback" not in err
    latest = json.loads(outputs(project)["latest"].read_bytes())
    assert (folder / f"report-{latest_stamp(latest)}.json").is_file()
    assert metric_names(outputs(project)["textfile"].read_text()) == metrics
    assert partial_files(project) == sorted([alive, recent]), f"left by the killed runs: {left}"


def latest_stamp(report: dict[str, object]) -> str:
    generated = str(report["generated_at"])  # 2026-12-01T10:00:00Z
    return generated.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"

"""Stages stop cleanly on SIGTERM and SIGINT: real processes, real signals.

`serve` drains, frees its port and exits 0 with no process left behind (one worker or two, the
signal sent to the server or, as Ctrl-C does, to its whole process group). `train` stopped
mid-run exits 128 + the signal with one line and no traceback; its tracking worker dies with
it (even when the stage is killed outright), the run it started ends FAILED and nothing is
registered.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_fixtures import SPECS, build_project, free_port, records, stage_env, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

PROMPT_S = 15.0


def children(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - out
        out |= frontier
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """The pids still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stop(process: subprocess.Popen[bytes], sig: int, group: bool) -> tuple[int, float]:
    started = time.monotonic()
    if group:
        os.killpg(process.pid, sig)  # what Ctrl-C in a terminal does
    else:
        process.send_signal(sig)
    try:
        code = process.wait(PROMPT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        name = signal.Signals(sig).name
        raise AssertionError(f"still running {PROMPT_S} s after {name}") from None
    return code, time.monotonic() - started


# -- serve -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = build_project(tmp_path_factory.mktemp("signals"), "breast-cancer")
    train(project)
    return project


def start_serving(project: Path, workers: int) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = project / f"serve-{port}.log"
    env = stage_env(PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY=str(workers))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_runtime", "serve"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            # One worker serves in the process itself; more are its children.
            if health["ready"] and (workers == 1 or len(children(process.pid)) >= workers):
                return process, port, log
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"not ready:\n{log.read_text()}")


@pytest.mark.parametrize(
    ("sig", "workers", "group"),
    [
        (signal.SIGTERM, 1, False),
        (signal.SIGINT, 1, False),
        (signal.SIGINT, 1, True),
        (signal.SIGTERM, 2, False),
        (signal.SIGINT, 2, True),
    ],
    ids=["sigterm", "sigint", "ctrl-c", "sigterm-2-workers", "ctrl-c-2-workers"],
)
def test_serve_drains_frees_its_port_and_exits_0(
    trained: Path, sig: int, workers: int, group: bool
) -> None:
    process, port, log = start_serving(trained, workers)
    descendants = children(process.pid)
    request_id = f"last-before-{signal.Signals(sig).name}-{workers}-{group}"
    answer = httpx.post(
        f"http://127.0.0.1:{port}/predict",
        json=records("breast_cancer", 1)[0],
        headers={"X-Request-ID": request_id},
    )
    assert answer.status_code == 200
    code, took = stop(process, sig, group)
    output = log.read_text()
    assert code == 0, output
    assert took < PROMPT_S
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert port_is_free(port)
    assert gone(descendants) == set(), "a server process outlived the stage"
    # The shutdown ran: the prediction log holds the last request.
    logged = b"".join(p.read_bytes() for p in (trained / "prediction_log").glob("*.jsonl"))
    assert request_id.encode() in logged


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_taken_port_says_so_in_one_line_and_exits_3(trained: Path, workers: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mlops_runtime", "serve"],
            cwd=trained,
            env=stage_env(PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY=str(workers)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"breast-cancer: cannot serve on 127.0.0.1:{port}: port {port} is already in use "
        "(set PORT to a free one)"
    ]
    assert "serving on" not in done.stdout  # nothing claims to serve


def test_monitor_stopped_by_ctrl_c_says_so_in_one_line(trained: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "monitor"],
        cwd=trained,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(0.4)  # a run takes over a second here: stopped in the middle of it
    code, took = stop(process, signal.SIGINT, True)
    stderr = process.communicate()[1].decode()
    assert code == 130, stderr
    assert took < PROMPT_S
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == "breast-cancer: monitor stopped by SIGINT"


# -- train -----------------------------------------------------------------------------------

# A fit long enough (tens of seconds, single-threaded) to stop training in its middle.
SLOW = "  params: {max_iter: 20000, learning_rate: 0.001, early_stopping: false, random_state: 42}"


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    text = (SPECS / "breast-cancer.mlops.yaml").read_text()
    fast = "  params: {max_iter: 100, learning_rate: 0.1, random_state: 42}"
    assert fast in text
    return build_project(tmp_path, "breast-cancer", text.replace(fast, SLOW))


def runs(project: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{project / 'mlruns.db'}?mode=ro", uri=True) as db:
            return [row[0] for row in db.execute("select status from runs")]
    except sqlite3.Error:
        return []  # not created yet, or being migrated


def versions(project: Path) -> int:
    with sqlite3.connect(f"file:{project / 'mlruns.db'}?mode=ro", uri=True) as db:
        return int(db.execute("select count(*) from model_versions").fetchone()[0])


@contextlib.contextmanager
def training_mid_run(project: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`train` started in its own process group, yielded (with its tracking worker's pid) once
    its run is RUNNING, while the model is still fitting."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "train"],
        cwd=project,
        env=stage_env(OMP_NUM_THREADS="1"),  # one core fits, the other runs the worker
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "RUNNING" not in runs(project):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        workers = children(process.pid)
        assert len(workers) == 1, workers
        yield process, workers.pop()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm", "ctrl-c"],
)
def test_train_stopped_mid_run_takes_its_worker_along(
    slow_project: Path, sig: int, group: bool
) -> None:
    with training_mid_run(slow_project) as (process, worker):
        code, took = stop(process, sig, group)
        _, err = process.communicate()
        stderr = err.decode()
        name = signal.Signals(sig).name
        assert code == 128 + sig, stderr
        assert took < PROMPT_S
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
        assert stderr.strip().splitlines()[-1] == (
            f"breast-cancer: training stopped by {name}: nothing registered; "
            "a started run is marked FAILED"
        )
        assert gone({worker}) == set(), "the tracking worker outlived the stage"
        assert runs(slow_project) == ["FAILED"]
        assert versions(slow_project) == 0


def test_train_killed_outright_still_takes_its_worker_along(slow_project: Path) -> None:
    """SIGKILL cannot be caught; the kernel tells the worker (PR_SET_PDEATHSIG)."""
    with training_mid_run(slow_project) as (process, worker):
        process.kill()
        process.wait(PROMPT_S)
        assert gone({worker}) == set(), "the tracking worker outlived the stage"
        deadline = time.monotonic() + 10
        while runs(slow_project) != ["FAILED"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runs(slow_project) == ["FAILED"]
        assert versions(slow_project) == 0


def test_a_stop_while_the_run_is_being_created_waits_for_it_then_stops() -> None:
    """The race behind a run left RUNNING: the stop came after MLflow wrote the run's row and
    before the run was active, so the ending found no run to end."""
    from mlops_runtime.project import Stopped
    from mlops_runtime.tracking.worker import _Stopping

    stopping = _Stopping()
    steps: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(Stopped) as stopped, stopping.deferred():
            stopping(signal.SIGTERM, None)  # what the kernel would call mid-step
            steps.append("run created and active")
        assert steps == ["run created and active"]
        assert stopped.value.exit_code == 128 + signal.SIGTERM
        assert stopping.pending is None and not stopping.critical
        with stopping.deferred():  # nothing pending: nothing raised
            steps.append("again")
        assert steps[-1] == "again"
    finally:
        signal.signal(signal.SIGTERM, previous)


START_STOPPED_MID_STEP = """
import json, signal, sqlite3
from pathlib import Path

import mlflow

from mlops_runtime.project import Stopped
from mlops_runtime.tracking import worker

config = json.loads(Path("config.json").read_text())
uri = "sqlite:///" + str(Path("mlruns.db").resolve())
session = worker.open_session({"uri": uri, "config": config, "data_path": "rows.csv"})
tag_run = mlflow.set_tags


def signalled_while_tagging(tags):
    worker._STOPPING(signal.SIGTERM, None)  # what the kernel calls when SIGTERM lands here
    tag_run(tags)


mlflow.set_tags = signalled_while_tagging
try:
    worker.start_run(session, {"rows": 3, "params": {"depth": "4"}, "contract_report": {}})
except Stopped:
    pass
else:
    raise SystemExit("the stop was lost")
worker._end_unfinished_run()
with sqlite3.connect("mlruns.db") as db:
    print(json.dumps({
        "status": [row[0] for row in db.execute("select status from runs")],
        "params": [row[0] for row in db.execute("select key from params")],
    }))
"""


def test_a_stop_while_the_run_is_tagged_lets_the_start_finish_then_ends_it_failed(
    tmp_path: Path,
) -> None:
    """The race behind a run left RUNNING after Ctrl-C: the stop landed in one of the writes
    that follow the run's creation. The start is one step; the stop is raised after it."""
    project = build_project(tmp_path, "breast-cancer")
    (project / "rows.csv").write_text("a\n1\n")
    done = subprocess.run(
        [sys.executable, "-c", START_STOPPED_MID_STEP],
        cwd=project,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": ["FAILED"], "params": ["depth"]}

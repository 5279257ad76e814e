"""`mlops demo`: the whole loop, run as the README's first command runs it, then checked in
what it left behind (registry, serving history, reports) rather than only in what it printed;
and stopped halfway by Ctrl-C, which must leave nothing running."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.serving_fixtures import stage_env

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"on http://127\.0\.0\.1:(\d+)")


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_compiler", "demo", "--fast", "--out", "loop", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stage_env(PYTHONPATH=str(REPO)),
    )


def port_is_free(port: int) -> bool:
    """Nothing listens there (the client's closed connections may still be in TIME_WAIT)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def processes_in(folder: Path) -> list[int]:
    """Processes whose working folder is inside `folder` (the stages run in the project)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = (proc / "cwd").readlink()
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(proc.name))
    return found


def test_the_whole_loop_in_one_command(tmp_path: Path) -> None:
    started = time.monotonic()
    process = demo(tmp_path)
    out, err = process.communicate(timeout=600)
    took = time.monotonic() - started
    assert process.returncode == 0, out + err
    steps = [line.split()[1] for line in out.splitlines() if line.startswith("     ok ")]
    for step in ("build", "train", "serve", "traffic", "late", "monitor", "alert", "rollback"):
        assert step in steps, out
    assert "registered version 2 as champion" in out, out
    assert "champion 2 -> 1: performance roc_auc < 0.9" in out, out
    assert "retrain_finished version 3 as champion" in out, out
    assert re.search(r"version 1 serves again [\d.]+ s later; 0 of \d+ requests failed", out)
    assert re.search(r"\d+ requests \(v1: \d+, v2: \d+, v3: \d+\), 0 failed", out), out
    for where in ("dashboard.html", "mlruns.db", "mlflow ui --backend-store-uri"):
        assert where in out, out

    project = tmp_path / "loop/generated/breast-cancer"
    assert (project / "reports/monitor/dashboard.html").is_file()
    # Labels arrived for the requests the server answered, keyed by their X-Request-ID.
    labels = (tmp_path / "loop/data/breast_cancer_labels.csv").read_text().splitlines()
    assert labels[0] == "request_id,malignant" and len(labels) > 300
    history = [json.loads(line) for line in (project / "reports/serving-history.jsonl").open()]
    moves = [(e["event"], e["from"], e["to"], e["by"]) for e in history if e["alias"] == "champion"]
    assert [m[:3] for m in moves] == [
        ("promoted", None, "1"),
        ("promoted", "1", "2"),
        ("rolled_back", "2", "1"),
        ("promoted", "1", "3"),
    ], moves
    assert moves[2][3] == "monitor" and moves[3][3] == "monitor", "the monitor acted by itself"

    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{project / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert str(client.get_model_version_by_alias("breast-cancer", "champion").version) == "3"
    audit = (project / "reports/monitor/retrain-audit.jsonl").read_text().splitlines()
    finished = [json.loads(line) for line in audit if '"retrain_finished"' in line]
    assert finished and finished[-1]["data"].endswith("fresh.csv"), finished
    assert processes_in(tmp_path / "loop") == [], "the demo stops everything it started"
    print(f"mlops demo --fast took {took:.0f} s")


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    process = demo(tmp_path)
    assert process.stdout is not None
    port = None
    deadline = time.monotonic() + 300
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = SERVING.search(line) if " serve " in line else None
        port = int(found.group(1)) if found else None
    assert port is not None, "the demo never said where it serves"
    assert not port_is_free(port), "the server holds its port while the demo runs"
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert port_is_free(port), "the server was stopped"
    assert processes_in(tmp_path / "loop") == []


def test_a_folder_it_did_not_make_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "notes.txt").write_text("mine\n")
    process = demo(tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, out + err
    assert "not empty and was not made by mlops demo" in err
    assert (tmp_path / "loop" / "notes.txt").read_text() == "mine\n"


def test_level_0_rolls_back_by_hand(tmp_path: Path) -> None:
    """A user's own spec at level 0: no registry, labels or automatic rollback, so the demo
    rolls back as an operator would, and the local model file serves again."""
    import shutil

    shutil.copytree(REPO / "specs", tmp_path / "specs")
    process = demo(tmp_path, "specs/wine.mlops.yaml")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    assert "level 0 trains with no gate" in out and "rollback (by hand)" in out, out
    history = tmp_path / "loop/generated/wine/reports/serving-history.jsonl"
    events = [json.loads(line) for line in history.open()]
    first, second, back = events
    assert (back["event"], back["from"], back["to"]) == ("rolled_back", second["to"], first["to"])
    assert re.search(r"serves again [\d.]+ s later; 0 of \d+ requests failed", out), out
    assert not (tmp_path / "specs/data/wine_labels.csv").exists(), "the user's folder is left as is"

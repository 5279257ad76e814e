"""kill -9 in the middle of a change of who serves leaves nothing the next change cannot mend.

A promotion, a rollback or a challenger's removal is run in a process that SIGKILLs itself at
its k-th write (a registry alias or tag, or the history line), for every k. After each, the
next writer (here `reconcile`, as a stage does when it starts) must find the aliases, the
version tags and the serving history agreeing: the change made whole and recorded once. And
a run whose stage and worker were killed together is ended by the next run, not left RUNNING.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serving_fixtures import build_project, stage_env, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

CHANGE_KILLED_AT_WRITE = """
import json, os, signal, sys
from pathlib import Path

from mlops_runtime.tracking import registry_versions as versions
from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.store import connect

kill_at, operation = int(sys.argv[1]), sys.argv[2]
config = json.loads(Path("config.json").read_text())
client = connect(config)
name = config["tracking"].get("registered_model") or config["name"]
path = history.history_path(Path.cwd(), config)
writes = 0


def killing(write):
    def counted(*args, **kwargs):
        global writes
        writes += 1
        if writes == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return write(*args, **kwargs)
    return counted


for method in (
    "set_registered_model_alias", "delete_registered_model_alias", "set_model_version_tag"
):
    setattr(client, method, killing(getattr(client, method)))
history.append = killing(history.append)
if operation == "promote":
    versions.promote(
        client, name, path, alias="challenger", version="1", why={"test": "promote"}, by="test"
    )
elif operation == "rollback":
    versions.rollback(client, name, path, keep=5, why={"trigger": "test"}, by="test")
else:
    versions.remove_challenger(client, name, path, expect="1", why={"test": "remove"}, by="test")
print(writes)
"""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-3 project trained twice: version 2 champion, version 1 the one before it."""
    project = build_project(tmp_path_factory.mktemp("crash"), "breast-cancer")
    train(project)
    train(project)
    state = registry(project)
    assert state["champion"] == "2", state
    return project


def registry(project: Path) -> dict[str, Any]:
    """Aliases, serving tags and history lines, read by a fresh process."""
    read = """
import itertools
import json
from pathlib import Path
from mlops_runtime.tracking import registry_versions as versions
from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.store import connect

config = json.loads(Path("config.json").read_text())
client = connect(config)
name = config["tracking"].get("registered_model") or config["name"]
path = history.history_path(Path.cwd(), config)
completed = versions.reconcile(client, name, path)
model = client.get_registered_model(name)
tags = {
    v.version: {k: t for k, t in v.tags.items() if k.startswith("mlops.serving.")}
    for v in client.search_model_versions(f"name='{name}'")
}
print(json.dumps({
    **{alias: str(version) for alias, version in model.aliases.items()},
    "tags": tags,
    "history": history.read(path),
    "pending": history.pending_path(path).exists(),
    "completed": completed is not None,
}))
"""
    done = python(project, ["-c", read])
    assert done.returncode == 0, done.stderr
    state: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return state


def python(project: Path, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`python ARGV` in the project, as a stage runs there."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=project,
        env=stage_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_of(project: Path, into: Path) -> Path:
    """A project of its own for one case; its store's artifact paths are relative to it."""
    target = into / "project"
    shutil.copytree(project, target, symlinks=True)
    return target


def killed_at(project: Path, write: int, operation: str) -> subprocess.CompletedProcess[str]:
    return python(project, ["-c", CHANGE_KILLED_AT_WRITE, str(write), operation])


def history_lines(project: Path) -> list[str]:
    return (project / "reports" / "serving-history.jsonl").read_text().splitlines()


def last(history: list[dict[str, Any]], alias: str) -> dict[str, Any]:
    return [entry for entry in history if entry.get("alias") == alias][-1]


def writes_of(two_versions: Path, tmp_path: Path, operation: str) -> int:
    """How many writes the change makes when nothing stops it."""
    project = copy_of(two_versions, tmp_path / "count")
    if operation == "remove":
        assert killed_at(project, 0, "promote").returncode == 0
    done = killed_at(project, 0, operation)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("operation", ["promote", "rollback", "remove"])
def test_a_change_killed_at_any_write_is_made_whole_by_the_next(
    two_versions: Path, tmp_path: Path, operation: str
) -> None:
    before = registry(two_versions)
    total = writes_of(two_versions, tmp_path, operation)
    assert total >= 3, total  # an alias, a tag or more, the history line
    for write in range(1, total + 1):
        project = copy_of(two_versions, tmp_path / f"{operation}-{write}")
        if operation == "remove":
            # A challenger to remove: set (and recorded) in full, before the faulty change.
            assert killed_at(project, 0, "promote").returncode == 0
        start = history_lines(project)
        done = killed_at(project, write, operation)
        assert done.returncode == -signal.SIGKILL, (write, done.stdout, done.stderr)
        after = registry(project)
        assert after["completed"], f"write {write}: nothing was left pending to complete"
        assert not after["pending"]
        new_lines = after["history"][len(start) :]
        assert len(new_lines) == 1, (write, new_lines)  # recorded once, not lost, not twice
        line = new_lines[0]
        if operation == "promote":
            assert after["challenger"] == "1" == line["to"]
            assert after["tags"]["1"]["mlops.serving.challenger_since"] == repr(line["ts_epoch"])
        elif operation == "rollback":
            assert (
                after["champion"] == "1" == line["to"] == last(after["history"], "champion")["to"]
            )
            assert line["from"] == before["champion"] == "2"
            assert after["tags"]["1"]["mlops.serving.champion_since"] == repr(line["ts_epoch"])
            assert "mlops.serving.rolled_back_at" in after["tags"]["2"]
        else:
            assert "challenger" not in after
            assert line["event"] == "challenger_removed" and line["from"] == "1"
            assert "mlops.serving.rolled_back_at" in after["tags"]["1"]


def test_a_run_whose_stage_and_worker_were_killed_is_ended_by_the_next_run(
    two_versions: Path, tmp_path: Path
) -> None:
    project = copy_of(two_versions, tmp_path)
    start_and_die = """
import json, os, signal
from pathlib import Path
from mlops_runtime.tracking import worker

config = json.loads(Path("config.json").read_text())
uri = "sqlite:///" + str(Path("mlruns.db").resolve())
session = worker.open_session({"uri": uri, "config": config, "data_path": "config.json"})
worker.start_run(session, {"rows": 3, "params": {"depth": "4"}, "contract_report": {}})
print(session.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = python(project, ["-c", start_and_die])
    assert done.returncode == -signal.SIGKILL, done.stderr
    orphan = done.stdout.strip().splitlines()[-1]
    assert status(project, orphan) == "RUNNING"
    data = (two_versions / "../../specs/data/breast_cancer.csv").resolve()
    trained = python(project, ["-m", "mlops_runtime", "train"], MLOPS_TRAIN_DATA=str(data))
    assert trained.returncode == 0, trained.stderr
    assert status(project, orphan) == "KILLED"


def status(project: Path, run_id: str) -> str:
    import sqlite3

    with sqlite3.connect(f"file:{project / 'mlruns.db'}?mode=ro", uri=True) as db:
        row = db.execute("select status from runs where run_uuid = ?", (run_id,)).fetchone()
    return str(row[0])


def test_a_live_runs_holder_is_not_taken_for_dead() -> None:
    from mlops_runtime.tracking.worker import holder_is_gone, process_tag

    assert not holder_is_gone(process_tag())
    assert not holder_is_gone(process_tag(os.getppid()))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    tag = process_tag(child.pid)
    child.wait()
    assert holder_is_gone(tag)
    assert not holder_is_gone("another-host:1:1")  # not ours to judge


CONCURRENT_CHANGES = """
import json, sys
from pathlib import Path

from mlops_runtime.tracking import registry_versions as versions
from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.store import connect

writer, count = sys.argv[1], int(sys.argv[2])
config = json.loads(Path("config.json").read_text())
client = connect(config)
name = config["tracking"].get("registered_model") or config["name"]
path = history.history_path(Path.cwd(), config)
made = 0
for i in range(count):
    alias = "champion" if i % 2 else "challenger"
    version = str(1 + (i + int(writer)) % 2)
    change = versions.promote(
        client, name, path, alias=alias, version=version, why={"writer": writer, "i": i}, by=writer
    )
    made += change.changed
print(made)
"""


def test_concurrent_promotions_from_several_processes_chain_and_lose_nothing(
    two_versions: Path, tmp_path: Path
) -> None:
    project = copy_of(two_versions, tmp_path)
    start = len(history_lines(project))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_CHANGES, str(w), "6"],
            cwd=project,
            env=stage_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    made = 0
    for writer in writers:
        out, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
        made += int(out.strip().splitlines()[-1])
    after = registry(project)
    lines = after["history"][start:]
    assert made == 24 and len(lines) == 24  # every change recorded, none twice
    for alias in ("champion", "challenger"):
        chain = [line for line in after["history"] if line["alias"] == alias]
        # Serialised: each change starts from where the one before it left the alias.
        for earlier, later in itertools.pairwise(chain):
            assert later["from"] == earlier["to"], (alias, earlier, later)
        assert after[alias] == chain[-1]["to"]


LEVEL_0_ROLLBACK_KILLED_BEFORE_ITS_LINE = """
import json, os, signal
from pathlib import Path

from mlops_runtime.tracking import local_versions
from mlops_runtime.tracking import serving_history as history

config = json.loads(Path("config.json").read_text())
history.append = lambda path, entry: os.kill(os.getpid(), signal.SIGKILL)
local_versions.rollback(Path.cwd(), config, why={"trigger": "test"}, by="test")
"""


def test_level_0_rollback_killed_after_installing_is_recorded_by_the_next_change(
    tmp_path: Path,
) -> None:
    from mlops_runtime.tracking import local_versions
    from mlops_runtime.tracking import serving_history as history

    project = build_project(tmp_path, "wine")
    train(project)
    config = json.loads((project / "config.json").read_text())
    # A second model that differs from the first: trained on part of the rows.
    rows = (project / config["data"]["path"]).read_text().splitlines()
    part = tmp_path / "part.csv"
    part.write_text("\n".join(rows[: len(rows) * 2 // 3]) + "\n")
    again = python(project, ["-m", "mlops_runtime", "train"], MLOPS_TRAIN_DATA=str(part))
    assert again.returncode == 0, again.stderr
    served = project / local_versions.model_file(config)
    before = local_versions.recorded(served)
    lines = history_lines(project)
    done = python(project, ["-c", LEVEL_0_ROLLBACK_KILLED_BEFORE_ITS_LINE])
    assert done.returncode == -signal.SIGKILL, done.stderr
    installed = local_versions.recorded(served)
    assert installed != before  # the older file serves, and no line says so yet
    assert history_lines(project) == lines
    entry = local_versions.finish_interrupted(project, config)
    assert entry is not None and entry["to"] == local_versions.version_id(installed or "")
    assert history_lines(project)[: len(lines)] == lines
    assert json.loads(history_lines(project)[-1])["event"] == history.ROLLED_BACK
    assert not history.pending_path(history.history_path(project, config)).exists()


def test_a_change_that_fails_with_an_error_is_not_left_pending(tmp_path: Path) -> None:
    from mlops_runtime.tracking import serving_history as history

    path = tmp_path / "serving-history.jsonl"
    with pytest.raises(RuntimeError, match="refused"), history.change(path, {"event": "x"}):
        assert history.unfinished(path) == {"event": "x"}  # written ahead
        raise RuntimeError("the registry refused the write")
    assert history.unfinished(path) is None
    assert history.read(path) == []


def test_a_pending_change_that_cannot_be_completed_is_set_aside_not_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_runtime.tracking import registry_versions
    from mlops_runtime.tracking import serving_history as history

    path = tmp_path / "serving-history.jsonl"
    history.intend(path, {"event": "not_a_change", "alias": "champion", "by": "x", "why": {}})
    assert registry_versions.finish_interrupted(None, "model", path) is None  # type: ignore[arg-type]
    assert history.unfinished(path) is None
    kept = list(tmp_path.glob("serving-history.jsonl.pending.failed-*"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["event"] == "not_a_change"
    assert "could not be completed" in capsys.readouterr().err

"""Level 0: the previous model file is kept when a new one is trained, and rollback swaps it
back; the running server follows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.runtime.serving_fixtures import (
    SPECS,
    build_project,
    records,
    run_stage,
    start_server,
)

pytestmark = pytest.mark.slow


def train_on(project: Path, rows: int) -> str:
    """Train on the first `rows` rows of the wine data; returns the saved version id."""
    lines = (SPECS / "data/wine.csv").read_text().splitlines()
    data = project / f"wine-{rows}.csv"
    data.write_text("\n".join(lines[: rows + 1]) + "\n")
    result = run_stage(project, "train", MLOPS_TRAIN_DATA=str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split("(")[1].split(")")[0]


def test_rollback_swaps_the_previous_file_back_and_the_server_follows(tmp_path: Path) -> None:
    project = build_project(tmp_path, "wine")
    first = train_on(project, 178)
    second = train_on(project, 120)
    assert first != second and first.startswith("local-")
    server = start_server(project)
    try:
        with server.client() as client:
            row = records("wine", 1)[0]
            assert client.post("/predict", json=row).headers["x-model-version"] == second
            done = run_stage(project, "rollback", "--reason", "worse on the new batch")
            assert done.returncode == 0, done.stderr
            assert f"from {second} to {first}" in done.stdout
            deadline = time.monotonic() + 10
            version = second
            while version != first and time.monotonic() < deadline:
                reply = client.post("/predict", json=row)
                assert reply.status_code == 200
                version = reply.headers["x-model-version"]
                time.sleep(0.05)
            assert version == first, "the server serves the previous file again within 10 s"
    finally:
        server.stop()
    kept = sorted((project / "model/versions").glob("*.skops"))
    assert len(kept) == 2
    served = (project / "model/model.skops").read_bytes()
    assert served == next(p for p in kept if first.removeprefix("local-") in p.name).read_bytes()

    refused = run_stage(project, "rollback")
    assert refused.returncode == 5 and "was rolled back from" in refused.stderr
    document = json.loads(run_stage(project, "history", "--json").stdout)
    assert document["model"] == "wine"
    history = document["entries"]
    assert [(e["event"], e["from"], e["to"]) for e in history] == [
        ("promoted", None, first),
        ("promoted", first, second),
        ("rolled_back", second, first),
        ("rollback_refused", first, None),
    ]
    assert history[2]["why"] == {"trigger": "manual", "reason": "worse on the new batch"}


def test_kept_files_are_bounded_and_checked(tmp_path: Path) -> None:
    project = build_project(tmp_path, "wine")
    config = json.loads((project / "config.json").read_text())
    config["rollback"]["keep_versions"] = 1
    (project / "config.json").write_text(json.dumps(config))
    ids = [train_on(project, rows) for rows in (178, 150, 120)]
    kept = sorted((project / "model/versions").glob("*.skops"))
    assert len(kept) == 2, "the served file and keep_versions earlier ones"
    assert ids[0].removeprefix("local-") not in " ".join(p.name for p in kept)

    previous = next(p for p in kept if ids[1].removeprefix("local-") in p.name)
    previous.write_bytes(previous.read_bytes() + b"\0")
    refused = run_stage(project, "rollback")
    assert refused.returncode == 5 and "no longer matches its sha256" in refused.stderr
    assert (project / "model/model.skops").read_bytes() != previous.read_bytes()

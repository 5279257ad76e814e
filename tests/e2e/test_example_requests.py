"""The requests a user copies work: each generated README's curl lines, run by a shell against
the real server of a trained project, answer 200 with a prediction; the serve stage prints one
that works too; `predict` sends a file's rows and reports refused ones by field; and
`mlops run SPEC serve` stopped by SIGTERM or SIGINT leaves nothing holding its port."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.runtime.serving_fixtures import (
    REPO,
    Server,
    build_project,
    free_port,
    run_stage,
    stage_env,
    start_server,
    train,
)

pytestmark = pytest.mark.slow
CURL = re.compile(r"^curl .*$", re.MULTILINE)


@pytest.fixture(scope="module", params=["wine", "diabetes", "penguins", "breast-cancer"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Server:
    project = build_project(tmp_path_factory.mktemp(request.param), request.param)
    train(project)
    server = start_server(project)
    request.addfinalizer(server.stop)
    return server


def test_the_readme_requests_answer_on_every_protocol(served: Server) -> None:
    readme = (served.project / "README.md").read_text()
    lines = CURL.findall(readme)
    assert len(lines) == 3, readme
    for line in lines:
        command = line.replace(":8080", f":{served.port}")
        done = subprocess.run(
            ["bash", "-c", command + " -w '\\n%{http_code}'"],
            cwd=served.project,
            capture_output=True,
            text=True,
            check=False,
        )
        body, status = done.stdout.rsplit("\n", 1)
        assert status == "200", f"{command}\n{body}"
        answer = json.loads(body)
        predicted = (
            answer.get("prediction", answer.get("predictions"))
            if "outputs" not in answer
            else answer["outputs"][0]["data"]
        )
        assert predicted not in (None, []), answer


def test_serve_prints_a_request_that_works(served: Server) -> None:
    printed = re.search(r"^try: (curl .*?)\s{2,}\(", served.output(), re.MULTILINE)
    assert printed is not None, served.output()
    done = subprocess.run(
        ["bash", "-c", printed.group(1) + " -w '\\n%{http_code}'"],
        cwd=served.project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.endswith("\n200"), done.stdout


def test_predict_sends_a_files_rows(served: Server, tmp_path: Path) -> None:
    config = json.loads((served.project / "config.json").read_text())
    data = served.project / config["data"]["path"]
    rows = data.read_text().splitlines()[:26]  # header and 25 rows, the label column included
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    done = run_stage(
        served.project,
        "predict",
        "--file",
        str(csv_file),
        "--batch-size",
        "10",
        PORT=str(served.port),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["row"] for line in lines] == list(range(25))
    # The same rows as one JSON array give the same predictions.
    records = [json.loads(line) for line in (served.project / "requests/predict.json").open()]
    json_file = tmp_path / "rows.json"
    json_file.write_text(json.dumps(records * 3))
    again = run_stage(served.project, "predict", "--file", str(json_file), PORT=str(served.port))
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 3, again.stderr
    expected = httpx.post(served.url + "/predict", json=records[0]).json()["prediction"]
    assert {json.loads(line)["prediction"] for line in again.stdout.splitlines()} == {expected}


def test_predict_names_the_field_of_a_refused_row_and_a_missing_server(
    served: Server, tmp_path: Path
) -> None:
    (record,) = [json.loads(line) for line in (served.project / "requests/predict.json").open()]
    field = next(iter(record))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(record) + "\n" + json.dumps({**record, field: "not a value"}) + "\n")
    refused = run_stage(
        served.project, "predict", "--file", str(bad), "--batch-size", "1", PORT=str(served.port)
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert len(refused.stdout.splitlines()) == 1, "the good row is still predicted"
    assert "rows 1-1" in refused.stderr and field in refused.stderr, refused.stderr
    nobody = run_stage(served.project, "predict", "--file", str(bad), PORT=str(free_port()))
    assert nobody.returncode == 2 and "no server answers at" in nobody.stderr, nobody.stderr
    missing = run_stage(served.project, "predict", "--file", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_mlops_run_serve_hands_signals_to_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    """`mlops run` becomes the stage, so stopping it stops the server and frees the port."""
    project = build_project(tmp_path, "wine")
    train(project)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_compiler", "run", "specs/wine.mlops.yaml", "serve"],
        cwd=tmp_path,
        env=stage_env(PYTHONPATH=str(REPO), PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _listening(port) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.2)
    assert _listening(port)
    process.send_signal(sig)
    out, _ = process.communicate(timeout=30)
    assert process.returncode in (0, 128 + sig, -sig), out
    assert "Traceback" not in out, out
    assert not _listening(port), "nothing holds the port once mlops run is stopped"

"""Level 3: a monitor run that finds an alert posts it to the receiver named in the spec."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import build_project, records, stage_env, train

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", received
    server.shutdown()
    server.server_close()


def test_alert_reaches_the_webhook_once_per_cooldown(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    log_lines(project, [{k: v * 3 for k, v in r.items()} for r in records("breast_cancer", 200)])

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlops_runtime", "monitor", "--no-dashboard"],
            cwd=project,
            capture_output=True,
            text=True,
            env=stage_env(ALERT_WEBHOOK_URL=url),
            check=False,
            timeout=300,
        )

    first = run()
    assert first.returncode == 3, first.stdout + first.stderr
    (payload,) = received
    assert payload["model"] == "breast-cancer" and payload["status"] == "alert"
    assert "dataset_drift" in payload["text"]
    assert "delivered" in first.stderr and "secret-token" not in first.stderr
    second = run()
    assert second.returncode == 3 and len(received) == 1, "suppressed within the cooldown"
    assert "suppressed" in second.stderr
    for path in (project / "reports").rglob("*"):
        if path.is_file():
            assert "secret-token" not in path.read_text(errors="replace"), path

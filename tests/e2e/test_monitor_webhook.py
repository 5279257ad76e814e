"""Level 3: a monitor run that finds an alert posts it to the receiver named in the spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.monitor_logs import log_lines
from tests.runtime.serving_fixtures import build_project, records, stage_env, train

pytestmark = pytest.mark.slow


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

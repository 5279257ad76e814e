"""Level 3: a monitor run that finds an alert posts it to the receiver named in the spec."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.monitor.alerts import send_alerts
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


# A receiver behind HTTP basic authentication, as a self-hosted webhook relay often is: the
# operator puts the credentials in the URL's userinfo, where every HTTP client but urllib
# takes them from.
USER, PASSWORD = "hook-user", "pa:ss@w0rd-XYZ"
USERINFO = "hook-user:pa%3Ass%40w0rd-XYZ"  # percent-encoded, as a URL must carry them


@dataclass
class AuthReceiver:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def auth_receiver() -> Iterator[AuthReceiver]:
    hook = AuthReceiver()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            given = self.headers.get("Authorization")
            hook.authorizations.append(given)
            hook.paths.append(self.path)
            if given != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="hooks"')
                self.end_headers()
                return
            hook.received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://{USERINFO}@127.0.0.1:{server.server_address[1]}/hooks/relay"
    yield hook
    server.shutdown()
    server.server_close()


def assert_no_credentials(*texts: str) -> None:
    for text in texts:
        for secret in (PASSWORD, "pa%3Ass%40w0rd", "w0rd-XYZ", USER, USERINFO):
            assert secret not in text, text


ALERT = {
    "name": "churn",
    "status": "alert",
    "generated_at": "2026-12-01T18:00:00Z",
    "violations": [
        {
            "check": "data_drift",
            "feature": "tenure",
            "observed": 0.31,
            "threshold": 0.1,
            "severity": "alert",
            "description": "drift",
        }
    ],
}
WEBHOOK = [{"kind": "webhook", "url_env": "ALERT_WEBHOOK_URL", "name": ""}]
SETTINGS = {"cooldown_s": 3600, "retries": 1, "backoff_s": 0.0, "timeout_s": 5}


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in the developer's environment would otherwise sit between client and receiver.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy")
def test_credentials_in_the_url_become_a_basic_authorization(
    auth_receiver: AuthReceiver, tmp_path: Path
) -> None:
    lines: list[str] = []
    state = tmp_path / "alerts-state.json"

    (outcome,) = send_alerts(
        ALERT, WEBHOOK, SETTINGS, state, environ={"ALERT_WEBHOOK_URL": auth_receiver.url},
        log=lines.append, sleep=lambda _: None,
    )  # fmt: skip

    assert outcome.status == "delivered" and outcome.http_status == 200, lines
    assert outcome.attempts == 1 and len(auth_receiver.received) == 1
    # The credentials travel in the header only: not in the request line.
    assert auth_receiver.paths == ["/hooks/relay"]
    assert_no_credentials(*lines, state.read_text(), repr(outcome))
    assert any("delivered" in line and "127.0.0.1" in line for line in lines), lines


@pytest.mark.usefixtures("no_proxy")
def test_wrong_credentials_fail_without_printing_them(
    auth_receiver: AuthReceiver, tmp_path: Path
) -> None:
    lines: list[str] = []
    wrong = auth_receiver.url.replace("pa%3Ass%40w0rd-XYZ", "nope-w0rd-XYZ")
    state = tmp_path / "alerts-state.json"

    (outcome,) = send_alerts(
        ALERT, WEBHOOK, SETTINGS, state, environ={"ALERT_WEBHOOK_URL": wrong},
        log=lines.append, sleep=lambda _: None,
    )  # fmt: skip

    assert outcome.status == "failed" and outcome.http_status == 401
    assert auth_receiver.received == [] and len(auth_receiver.authorizations) == 1
    assert auth_receiver.authorizations[0] is not None  # sent, and refused
    for line in lines:
        assert "nope-w0rd" not in line and USER not in line, line


def test_the_monitor_stage_alerts_a_receiver_behind_basic_auth(
    tmp_path: Path, auth_receiver: AuthReceiver
) -> None:
    project = build_project(tmp_path, "breast-cancer")
    train(project)
    log_lines(project, [{k: v * 3 for k, v in r.items()} for r in records("breast_cancer", 200)])

    result = subprocess.run(
        [sys.executable, "-m", "mlops_runtime", "monitor"],
        cwd=project,
        capture_output=True,
        text=True,
        env=stage_env(ALERT_WEBHOOK_URL=auth_receiver.url),
        check=False,
        timeout=300,
    )

    assert result.returncode == 3, result.stdout + result.stderr
    (payload,) = auth_receiver.received
    assert payload["model"] == "breast-cancer" and payload["status"] == "alert"
    assert "delivered" in result.stderr
    assert_no_credentials(result.stdout, result.stderr)
    for path in (project / "reports").rglob("*"):
        if path.is_file():
            assert_no_credentials(path.read_text(errors="replace"))

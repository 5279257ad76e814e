"""The monitor's webhook alerts against a real HTTP receiver on 127.0.0.1.

The receiver answers from a script (status, headers, optional stall) and records each request;
`sleep` is a recorder so backoff is asserted without waiting for it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import mlops_runtime
from mlops_runtime.monitor.alerts import (
    MAX_DELAY_S,
    TEXT_LIMIT,
    AlertOutcome,
    dedup_key,
    send_alerts,
    summary_text,
)

SECRET_PATH = "T0001/B0002/pathSecretXYZ"
SECRET_QUERY = "token=querySecret123"
T0 = 1_800_000_000.0


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0  # sleep before answering, to trip the client's timeout


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Receiver:
    """A webhook endpoint: answers the scripted replies in order, then 200."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Request("POST", self.path, dict(self.headers.items()), json.loads(raw))
                    )
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                if reply.stall_s:
                    time.sleep(reply.stall_s)
                body = b"ok" if reply.status < 400 else b"error"
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up on a stalled reply

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # A short poll keeps shutdown() from waiting out the default half second per test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{SECRET_PATH}?{SECRET_QUERY}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in the developer's environment would otherwise sit between client and receiver.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def violation(
    check: str, feature: str | None, observed: float, threshold: float, severity: str = "alert"
) -> dict[str, Any]:
    return {
        "check": check,
        "feature": feature,
        "observed": observed,
        "threshold": threshold,
        "severity": severity,
        "description": f"{check} on {feature}",
    }


def report(*violations: dict[str, Any], status: str = "alert") -> dict[str, Any]:
    return {
        "name": "churn",
        "status": status,
        "generated_at": "2026-12-01T18:00:00Z",
        "violations": list(violations),
    }


DRIFT = report(
    violation("data_drift", "tenure", 0.31, 0.1), violation("null_rate", None, 0.2, 0.05)
)
WEBHOOK = [{"kind": "webhook", "url_env": "ALERT_WEBHOOK_URL", "name": ""}]
FAST = {"cooldown_s": 3600, "retries": 3, "backoff_s": 0.5, "timeout_s": 5}


def send(
    receiver: Receiver | None,
    state: Path,
    the_report: dict[str, Any] = DRIFT,
    *,
    alerts: list[dict[str, Any]] = WEBHOOK,
    settings: dict[str, Any] = FAST,
    now: float = T0,
    env: dict[str, str] | None = None,
    url: str | None = None,
) -> tuple[list[AlertOutcome], list[str], Sleeps]:
    lines: list[str] = []
    sleeps = Sleeps()
    if env is None:
        target = url if url is not None else receiver.url if receiver is not None else ""
        env = {"ALERT_WEBHOOK_URL": target}
    outcomes = send_alerts(
        the_report, alerts, settings, state, environ=env, now=now, log=lines.append, sleep=sleeps
    )
    return outcomes, lines, sleeps


def assert_no_secret(lines: list[str], state: Path) -> None:
    texts = [*lines, state.read_text(encoding="utf-8") if state.exists() else ""]
    for text in texts:
        for secret in ("pathSecretXYZ", "querySecret123", "/hooks/", "token="):
            assert secret not in text, text


def test_delivered_payload_headers_and_state(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "nested" / "dir" / "alert_state.json"
    outcomes, lines, sleeps = send(receiver, state)

    key = dedup_key(DRIFT)
    assert outcomes == [AlertOutcome("ALERT_WEBHOOK_URL", "delivered", 1, 200, key)]
    assert sleeps == []
    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.path == f"/hooks/{SECRET_PATH}?{SECRET_QUERY}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert f"mlops-runtime/{mlops_runtime.__version__}" in request.headers["User-Agent"]
    body = request.body
    assert body["model"] == "churn"
    assert body["status"] == "alert"
    assert body["generated_at"] == "2026-12-01T18:00:00Z"
    assert body["violations"] == DRIFT["violations"]
    assert body["dedup_key"] == key and len(key) == 64
    text = body["text"]
    assert "\n" not in text
    for needle in ("churn", "ALERT", "data_drift[tenure]", "0.31", "0.1", "null_rate", "0.05"):
        assert needle in text, needle
    assert lines == ["alert: webhook ALERT_WEBHOOK_URL -> 127.0.0.1: delivered (attempt 1/4, 200)"]
    # The state file was created with its parents and records the delivery time.
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["sent"]["ALERT_WEBHOOK_URL"][key]["sent_at"] == T0
    assert not [p for p in state.parent.iterdir() if p.name != state.name]  # no tmp left
    assert_no_secret(lines, state)


def test_5xx_twice_then_200_retries_with_growing_backoff(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script = [Reply(500), Reply(502)]
    outcomes, lines, sleeps = send(receiver, tmp_path / "state.json")

    assert len(receiver.requests) == 3
    assert [(o.status, o.attempts, o.http_status) for o in outcomes] == [("delivered", 3, 200)]
    assert sleeps == [0.5, 1.0]
    assert sleeps[1] > sleeps[0]
    assert lines[0].endswith("attempt 1/4 failed (HTTP 500), retrying in 0.5 s")
    assert lines[1].endswith("attempt 2/4 failed (HTTP 502), retrying in 1 s")
    assert lines[2].endswith("delivered (attempt 3/4, 200)")
    assert len(lines) == 3
    # Every attempt carried the same payload, dedup key included.
    assert len({json.dumps(r.body, sort_keys=True) for r in receiver.requests}) == 1


def test_429_honours_retry_after_capped(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [
        Reply(429, {"Retry-After": "7"}),
        Reply(503, {"Retry-After": "86400"}),
        Reply(429, {"Retry-After": "soon"}),
    ]
    outcomes, _, sleeps = send(receiver, tmp_path / "state.json")

    assert outcomes[0].status == "delivered" and outcomes[0].attempts == 4
    # Seconds honoured, an hour-long ask capped, an unparseable one falls back to backoff.
    assert sleeps == [7.0, MAX_DELAY_S, 2.0]


def test_always_failing_receiver_fails_and_does_not_start_cooldown(
    receiver: Receiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    receiver.script = [Reply(503)] * 3
    settings = {**FAST, "retries": 2}
    outcomes, lines, sleeps = send(receiver, state, settings=settings)

    assert [(o.status, o.attempts, o.http_status) for o in outcomes] == [("failed", 3, 503)]
    assert len(receiver.requests) == 3
    assert sleeps == [0.5, 1.0]  # none after the last attempt
    assert lines[-2].endswith("attempt 3/3 failed (HTTP 503), no retries left")
    assert lines[-1].endswith("failed (attempt 3/3, HTTP 503)")
    assert not state.exists()

    # A moment later the receiver is back: the same alert is sent, not suppressed.
    again, _, _ = send(receiver, state, settings=settings, now=T0 + 60)
    assert [(o.status, o.attempts) for o in again] == [("delivered", 1)]
    assert len(receiver.requests) == 4


def test_4xx_is_not_retried(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    receiver.script = [Reply(400)]
    outcomes, lines, sleeps = send(receiver, state)

    assert [(o.status, o.attempts, o.http_status) for o in outcomes] == [("failed", 1, 400)]
    assert len(receiver.requests) == 1
    assert sleeps == []
    assert lines[0].endswith("attempt 1/4 failed (HTTP 400), not retried")
    assert not state.exists()
    assert_no_secret(lines, state)


def test_redirect_is_a_failure_not_followed(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [Reply(302, {"Location": "/elsewhere"})]
    outcomes, _, sleeps = send(receiver, tmp_path / "state.json")

    assert [(o.status, o.http_status) for o in outcomes] == [("failed", 302)]
    assert len(receiver.requests) == 1 and sleeps == []


def test_same_violations_suppressed_within_cooldown_and_sent_after(
    receiver: Receiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first, _, _ = send(receiver, state)
    assert first[0].status == "delivered"

    within, lines, _ = send(receiver, state, now=T0 + 3599)
    assert [(o.status, o.attempts, o.http_status) for o in within] == [("suppressed", 0, None)]
    assert within[0].dedup_key == first[0].dedup_key
    assert len(receiver.requests) == 1
    (line,) = lines
    assert "suppressed" in line and "3599 s ago" in line and "ALERT_WEBHOOK_URL" in line

    # The order of the violations and the values observed do not make an alert new.
    shuffled = report(
        violation("null_rate", None, 0.4, 0.05), violation("data_drift", "tenure", 0.5, 0.1)
    )
    same, _, _ = send(receiver, state, shuffled, now=T0 + 1800)
    assert same[0].status == "suppressed"

    after, _, _ = send(receiver, state, now=T0 + 3600)
    assert after[0].status == "delivered"
    assert len(receiver.requests) == 2
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["sent"]["ALERT_WEBHOOK_URL"][first[0].dedup_key]["sent_at"] == T0 + 3600


def test_new_violations_are_sent_within_cooldown(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first, _, _ = send(receiver, state)

    # A warning beside the same alerts does not make them new...
    with_warning = report(*DRIFT["violations"], violation("latency_p95", None, 0.9, 0.5, "warning"))
    same, _, _ = send(receiver, state, with_warning, now=T0 + 10)
    assert same[0].status == "suppressed"
    assert same[0].dedup_key == first[0].dedup_key

    # ...a drift on another feature does.
    wider = report(*DRIFT["violations"], violation("data_drift", "contract", 0.4, 0.1))
    new, _, _ = send(receiver, state, wider, now=T0 + 20)
    assert new[0].status == "delivered"
    assert new[0].dedup_key != first[0].dedup_key
    assert len(receiver.requests) == 2
    assert "data_drift[contract]" in receiver.requests[1].body["text"]
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert set(saved["sent"]["ALERT_WEBHOOK_URL"]) == {first[0].dedup_key, new[0].dedup_key}


def test_missing_or_empty_variable_is_skipped(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for env in ({}, {"ALERT_WEBHOOK_URL": ""}, {"ALERT_WEBHOOK_URL": "   "}):
        outcomes, lines, _ = send(receiver, state, env=env)
        assert [(o.status, o.attempts, o.http_status) for o in outcomes] == [("skipped", 0, None)]
        assert lines == ["alert: webhook ALERT_WEBHOOK_URL: skipped (ALERT_WEBHOOK_URL is not set)"]
    assert receiver.requests == []
    assert not state.exists()


def test_not_an_http_url_is_skipped_without_echoing_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for url in ("ftp://hooks.example/pathSecretXYZ", "pathSecretXYZ", "http://h:x/pathSecretXYZ"):
        outcomes, lines, _ = send(None, state, url=url)
        assert outcomes[0].status == "skipped"
        assert "is not an http(s) URL" in lines[0]
        assert_no_secret(lines, state)


def test_url_never_in_logs_or_state(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    receiver.script = [Reply(500), Reply(404)]
    _, failing, _ = send(receiver, state)
    _, delivered, _ = send(receiver, state)
    _, suppressed, _ = send(receiver, state, now=T0 + 1)
    lines = failing + delivered + suppressed
    assert len(lines) == 5
    assert all("127.0.0.1" in line and "ALERT_WEBHOOK_URL" in line for line in lines)
    assert state.exists()
    assert_no_secret(lines, state)


def test_connection_refused_fails_with_a_log_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/{SECRET_PATH}?{SECRET_QUERY}"
    state = tmp_path / "state.json"
    outcomes, lines, sleeps = send(None, state, url=url, settings={**FAST, "retries": 1})

    assert [(o.status, o.attempts, o.http_status) for o in outcomes] == [("failed", 2, None)]
    assert sleeps == [0.5]
    assert "refused" in lines[0].lower()
    assert lines[-1].startswith(
        "alert: webhook ALERT_WEBHOOK_URL -> 127.0.0.1: failed (attempt 2/2"
    )
    assert not state.exists()
    assert_no_secret(lines, state)


def test_timeout_is_retried(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [Reply(200, stall_s=2.0)]
    outcomes, lines, sleeps = send(
        receiver, tmp_path / "state.json", settings={**FAST, "timeout_s": 0.3}
    )

    assert [(o.status, o.attempts) for o in outcomes] == [("delivered", 2)]
    assert sleeps == [0.5]
    assert "timed out" in lines[0].lower() or "timeout" in lines[0].lower()


def test_corrupt_state_file_still_sends(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    for corrupt in ("{not json", '["a list"]', '{"sent": {"ALERT_WEBHOOK_URL": 3}}'):
        state.write_text(corrupt, encoding="utf-8")
        before = len(receiver.requests)
        outcomes, lines, _ = send(receiver, state)
        assert outcomes[0].status == "delivered"
        assert len(receiver.requests) == before + 1
        if corrupt.startswith("{not"):
            assert "not valid JSON" in lines[0] and str(state) in lines[0]
        # Rewritten as a valid file that now suppresses the resend.
        saved = json.loads(state.read_text(encoding="utf-8"))
        assert outcomes[0].dedup_key in saved["sent"]["ALERT_WEBHOOK_URL"]
    assert send(receiver, state, now=T0 + 1)[0][0].status == "suppressed"


def test_severity_thresholds(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    ok = report(status="ok")
    warning = report(violation("data_drift", "tenure", 0.15, 0.1, "warning"), status="warning")
    assert send(receiver, state, ok)[0] == []
    assert send(receiver, state, warning)[0] == []
    assert receiver.requests == []

    both = [
        {"kind": "webhook", "url_env": "ALERT_WEBHOOK_URL", "name": "pager"},
        {
            "kind": "slack",
            "url_env": "ALERT_WEBHOOK_URL",
            "name": "chat",
            "min_severity": "warning",
        },
    ]
    outcomes, lines, _ = send(receiver, state, warning, alerts=both)
    assert [(o.receiver, o.status) for o in outcomes] == [("ALERT_WEBHOOK_URL", "delivered")]
    assert lines[0].startswith("alert: slack ALERT_WEBHOOK_URL [chat] -> 127.0.0.1: delivered")
    assert receiver.requests[0].body["status"] == "warning"

    # The alert reaches both; a warning that escalates on the same check is a new key.
    escalated = report(violation("data_drift", "tenure", 0.4, 0.1), status="alert")
    outcomes, _, _ = send(receiver, state, escalated, alerts=both, now=T0 + 5)
    assert [o.status for o in outcomes] == ["delivered", "delivered"]
    assert dedup_key(escalated) != dedup_key(warning)


def test_one_failing_receiver_does_not_stop_the_others(receiver: Receiver, tmp_path: Path) -> None:
    alerts = [
        {"kind": "webhook", "url_env": "MISSING_URL"},
        {"kind": "teams", "url_env": "ALERT_WEBHOOK_URL"},
        {"kind": "webhook", "url_env": "ALERT_WEBHOOK_URL"},
    ]
    outcomes, _, _ = send(receiver, tmp_path / "state.json", alerts=alerts)
    assert [(o.receiver, o.status) for o in outcomes] == [
        ("MISSING_URL", "skipped"),
        ("ALERT_WEBHOOK_URL", "skipped"),
        ("ALERT_WEBHOOK_URL", "delivered"),
    ]
    assert len(receiver.requests) == 1


def test_defaults_when_settings_are_missing(receiver: Receiver, tmp_path: Path) -> None:
    receiver.script = [Reply(500)] * 4
    outcomes, _, sleeps = send(receiver, tmp_path / "state.json", settings={})
    assert [(o.status, o.attempts) for o in outcomes] == [("failed", 4)]
    assert sleeps == [0.5, 1.0, 2.0]


def test_text_is_truncated_with_a_count_of_the_rest() -> None:
    many = report(*(violation("data_drift", f"feature_{i:03d}", 0.5, 0.1) for i in range(400)))
    text = summary_text(many)
    assert len(text) <= TEXT_LIMIT
    shown = text.count("data_drift[")
    assert 0 < shown < 400
    assert text.endswith(f"... and {400 - shown} more")
    assert "feature_000" in text and "feature_399" not in text
    # A short report is not cut.
    assert "more" not in summary_text(DRIFT)

"""What the demo starts: the project's stages, its server, and a webhook receiver for alerts.
Everything binds 127.0.0.1 on a free port and is stopped by `close()`, whatever happened."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_compiler.errors import MlopsError

STAGE_TIMEOUT_S = 600


class DemoError(MlopsError):
    """A step of the demo did not do what the loop needs; says which and shows its output."""

    exit_code = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stages:
    """`python -m mlops_runtime STAGE` in the generated project, each run's output kept in
    logs/ of the demo folder."""

    python: str
    project: Path
    logs: Path
    env: dict[str, str]
    _runs: int = 0

    def run(self, stage: str, *args: str, ok: tuple[int, ...] = (0,), **extra: str) -> Run:
        self._runs += 1
        log = self.logs / f"{self._runs:02d}-{stage}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [self.python, "-m", "mlops_runtime", stage, *args],
            cwd=self.project,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            check=False,
            timeout=STAGE_TIMEOUT_S,
        )
        log.write_text(
            f"$ python -m mlops_runtime {' '.join([stage, *args])}\n"
            f"exit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}",
            encoding="utf-8",
        )
        run = Run(stage, result.returncode, result.stdout, result.stderr, log)
        if result.returncode not in ok:
            raise DemoError(
                f"the {stage} stage exited {result.returncode} (expected "
                f"{' or '.join(map(str, ok))}); its output is in {log}:\n{run.tail()}"
            )
        return run


@dataclass(frozen=True)
class Run:
    stage: str
    returncode: int
    stdout: str
    stderr: str
    log: Path

    def tail(self, lines: int = 15) -> str:
        return "\n".join((self.stdout + self.stderr).strip().splitlines()[-lines:])


@dataclass
class Server:
    """The project's serve stage in the background."""

    stages: Stages
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.stages.logs / "serve.log"

    def start(self, timeout_s: float = 90) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [self.stages.python, "-m", "mlops_runtime", "serve"],
                cwd=self.stages.project,
                env={**self.stages.env, "HOST": "127.0.0.1", "PORT": str(self.port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C reaches the demo, which stops the server
                # in order (after the client) instead of both at once.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(
                    f"the server exited {self.process.returncode}; its output is in {self.log}:\n"
                    + self.log.read_text(errors="replace")[-2000:]
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise DemoError(f"the server was not ready after {timeout_s:.0f} s; see {self.log}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


class WebhookReceiver:
    """Where the monitor's webhook alerts land: a tiny HTTP server keeping every JSON body."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {"unparsed": True}
                received.append(body if isinstance(body, dict) else {"body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # quiet: the demo prints what arrived

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

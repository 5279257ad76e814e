"""A server under test: its own process group, ready when a URL says so, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .proc import BenchError, http_get


def status_ok(status: int, body: bytes) -> bool:
    return status == 200


class Server:
    """`with Server(...)` starts the command and waits for `ready_path`; `start`/`stop` for
    callers that time the start-up themselves."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        port: int = 0,
        ready_path: str = "/ready",
        ready: Callable[[int, bytes], bool] = status_ok,
        timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.cwd = cwd
        self.env = dict(env)
        self.log = log
        self.port = port
        self.ready_path = ready_path
        self.ready = ready
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # Appended: a restarted server's log keeps what the earlier run said.
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise BenchError(f"{self.name} is not running (exit {code}):\n{self.output()}")

    def wait_ready(self, timeout: float | None = None) -> None:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, ValueError):
                if self.ready(*http_get(self.base + self.ready_path, timeout=1.0)):
                    return
            time.sleep(0.1)
        raise BenchError(f"{self.name} not ready after {limit:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            # The group is the one start_new_session made for this server (pgid == its pid):
            # it holds the server and what it started (mlflow starts uvicorn), nothing else.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Children that outlive the leader (mlflow's uvicorn) get the same end.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

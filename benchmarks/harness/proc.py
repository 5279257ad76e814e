"""Child processes: the error every benchmark exits on, a clean environment, checked runs."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "NO_COLOR": "1"}
# What would change a generated project's defaults if the caller's shell happened to set it.
DROPPED = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "PYTHONPATH",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
)


class BenchError(Exception):
    """Something did not run as it should or could not be measured: the script exits non-zero."""


def child_env(**extra: str) -> dict[str, str]:
    """The caller's environment without tracking, project or server overrides, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith("MLOPS_")}
    env.update(QUIET_ENV)
    env.update(extra)
    return env


def run_checked(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800.0,
) -> subprocess.CompletedProcess[str]:
    """Run to the end; BenchError with the output's tail on a non-zero exit or a timeout."""
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`{shlex.join(cmd)}` did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise BenchError(f"`{shlex.join(cmd)}` exited {proc.returncode}:\n{tail}")
    return proc


def json_line(stdout: str, prefix: str) -> str:
    """The text after `prefix` on the first line of `stdout` that starts with it."""
    line = next((x for x in stdout.splitlines() if x.startswith(prefix)), None)
    if line is None:
        raise BenchError(f"no `{prefix.strip()}` line in the output:\n{stdout[-2000:]}")
    return line.removeprefix(prefix)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def http_post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def run_measured(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600.0,
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """As `run_checked`, plus the process's wall seconds and peak RSS in MiB (its own
    ru_maxrss from wait4, not the largest of every child so far)."""
    import tempfile
    import threading
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if wall >= timeout:
        raise BenchError(f"`{shlex.join(cmd)}` did not finish within {timeout:.0f} s")
    if proc.returncode != 0:
        tail = (stdout + stderr)[-4000:]
        raise BenchError(f"`{shlex.join(cmd)}` exited {proc.returncode}:\n{tail}")
    done = subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)
    return done, wall, usage.ru_maxrss / 1024  # Linux: KiB

"""wrk runs: the command line, a run to its end, a run in the background, its summary."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .proc import ROOT, BenchError, run_checked

LUA = ROOT / "benchmarks" / "wrk"


def require_wrk() -> str | None:
    """None when wrk is on PATH, else what to tell the user."""
    if shutil.which("wrk") is not None:
        return None
    return (
        "wrk is not on PATH; install it (Debian/Ubuntu: apt-get install wrk, "
        "macOS: brew install wrk)"
    )


def wrk_command(
    url: str,
    lua: Path,
    *script_args: str,
    seconds: float,
    connections: int = 16,
    threads: int = 2,
    timeout_s: int | None = 5,
    latency: bool = True,
) -> list[str]:
    cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}"]
    cmd.append(f"-d{max(1, round(seconds))}s")
    if timeout_s is not None:
        cmd += ["--timeout", f"{timeout_s}s"]
    if latency:
        cmd.append("--latency")
    cmd += ["-s", str(lua), url]
    if script_args:
        cmd += ["--", *script_args]
    return cmd


def wrk_summary(text: str) -> dict[str, Any] | None:
    """The `WRK_JSON {...}` line that the Lua scripts print last, parsed; None if absent."""
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    return None if line is None else dict(json.loads(line.removeprefix("WRK_JSON ")))


def run_wrk(cmd: list[str], seconds: float) -> dict[str, Any]:
    """Run wrk to its end; its summary, or BenchError."""
    proc = run_checked(cmd, timeout=seconds + 60)
    data = wrk_summary(proc.stdout)
    if data is None:
        raise BenchError(f"wrk printed no summary:\n{proc.stdout}{proc.stderr}")
    return data


def wrk_figures(data: Mapping[str, Any]) -> dict[str, Any]:
    """A wrk summary (post_json*.lua) as requests, seconds, req/s, latencies in ms, errors."""
    lat, err = data["latency_us"], data["errors"]
    secs = data["duration_us"] / 1e6
    return {
        "requests": int(data["requests"]),
        "seconds": secs,
        "rps": data["requests"] / secs,
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "max_ms": lat["max"] / 1000,
        "non_2xx": int(err["status"]),
        "socket_errors": int(err["connect"] + err["read"] + err["write"] + err["timeout"]),
    }


class BackgroundWrk:
    """wrk beside the measurement: `with` starts it; `finish` ends it with SIGINT (wrk then
    prints its summary) or `wait` lets it run to its -d."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.cmd = cmd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BackgroundWrk:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.running:
            raise BenchError(f"wrk ended early:\n{self.log.read_text(errors='replace')[-2000:]}")

    def finish(self) -> dict[str, Any]:
        self.check_alive()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired as exc:
            raise BenchError("wrk did not stop within 30 s of SIGINT") from exc
        return self.summary()

    def wait(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None
        self.proc.wait(timeout=timeout)
        if self.proc.returncode != 0:
            raise BenchError(f"wrk exited {self.proc.returncode}:\n{self.text()[-3000:]}")
        return self.summary()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def summary(self) -> dict[str, Any]:
        data = wrk_summary(self.text())
        if data is None:
            raise BenchError(f"wrk printed no summary:\n{self.text()[-2000:]}")
        return data

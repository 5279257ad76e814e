"""A client sending one record per request, steadily, in a thread, until stopped.

Each request carries its own X-Request-ID (the join key late labels use) and every answer is
kept: which phase and row it came from, which model version answered, its status. Plain
`http.client` over one keep-alive connection, as a small service calling the model would.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    request_id: str
    phase: str
    row: int
    version: str
    status: int


@dataclass(frozen=True)
class Phase:
    name: str
    records: Sequence[dict[str, Any]]


class Traffic:
    def __init__(self, port: int, phase: Phase, pause_s: float = 0.0) -> None:
        self._port = port
        self._phase = phase
        self._pause_s = pause_s
        self._answers: list[Answer] = []
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def switch(self, phase: Phase) -> None:
        with self._lock:
            self._phase = phase

    def answers(self, phase: str | None = None) -> list[Answer]:
        with self._lock:
            return [a for a in self._answers if phase is None or a.phase == phase]

    @property
    def failures(self) -> list[str]:
        with self._lock:
            return list(self._failures)

    def count(self, phase: str | None = None, version: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for a in self._answers
                if (phase is None or a.phase == phase) and (version is None or a.version == version)
            )

    def latest_version(self) -> str:
        with self._lock:
            return self._answers[-1].version if self._answers else ""

    def wait(self, phase: str, at_least: int, timeout_s: float, version: str | None = None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(phase, version) >= at_least:
                return True
            if not self._thread.is_alive():
                return False
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
        n = 0
        while not self._stop.is_set():
            with self._lock:
                phase = self._phase
            row = n % len(phase.records)
            request_id = f"demo-{n}"
            body = json.dumps(phase.records[row])
            try:
                connection.request(
                    "POST",
                    "/predict",
                    body=body,
                    headers={"Content-Type": "application/json", "X-Request-ID": request_id},
                )
                reply = connection.getresponse()
                text = reply.read()
                answer = Answer(
                    request_id,
                    phase.name,
                    row,
                    reply.getheader("x-model-version") or "",
                    reply.status,
                )
                with self._lock:
                    self._answers.append(answer)
                    if reply.status != 200:
                        self._failures.append(f"{reply.status} {text[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self._failures.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
            n += 1
            if self._pause_s:
                time.sleep(self._pause_s)
        connection.close()

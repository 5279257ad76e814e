"""One line per step as it finishes (what happened, how long it took); on a terminal, a live
line while it runs: elapsed seconds, and a bar for steps that count towards a goal."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

NAME_WIDTH = 22
BAR_WIDTH = 24


class Step:
    def __init__(self, name: str) -> None:
        self.name = name
        self.result = ""
        self.progress: Callable[[], tuple[int, int]] | None = None
        self.started = time.monotonic()

    def done(self, result: str) -> None:
        self.result = result

    def track(self, progress: Callable[[], tuple[int, int]]) -> None:
        """A (done, goal) reading the live line shows as a bar with a rate."""
        self.progress = progress

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Console:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.started = time.monotonic()

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(step, stop), daemon=True)
        if self.live:
            ticker.start()
        try:
            yield step
        except BaseException:
            stop.set()
            self._clear()
            self.say(f"{'FAILED':>7} {name:<{NAME_WIDTH}} {step.elapsed:6.1f} s")
            raise
        finally:
            stop.set()
            if ticker.is_alive():
                ticker.join()
        self._clear()
        self.say(f"{'ok':>7} {name:<{NAME_WIDTH}} {step.elapsed:6.1f} s  {step.result}")

    def _tick(self, step: Step, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            line = f"{'...':>7} {step.name:<{NAME_WIDTH}} {step.elapsed:6.1f} s"
            if step.progress is not None:
                done, goal = step.progress()
                filled = min(BAR_WIDTH, BAR_WIDTH * done // max(goal, 1))
                rate = done / step.elapsed if step.elapsed > 0 else 0.0
                line += (
                    f"  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{goal} ({rate:.0f}/s)"
                )
            self.stream.write("\r" + line[:120] + "\x1b[K")
            self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

"""UTC timestamps as the runtime's files write them: one place for both precisions."""

from __future__ import annotations

import time


def iso_seconds(epoch: float) -> str:
    """`2026-01-02T03:04:05Z`: reports and feature freshness, read by people."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def iso_millis(epoch: float) -> str:
    """`2026-01-02T03:04:05.678Z`: the serving history, whose lines a rollback and a promotion
    in the same second must still order."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"

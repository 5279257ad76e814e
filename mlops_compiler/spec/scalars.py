"""Small value syntaxes of the spec: thresholds, durations, cron, env-var names, secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass

_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float


def parse_threshold(text: str) -> Threshold:
    match = _THRESHOLD.match(text)
    if not match:
        raise ValueError(f"expected a comparison such as '>= 0.8', got {text!r}")
    return Threshold(match.group(1), float(match.group(2)))


def parse_duration(text: str) -> int:
    """'90s', '15m', '1h', '7d' -> seconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected a duration such as 30s, 15m, 1h or 7d, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (
        "day of week",
        0,
        7,
        {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    ),
)
_MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}


def _cron_number(text: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ValueError(f"{what} {text!r} is not in {low}-{high}")
    return value


def check_cron(expr: str) -> None:
    """Raise ValueError unless `expr` is a standard five-field cron expression or a macro."""
    if expr.strip() in _MACROS:
        return
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}")
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"{what}: bad step {step!r}")
            if base == "*":
                continue
            start, dash, end = base.partition("-")
            a = _cron_number(start, low, high, names, what)
            if dash and a > _cron_number(end, low, high, names, what):
                raise ValueError(f"{what}: range {base!r} runs backwards")


_SECRET_PATTERNS = (
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with embedded credentials"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an API key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"hooks\.slack\.com/services/"), "a Slack webhook URL"),
)


def looks_secret(text: str) -> str | None:
    """What kind of secret `text` looks like, or None."""
    for pattern, kind in _SECRET_PATTERNS:
        if pattern.search(text):
            return kind
    return None

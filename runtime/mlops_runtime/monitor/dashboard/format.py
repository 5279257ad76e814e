"""Escaping and number, time and status formatting shared by the page and its charts."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_CATEGORIES = 10
_LATENCY_ORDER = ("p50", "p90", "p95", "p99", "max")
_STATUS_CLASS = {
    "ok": "ok",
    "stable": "ok",
    "warning": "warning",
    "missing": "warning",
    "unsupported": "warning",
    "insufficient_samples": "warning",
    "alert": "alert",
    "violated": "alert",
    "drifted": "alert",
}


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _floats(value: object) -> list[float]:
    """All entries as floats, or [] when any of them is not a finite number."""
    numbers = [_num(item) for item in _list(value)]
    return [n for n in numbers if n is not None] if None not in numbers else []


def _float_map(value: object) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, item in _map(value).items():
        number = _num(item)
        if number is not None:
            out[str(key)] = number
    return out


def _shares(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in counts.items()}


def _fmt(value: object) -> str:
    """Display text, already escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _esc(value)
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4g}"
    return _esc(value)


def _short(value: float) -> str:
    """Compact axis text: `0.25`, `120`, `8000`, `12k`, `3.5M`."""
    size = abs(value)
    if size < 1e-12:
        return "0"
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    if size >= 1000:
        return f"{value:.0f}"
    if size < 1e-3:
        return f"{value:.2g}"
    return f"{value:.3g}"


def _count(value: object, noun: str) -> str:
    return f"{_fmt(value)} {noun}{'' if value == 1 else 's'}"


def _pct(value: object) -> str:
    number = _num(value)
    if number is None:
        return _fmt(value)
    if 0 < abs(number) < 0.001:
        return f"{number * 100:.2f}%"
    return f"{number * 100:.1f}%"


def _duration(value: object) -> str:
    seconds = _num(value)
    if seconds is None:
        return _fmt(value)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{_fmt(value)} s"


def _short_time(value: object) -> str:
    """`2026-12-01T18:40:00Z` -> `12-01 18:40`; anything else as it is (escaped)."""
    text = str(value)
    if _is_iso(text):
        return _esc(f"{text[5:10]} {text[11:16]}")
    return _esc(text[:16])


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


# --- small HTML pieces -------------------------------------------------------------------------


def _badge(status: object, text: str | None = None, *, big: bool = False) -> str:
    key = "unknown" if status is None else str(status)
    classes = "badge " + _STATUS_CLASS.get(key, "muted") + (" big" if big else "")
    return f'<span class="{classes}">{_esc(key if text is None else text)}</span>'


def _drift_badge(drifted: object) -> str:
    if drifted is True:
        return _badge("drifted")
    if drifted is False:
        return _badge("stable")
    return _badge(None, "—")


def _note(text: str) -> str:
    """A sentence in place of a section or chart; `text` is already escaped."""
    return f'<p class="note">{text}</p>'


def _tile(key: str, value: str, sub: str = "") -> str:
    sub_html = f'<div class="s">{sub}</div>' if sub else ""
    return f'<div class="tile"><div class="k">{_esc(key)}</div><div class="v">{value}</div>{sub_html}</div>'


def _table(headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """`headers` are (label, numeric); each cell is (escaped html, css class)."""
    head = "".join(
        f"<th{' class=n' if numeric else ''}>{_esc(label)}</th>" for label, numeric in headers
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>" for cell, cls in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _legend(reference: str = "reference", current: str = "current") -> str:
    return (
        f'<div class="legend"><span><span class="sw ref"></span>{_esc(reference)}</span>'
        f'<span><span class="sw cur"></span>{_esc(current)}</span></div>'
    )


# --- SVG ----------------------------------------------------------------------------------------


def _is_iso(text: str) -> bool:
    return len(text) >= 16 and text[4] == "-" and text[10] == "T"

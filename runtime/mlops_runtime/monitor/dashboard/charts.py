"""The dashboard's inline SVG charts: bars of two distributions, quantile lines, latency bars,
time series with their bounds."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlops_runtime.monitor.dashboard.format import (
    _LATENCY_ORDER,
    _MAX_CATEGORIES,
    _esc,
    _floats,
    _note,
    _pct,
    _short,
    _truncate,
)


def _c(value: float) -> str:
    return f"{value:.1f}"


class _Svg:
    """The elements of one chart; coordinates are rounded to 0.1 px so output is stable."""

    def __init__(self, width: int, height: int, *, chart: str, label: str) -> None:
        self.width = width
        self.height = height
        self.chart = chart
        self.label = label
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, cls: str, title: str = "") -> None:
        attrs = f'class="{cls}" x="{_c(x)}" y="{_c(y)}" width="{_c(w)}" height="{_c(h)}"'
        self._add("rect", attrs, title)

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str) -> None:
        self.parts.append(
            f'<line class="{cls}" x1="{_c(x1)}" y1="{_c(y1)}" x2="{_c(x2)}" y2="{_c(y2)}"/>'
        )

    def polyline(self, points: Sequence[tuple[float, float]], cls: str) -> None:
        coords = " ".join(f"{_c(x)},{_c(y)}" for x, y in points)
        self.parts.append(f'<polyline class="{cls}" points="{coords}"/>')

    def circle(self, x: float, y: float, r: float, cls: str, title: str = "") -> None:
        self._add("circle", f'class="{cls}" cx="{_c(x)}" cy="{_c(y)}" r="{_c(r)}"', title)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        anchor: str = "start",
        cls: str = "",
        title: str = "",
    ) -> None:
        cls_attr = f' class="{cls}"' if cls else ""
        tip = f"<title>{_esc(title)}</title>" if title else ""
        self.parts.append(
            f'<text{cls_attr} x="{_c(x)}" y="{_c(y)}" text-anchor="{anchor}">{tip}{_esc(text)}</text>'
        )

    def group(self, cls: str, title: str) -> None:
        """Opens a group whose one title is the tooltip of everything drawn in it."""
        self.parts.append(f'<g class="{cls}"><title>{_esc(title)}</title>')

    def end_group(self) -> None:
        self.parts.append("</g>")

    def _add(self, tag: str, attrs: str, title: str) -> None:
        if title:
            self.parts.append(f"<{tag} {attrs}><title>{_esc(title)}</title></{tag}>")
        else:
            self.parts.append(f"<{tag} {attrs}/>")

    def render(self, name: str = "") -> str:
        name_attr = f' data-name="{_esc(name)}"' if name else ""
        return (
            f'<svg class="chart" data-chart="{self.chart}"{name_attr} width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-label="{_esc(self.label)}"><title>{_esc(self.label)}</title>'
            + "".join(self.parts)
            + "</svg>"
        )


def _nice_share(value: float) -> float:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8):
        if value <= step + 1e-12:
            return step
    return 1.0


def _share_axis(
    svg: _Svg, left: float, top: float, width: float, height: float, top_share: float
) -> None:
    for fraction in (0.0, 0.5, 1.0):
        y = top + height - fraction * height
        svg.line(left, y, left + width, y, "axis" if fraction == 0 else "grid")
        svg.text(left - 4, y + 4, f"{top_share * fraction * 100:.0f}%", anchor="end")


def _grouped_bars(
    svg: _Svg,
    groups: Sequence[tuple[float | None, float | None, str]],
    box: tuple[float, float, float, float],
    outside: Sequence[bool] = (),
) -> float:
    """Two bars per group (reference, current) of shares, titled once per group (a bin or a
    category) with both shares; returns the slot width."""
    left, top, width, height = box
    shares = [s for ref, cur, _ in groups for s in (ref, cur) if s is not None]
    top_share = _nice_share(max(shares, default=0.0))
    slot = width / max(1, len(groups))
    for index, is_outside in enumerate(outside):
        if is_outside:
            svg.rect(
                left + index * slot, top, slot, height, "outside", "outside the reference range"
            )
    _share_axis(svg, left, top, width, height, top_share)
    pair = [(0, "ref"), (1, "cur")]
    present = [kind for i, kind in pair if any(g[i] is not None for g in groups)]
    bar_w = slot * 0.8 / max(1, len(present))
    for index, (ref, cur, title) in enumerate(groups):
        x = left + index * slot + slot * 0.1
        svg.group("bin", title)
        for kind in present:
            share = ref if kind == "ref" else cur
            if share is None:
                x += bar_w
                continue
            h = share / top_share * height
            svg.rect(x, top + height - h, bar_w, h, f"bar {kind}")
            x += bar_w
        svg.end_group()
    return slot


def _bin_shares(counts: Sequence[float], bins: int) -> list[float] | None:
    if len(counts) != bins:
        return None
    total = sum(counts)
    return [c / total if total > 0 else 0.0 for c in counts]


def _histogram_chart(name: str, reference: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    edges = _floats(reference.get("edges")) or _floats(current.get("edges"))
    if len(edges) < 2:
        return _note("No histogram for this feature.")
    bins = len(edges) + 1
    ref_counts = _floats(reference.get("counts"))
    cur_counts = _floats(current.get("counts"))
    cur_edges = _floats(current.get("edges"))
    notes: list[str] = []
    if cur_edges and cur_edges != edges:
        cur_counts = []
        notes.append("The current histogram is on other edges than the reference; not drawn.")
    ref_vals = _bin_shares(ref_counts, bins)
    cur_vals = _bin_shares(cur_counts, bins)
    if ref_vals is None and cur_vals is None:
        return _note("No histogram counts for this feature.")
    shown = [
        i
        for i in range(bins)
        if 0 < i < bins - 1
        or any(vals is not None and vals[i] > 0 for vals in (ref_vals, cur_vals))
    ]
    groups: list[tuple[float | None, float | None, str]] = []
    for i in shown:
        if i == 0:
            span = f"below {_short(edges[0])}"
        elif i == bins - 1:
            span = f"at or above {_short(edges[-1])}"
        else:
            span = f"[{_short(edges[i - 1])}, {_short(edges[i])})"
        ref_v = None if ref_vals is None else ref_vals[i]
        cur_v = None if cur_vals is None else cur_vals[i]
        parts = [
            f"{label} {_pct(v)}"
            for label, v in (("reference", ref_v), ("current", cur_v))
            if v is not None
        ]
        groups.append((ref_v, cur_v, f"{span}: " + ", ".join(parts)))
    svg = _Svg(360, 170, chart="feature", label=f"{name}: reference and current histogram")
    box = (40.0, 8.0, 312.0, 136.0)
    slot = _grouped_bars(svg, groups, box, [i in (0, bins - 1) for i in shown])
    left, top, _, height = box
    base = top + height + 14
    first_inner = shown.index(1)
    last_inner = shown.index(bins - 2)
    svg.text(left + first_inner * slot, base, _short(edges[0]), anchor="start")
    svg.text(left + (last_inner + 1) * slot, base, _short(edges[-1]), anchor="end")
    if len(edges) >= 5:
        middle = len(edges) // 2
        svg.text(left + (first_inner + middle) * slot, base, _short(edges[middle]), anchor="middle")
    return svg.render(name) + "".join(_note(_esc(n)) for n in notes)


def _category_chart(
    name: str,
    chart: str,
    reference: Mapping[str, float] | None,
    current: Mapping[str, float] | None,
    width: int = 360,
) -> str:
    """Grouped bars of shares per category; categories absent from the reference are flagged."""
    if not reference and not current:
        return _note("No category counts for this feature.")
    ref = dict(reference or {})
    cur = dict(current or {})
    order = sorted(ref, key=lambda k: (-ref[k], k)) + sorted(
        (k for k in cur if k not in ref), key=lambda k: (-cur[k], k)
    )
    kept, rest = order[:_MAX_CATEGORIES], order[_MAX_CATEGORIES:]
    groups: list[tuple[float | None, float | None, str]] = []
    labels: list[tuple[str, bool]] = []
    for key in kept:
        unseen = bool(reference) and key not in ref
        ref_v = ref.get(key, 0.0) if reference else None
        cur_v = cur.get(key, 0.0) if current else None
        parts = [
            f"{label} {_pct(v)}"
            for label, v in (("reference", ref_v), ("current", cur_v))
            if v is not None
        ]
        suffix = " (not in the reference)" if unseen else ""
        groups.append((ref_v, cur_v, f"{key}{suffix}: " + ", ".join(parts)))
        labels.append((key, unseen))
    if rest:
        ref_v = sum(ref.get(k, 0.0) for k in rest) if reference else None
        cur_v = sum(cur.get(k, 0.0) for k in rest) if current else None
        groups.append((ref_v, cur_v, f"{len(rest)} other categories"))
        labels.append((f"+{len(rest)} other", False))
    svg = _Svg(width, 170, chart=chart, label=f"{name}: reference and current shares per category")
    box = (40.0, 8.0, width - 48.0, 136.0)
    slot = _grouped_bars(svg, groups, box)
    limit = max(3, int(slot / 6.2))
    for index, (label, unseen) in enumerate(labels):
        text = _truncate(label, limit) + ("*" if unseen else "")
        svg.text(
            box[0] + (index + 0.5) * slot,
            box[1] + box[3] + 14,
            text,
            anchor="middle",
            cls="unseen" if unseen else "",
            title=label if text != label else "",
        )
    return svg.render(name)


def _ticks(values: Sequence[float], count: int = 4) -> list[float]:
    """Round axis ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering `values`."""
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        # A constant non-negative series (an error rate of 0) keeps its axis at 0 and above.
        low, high = (low - pad if low - pad >= 0 or low < 0 else 0.0), high + pad
    raw = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw * 0.999)
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    return [round(start + i * step, 12) for i in range(round((stop - start) / step) + 1)]


def _value_axis(
    svg: _Svg,
    ticks: Sequence[float],
    box: tuple[float, float, float, float],
    fmt: Callable[[float], str],
) -> Callable[[float], float]:
    """Grid lines and labels for `ticks`; returns the value -> y mapping."""
    left, top, width, height = box
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return top + height - (value - low) / (high - low) * height

    for index, tick in enumerate(ticks):
        y = y_of(tick)
        svg.line(left, y, left + width, y, "axis" if index == 0 else "grid")
        svg.text(left - 4, y + 4, fmt(tick), anchor="end")
    return y_of


def _quantile_chart(reference: Mapping[str, float], current: Mapping[str, float]) -> str:
    def levels(values: Mapping[str, float]) -> list[tuple[float, float]]:
        out = []
        for key, value in values.items():
            try:
                out.append((float(key), value))
            except ValueError:
                continue
        return sorted(out)

    ref, cur = levels(reference), levels(current)
    if not ref and not cur:
        return _note("No prediction quantiles in this report.")
    width, height = 560, 190
    left, top, plot_w, plot_h = 56.0, 10.0, width - 72.0, height - 40.0
    xs = [q for q, _ in ref + cur]
    q_low, q_high = min(xs), max(xs)
    q_span = (q_high - q_low) or 1.0
    svg = _Svg(
        width, height, chart="quantiles", label="prediction quantiles, reference and current"
    )
    svg.rect(left, top, plot_w, plot_h, "frame")
    y_of = _value_axis(svg, _ticks([v for _, v in ref + cur]), (left, top, plot_w, plot_h), _short)

    def point(q: float, v: float) -> tuple[float, float]:
        x = left + (q - q_low) / q_span * plot_w if q_high > q_low else left + plot_w / 2
        return x, y_of(v)

    for q in sorted(set(xs)):
        x, _ = point(q, q_low)
        svg.text(x, top + plot_h + 16, f"p{q * 100:g}", anchor="middle")
    for kind, series in (("ref", ref), ("cur", cur)):
        if not series:
            continue
        points = [point(q, v) for q, v in series]
        svg.polyline(points, "line ref" if kind == "ref" else "line")
        label = "reference" if kind == "ref" else "current"
        for (q, v), (x, y) in zip(series, points, strict=True):
            svg.circle(
                x, y, 3.5, "pt ref" if kind == "ref" else "pt", f"{label} p{q * 100:g}: {_short(v)}"
            )
    return svg.render()


def _latency_chart(latency: Mapping[str, float]) -> str:
    keys = [k for k in _LATENCY_ORDER if k in latency] + [
        k for k in latency if k not in _LATENCY_ORDER
    ]
    row, left, right = 26, 52.0, 80.0
    width, height = 560, 12 + row * len(keys)
    plot_w = width - left - right
    top_value = max(latency[k] for k in keys) or 1.0
    svg = _Svg(width, height, chart="latency", label="latency percentiles in milliseconds")
    svg.line(left, 4, left, height - 4, "axis")
    for index, key in enumerate(keys):
        y = 8 + index * row
        w = max(1.0, latency[key] / top_value * plot_w)
        svg.text(left - 6, y + 14, key, anchor="end")
        svg.rect(left, y + 2, w, row - 8, "bar lat", f"{key}: {_short(latency[key])} ms")
        svg.text(left + w + 6, y + 14, f"{_short(latency[key])} ms", cls="value")
    return svg.render()


def _series_chart(
    name: str,
    values: Sequence[float | None],
    labels: Sequence[str],
    *,
    low: float | None = None,
    high: float | None = None,
    baseline: float | None = None,
    fmt: Callable[[float], str] = _short,
) -> str:
    """A polyline over the timeline; bounds dashed, points outside them red."""
    known = [v for v in values if v is not None]
    if not known:
        return _note("No value in any report yet.")
    width, height = 560, 180
    left, top, plot_w, plot_h = 60.0, 12.0, width - 76.0, height - 42.0
    marks = [b for b in (low, high, baseline) if b is not None]
    step = plot_w / max(1, len(values) - 1)
    svg = _Svg(width, height, chart="series", label=f"{name} over the last {len(values)} reports")
    svg.rect(left, top, plot_w, plot_h, "frame")
    y_of = _value_axis(svg, _ticks(known + marks), (left, top, plot_w, plot_h), fmt)

    def at(index: int, value: float) -> tuple[float, float]:
        x = left + index * step if len(values) > 1 else left + plot_w / 2
        return x, y_of(value)

    for bound, text in ((low, "min"), (high, "max")):
        if bound is not None:
            _, y = at(0, bound)
            svg.line(left, y, left + plot_w, y, "bound")
            svg.text(
                left + plot_w - 2, y - 4, f"{text} {fmt(bound)}", anchor="end", cls="bound-label"
            )
    if baseline is not None:
        _, y = at(0, baseline)
        svg.line(left, y, left + plot_w, y, "baseline")
        svg.text(left + 2, y - 4, f"baseline {fmt(baseline)}")
    run: list[tuple[float, float]] = []
    runs: list[list[tuple[float, float]]] = [run]
    for index, value in enumerate(values):
        if value is None:
            run = []
            runs.append(run)
        else:
            run.append(at(index, value))
    for segment in runs:
        if segment:
            svg.polyline(segment, "line")
    for index, value in enumerate(values):
        if value is None:
            continue
        x, y = at(index, value)
        bad = (low is not None and value < low) or (high is not None and value > high)
        svg.circle(x, y, 3.0, "pt bad" if bad else "pt", f"{labels[index]}: {fmt(value)}")
    base = top + plot_h + 16
    svg.text(left, base, labels[0], anchor="start")
    if len(labels) > 1:
        svg.text(left + plot_w, base, labels[-1], anchor="end")
    return svg.render(name)


# --- sections ----------------------------------------------------------------------------------

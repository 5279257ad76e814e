"""A monitoring report as one self-contained HTML page: its sections, in order.

`render_dashboard(report, history)` returns a complete document: inline CSS, charts drawn here as
inline SVG, no script, no font, image or style sheet fetched from anywhere (a Content-Security-
Policy in the page forbids it too). Every text taken from the report goes through `html.escape`,
so a hostile feature, model or category name shows as text. The same inputs give the same bytes:
coordinates are rounded, mappings are walked in their own order, nothing reads the clock.

The report is version 1 of `mlops-monitor-report`; any key may be absent or null, and a section
with nothing to show (level 0 has no drift, a missing reference profile, no labels yet) becomes a
short sentence. `history` holds past reports, oldest first, with or without the current one last;
the time series run over it plus the current report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_runtime.monitor.dashboard.charts import (
    _category_chart,
    _histogram_chart,
    _latency_chart,
    _quantile_chart,
    _series_chart,
)
from mlops_runtime.monitor.dashboard.format import (
    _badge,
    _count,
    _drift_badge,
    _duration,
    _esc,
    _float_map,
    _fmt,
    _is_iso,
    _legend,
    _note,
    _num,
    _pct,
    _shares,
    _short_time,
    _table,
    _tile,
)
from mlops_runtime.monitor_report import (
    REPORT_SCHEMA,
    DatasetDrift,
    DriftVerdict,
    Grace,
    Kpi,
    MonitorReport,
    OnlineStore,
    Performance,
    ServedModel,
    Window,
    read_report,
)

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f1f5f9;color:#0f172a;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:20px 20px 32px}
header.top{display:flex;align-items:center;gap:14px;flex-wrap:wrap}
h1{font-size:26px;margin:0}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:14px;margin:0}
.sub{color:#475569;margin:2px 0 12px}
nav{display:flex;gap:14px;flex-wrap:wrap;margin:0 0 14px;font-size:13px}
nav a{color:#1d4ed8;text-decoration:none}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:14px 16px;margin:0 0 14px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:10px;margin:0 0 14px}
.tiles.two{grid-template-columns:repeat(2,minmax(0,1fr))}
.tile{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px 12px}
.tile .k{color:#64748b;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile .v{font-size:18px;font-weight:600;overflow-wrap:anywhere}
.tile .s{color:#64748b;font-size:12px;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;background:#e2e8f0;color:#334155;white-space:nowrap}
.badge.big{font-size:15px;padding:3px 14px}
.badge.ok{background:#dcfce7;color:#166534}
.badge.warning{background:#fef3c7;color:#92400e}
.badge.alert{background:#fee2e2;color:#991b1b}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{color:#475569;font-weight:600;background:#f8fafc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bad{color:#b91c1c;font-weight:600}
.muted{color:#64748b}
.note{color:#475569;font-style:italic;margin:6px 0}
.problems{background:#fff7ed;border-color:#fed7aa}
.problems li{margin:2px 0}
.legend{display:flex;gap:16px;font-size:12px;color:#475569;margin:4px 0 10px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:5px}
.sw.ref{background:#94a3b8}.sw.cur{background:#2563eb}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:12px;margin-top:12px}
.charts.wide{grid-template-columns:repeat(auto-fill,minmax(560px,1fr))}
figure{margin:0;border:1px solid #e2e8f0;border-radius:6px;padding:8px 10px;background:#fff}
figcaption{display:flex;justify-content:space-between;align-items:center;gap:8px;margin-bottom:4px}
figcaption .name{font-weight:600;overflow-wrap:anywhere}
figure .meta{color:#64748b;font-size:12px}
.row{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px;align-items:start}
svg.chart{display:block;width:100%;height:auto;overflow:visible}
svg .bar.ref{fill:#94a3b8}
svg .bar.cur{fill:#2563eb}
svg .bar.lat{fill:#0d9488}
svg .outside{fill:#fef3c7}
svg .frame{fill:#fff;stroke:none}
svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .axis{stroke:#94a3b8;stroke-width:1}
svg text{font-size:11px;fill:#475569;font-family:inherit}
svg text.unseen{fill:#b91c1c;font-weight:600}
svg text.value{fill:#0f172a}
svg .line{fill:none;stroke:#2563eb;stroke-width:2}
svg .line.ref{stroke:#94a3b8;stroke-dasharray:4 3}
svg .pt{fill:#2563eb}
svg .pt.ref{fill:#94a3b8}
svg .pt.bad{fill:#dc2626}
svg .bound{stroke:#dc2626;stroke-width:1.2;stroke-dasharray:6 4}
svg .baseline{stroke:#64748b;stroke-width:1;stroke-dasharray:2 3}
svg text.bound-label{fill:#b91c1c;font-weight:600}
footer{color:#64748b;font-size:12px;margin-top:6px}
"""


# --- values ------------------------------------------------------------------------------


def _window_span(start: object, end: object) -> tuple[str, str]:
    """`17:40 → 18:40` and the day when both ends are ISO times of one day."""
    if start is None and end is None:
        return "—", ""
    first, last = str(start or ""), str(end or "")
    if _is_iso(first) and _is_iso(last) and first[:10] == last[:10]:
        return f"{_esc(first[11:16])} → {_esc(last[11:16])}", _esc(first[:10])
    return f"{_short_time(start) if start else '…'} → {_short_time(end) if end else '…'}", ""


def _header(report: MonitorReport) -> str:
    model = report.model or ServedModel()
    window = report.window or Window()
    reference = report.reference
    name = report.name or model.name or "model"
    status = report.status
    generated = report.generated_at
    sub = f"Monitoring report · generated {_esc(generated)}" if generated else "Monitoring report"
    if model.name and model.name != name:
        sub += f" · model {_esc(model.name)}"
    kind = window.kind
    if kind == "duration":
        window_sub = f"last {_duration(window.duration_s)}"
    elif kind == "records":
        window_sub = f"last {_fmt(window.records)} records"
    else:
        window_sub = _esc(kind) if kind else ""
    window_value, day = _window_span(window.start, window.end)
    if day:
        window_sub = (window_sub + " · " if window_sub else "") + day
    versions = model.versions
    total = sum(v for v in (_num(x) for x in versions.values()) if v is not None)
    version_items = []
    for key, count in versions.items():
        number = _num(count)
        share = f" ({_pct(number / total)})" if number is not None and total > 0 else ""
        version_items.append(f"v{_esc(key)}: {_fmt(count)}{share}")
    busiest = max(versions, key=lambda k: _num(versions[k]) or 0.0) if versions else None
    ref_status = reference.status if reference else None
    ref_sub_parts = []
    # The model the profile was trained with: its registered version, found in the log, else
    # its run. `version` is the profile's format, not a model's.
    if reference is not None and reference.model_version is not None:
        ref_sub_parts.append(f"model v{_esc(reference.model_version)}")
    elif reference is not None and reference.run_id:
        ref_sub_parts.append(f"run {_esc(str(reference.run_id)[:12])}")
    if reference is not None and reference.rows is not None:
        ref_sub_parts.append(f"{_fmt(reference.rows)} rows")
    tiles = [
        _tile("window", window_value, window_sub),
        _tile(
            "rows",
            _fmt(window.rows),
            _count(window.files, "file") if window.files is not None else "",
        ),
        _tile("requests", _fmt(window.requests)),
        _tile(
            "model versions",
            f"v{_esc(busiest)}" + (f" +{len(versions) - 1}" if len(versions) > 1 else "")
            if busiest is not None
            else "—",
            " · ".join(version_items),
        ),
        _tile("reference", _badge(ref_status) if ref_status else "—", " · ".join(ref_sub_parts)),
        _tile("exit code", _fmt(report.exit_code)),
    ]
    out = [
        f'<header class="top"><h1>{_esc(name)}</h1>{_badge(status, big=True)}</header>',
        f'<p class="sub">{sub}</p>',
        '<nav><a href="#violations">Violations</a><a href="#drift">Drift</a>'
        '<a href="#predictions">Predictions</a><a href="#traffic">Traffic</a>'
        '<a href="#performance">Performance &amp; KPIs</a><a href="#quality">Data quality</a>'
        + (
            '<a href="#freshness">Feature freshness</a>'
            if report.feature_freshness is not None
            else ""
        )
        + "</nav>",
        f'<div class="tiles">{"".join(tiles)}</div>',
    ]
    problems = report.problems
    if problems:
        items = "".join(
            f"<li><strong>{_esc(_or(p.status, 'problem'))}</strong>: {_esc(_or(p.message, ''))}</li>"
            for p in problems
        )
        out.append(f'<section class="problems"><h2>Problems</h2><ul>{items}</ul></section>')
    return "".join(out)


def _or(value: object, absent: str) -> object:
    """`absent` where the report does not say."""
    return absent if value is None else value


def _violations(report: MonitorReport) -> str:
    violations = report.violations
    body = (
        _table(
            [
                ("check", False),
                ("feature", False),
                ("observed", True),
                ("threshold", True),
                ("severity", False),
                ("description", False),
            ],
            [
                [
                    (_esc(_or(v.check, "")), ""),
                    (_esc(v.feature) if v.feature is not None else "—", ""),
                    (_fmt(v.observed), "n"),
                    (_fmt(v.threshold), "n"),
                    (_badge(v.severity), ""),
                    (_esc(_or(v.description, "")), ""),
                ]
                for v in violations
            ],
        )
        if violations
        else _note("No violations: every check passed.")
    )
    return f'<section id="violations"><h2>Violations ({len(violations)})</h2>{body}</section>'


def _missing_reference_sentence(report: MonitorReport, what: str) -> str:
    status = report.reference.status if report.reference else None
    if status == "missing":
        return f"No reference profile for this model: {what} not computed."
    if status == "unsupported":
        return f"The reference profile's format is not supported: {what} not computed."
    return f"No {what.split(' ')[0]} in this report (not monitored at this level)."


def _drift(report: MonitorReport) -> str:
    drift = report.drift
    title = '<section id="drift"><h2>Feature drift</h2>'
    if drift is None:
        return title + _note(_esc(_missing_reference_sentence(report, "drift was"))) + "</section>"
    out = [title]
    dataset = drift.dataset
    if dataset is not None and dataset != DatasetDrift():
        out.append(
            "<p>"
            + f"{_fmt(dataset.drifted_columns)} of {_fmt(dataset.columns)} columns drifted "
            + f"({_pct(dataset.share)}); the dataset counts as drifted from a share of "
            + f"{_pct(dataset.drift_share)}. {_drift_badge(dataset.drifted)}</p>"
        )
    features = drift.features
    if not features:
        out.append(_note("No feature was checked for drift."))
        return "".join(out) + "</section>"
    items = list(features.items())
    order = sorted(range(len(items)), key=lambda i: (items[i][1].drifted is not True, i))
    rows = []
    cards = []
    for index in order:
        name, feature = items[index]
        kind = feature.kind
        score_kind = feature.score_kind
        sign = "<" if score_kind == "p_value" else ">"
        threshold = feature.threshold
        threshold_text = f"{_esc(sign)} {_fmt(threshold)}" if threshold is not None else "—"
        rows.append(
            [
                (_esc(name), ""),
                (_esc(kind) if kind else "—", ""),
                (_esc(feature.method) if feature.method else "—", ""),
                (_fmt(feature.score), "n"),
                (threshold_text, "n"),
                (_esc(score_kind) if score_kind else "—", "muted"),
                (_drift_badge(feature.drifted), ""),
                (_badge(feature.status) if feature.status else "—", ""),
            ]
        )
        reference, current = feature.reference or {}, feature.current or {}
        footnote = ""
        if kind == "numeric":
            chart = _histogram_chart(str(name), reference, current)
        elif kind == "categorical":
            ref_counts = _float_map(reference.get("counts"))
            cur_counts = _float_map(current.get("counts"))
            chart = _category_chart(
                str(name),
                "feature",
                _shares(ref_counts) if ref_counts else None,
                _shares(cur_counts) if cur_counts else None,
            )
            if ref_counts and any(k not in ref_counts for k in cur_counts):
                footnote = " · * not in the reference"
        else:
            chart = _note(f"No chart for a feature of kind {_esc(kind)}.")
        method = _esc(feature.method or "")
        meta = f"{method} score {_fmt(feature.score)}, drifts if {threshold_text}{footnote}"
        cards.append(
            f'<figure><figcaption><span class="name">{_esc(name)}</span>{_drift_badge(feature.drifted)}'
            f'</figcaption>{chart}<div class="meta">{meta}</div></figure>'
        )
    out.append(
        _table(
            [
                ("feature", False),
                ("kind", False),
                ("method", False),
                ("score", True),
                ("threshold", True),
                ("score kind", False),
                ("drifted", False),
                ("status", False),
            ],
            rows,
        )
    )
    out.append('<h3 style="margin-top:14px">Reference vs current distribution</h3>')
    out.append(_legend() + f'<div class="charts">{"".join(cards)}</div>')
    return "".join(out) + "</section>"


def _predictions(report: MonitorReport) -> str:
    predictions = report.predictions
    out = ['<section id="predictions"><h2>Prediction distribution</h2>']
    if predictions is None:
        return out[0] + _note("No predictions in this window.") + "</section>"
    kind = predictions.kind
    drift = predictions.drift
    if drift is not None and drift != DriftVerdict():
        sign = "<" if drift.score_kind == "p_value" else ">"
        out.append(
            f"<p>{_esc(drift.method or 'drift')} score {_fmt(drift.score)}, drifts if "
            f"{_esc(sign)} {_fmt(drift.threshold)} {_drift_badge(drift.drifted)}</p>"
        )
    if kind == "regression":
        ref, cur = (
            _float_map(predictions.reference_quantiles),
            _float_map(predictions.quantiles),
        )
        keys = list(cur) + [k for k in ref if k not in cur]
        table = _table(
            [("quantile", False), ("reference", True), ("current", True)],
            [[(_esc(k), ""), (_fmt(ref.get(k)), "n"), (_fmt(cur.get(k)), "n")] for k in keys],
        )
        chart = _quantile_chart(ref, cur)
    else:
        ref_shares = _float_map(predictions.reference_class_shares)
        cur_shares = _float_map(predictions.class_shares)
        keys = list(cur_shares) + [k for k in ref_shares if k not in cur_shares]
        rows = []
        for key in keys:
            r, c = ref_shares.get(key), cur_shares.get(key)
            delta = f"{(c - r) * 100:+.1f} pt" if r is not None and c is not None else "—"
            rows.append([(_esc(key), ""), (_pct(r), "n"), (_pct(c), "n"), (delta, "n")])
        table = _table(
            [("class", False), ("reference", True), ("current", True), ("change", True)], rows
        )
        chart = _category_chart(
            "predicted class", "classes", ref_shares or None, cur_shares or None, 560
        )
    reference_shares = (
        predictions.reference_quantiles
        if kind == "regression"
        else predictions.reference_class_shares
    )
    if not _float_map(reference_shares):
        out.append(_note(_esc(_missing_reference_sentence(report, "reference shares are"))))
    out.append(_legend() + f'<div class="row"><div>{chart}</div><div>{table}</div></div>')
    return "".join(out) + "</section>"


def _traffic(report: MonitorReport) -> str:
    traffic = report.traffic
    head = '<section id="traffic"><h2>Traffic, latency and errors</h2>'
    if traffic is None:
        return head + _note("No traffic figures in this report.") + "</section>"
    tiles = [
        _tile("requests", _fmt(traffic.requests)),
        _tile("rows", _fmt(traffic.rows)),
        _tile("errors", _fmt(traffic.errors), "server errors (5xx)"),
        _tile("error rate", _pct(traffic.error_rate), "5xx share, 4xx not counted"),
    ]
    if traffic.client_errors is not None:  # reports before 4xx were counted apart have none
        tiles += [
            _tile("client errors", _fmt(traffic.client_errors), "refused requests (4xx)"),
            _tile("client error rate", _pct(traffic.client_error_rate), "of all requests"),
        ]
    latency = _float_map(traffic.latency_ms)
    chart = _latency_chart(latency) if latency else _note("No latency figures in this window.")
    return (
        head
        + f'<div class="row"><div><div class="tiles two">{"".join(tiles)}</div></div>'
        + f"<div><h3>Latency (ms)</h3>{chart}</div></div></section>"
    )


def _timeline(report: MonitorReport, history: Sequence[MonitorReport]) -> list[MonitorReport]:
    points = list(history)
    if not points or not _same_report(points[-1], report):
        points.append(report)
    return points


def _same_report(a: MonitorReport, b: MonitorReport) -> bool:
    if a is b or a == b:
        return True
    stamp = a.generated_at
    return stamp is not None and stamp == b.generated_at and a.name == b.name


def _point_label(point: MonitorReport, index: int) -> str:
    stamp = (point.window.end if point.window else None) or point.generated_at
    return html.unescape(_short_time(stamp)) if stamp else f"#{index + 1}"


def _performance(report: MonitorReport, history: Sequence[MonitorReport]) -> str:
    out = ['<section id="performance"><h2>Performance and KPIs</h2>']
    performance = report.performance
    if performance is not None:
        status = performance.status
        metric = performance.metric or "the metric"
        if status == "no_labels":
            out.append(_note(f"No labels yet: {_esc(metric)} is not measured for this window."))
        elif status == "insufficient_samples":
            out.append(
                _note(
                    f"Only {_fmt(performance.labelled)} labelled rows: {_esc(metric)} needs at least "
                    f"{_fmt(performance.min_samples)}."
                )
            )
        value, minimum = _num(performance.value), _num(performance.min)
        if value is not None:
            bad = minimum is not None and value < minimum
            tiles = [
                _tile(
                    str(metric),
                    f"{_fmt(value)} {_badge('violated' if bad else 'ok', 'below min' if bad else 'ok')}",
                ),
                _tile("baseline", _fmt(performance.baseline), "at training"),
                _tile("minimum", _fmt(performance.min)),
                _tile(
                    "labelled rows",
                    _fmt(performance.labelled),
                    f"at least {_fmt(performance.min_samples)}",
                ),
            ]
            out.append(f'<div class="tiles">{"".join(tiles)}</div>')
    else:
        out.append(_note("No labels yet: performance is not measured."))
    kpis = report.kpis
    if kpis:
        out.append(
            _table(
                [
                    ("KPI", False),
                    ("kind", False),
                    ("value", True),
                    ("min", True),
                    ("max", True),
                    ("status", False),
                ],
                [
                    [
                        (_esc(_or(k.name, "")), ""),
                        (_esc(k.kind or "—"), ""),
                        (_fmt(k.value), "n"),
                        (_fmt(k.min), "n"),
                        (_fmt(k.max), "n"),
                        (_badge(k.status), ""),
                    ]
                    for k in kpis
                ],
            )
        )
    else:
        out.append(_note("No KPIs are configured."))
    out.append(_series_section(report, history))
    return "".join(out) + "</section>"


def _series_section(report: MonitorReport, history: Sequence[MonitorReport]) -> str:
    points = _timeline(report, history)
    labels = [_point_label(p, i) for i, p in enumerate(points)]
    cards: list[str] = []

    def card(title: str, subtitle: str, chart: str, status: object = None) -> None:
        badge = _badge(status) if status is not None else ""
        cards.append(
            f'<figure><figcaption><span class="name">{_esc(title)}</span>{badge}</figcaption>'
            f'{chart}<div class="meta">{subtitle}</div></figure>'
        )

    names: list[str] = []
    for point in [report, *reversed(points)]:
        for kpi in point.kpis:
            if kpi.name is not None and kpi.name not in names:
                names.append(kpi.name)
    for name in names:
        entries = [next((k for k in p.kpis if k.name == name), None) for p in points]
        last_kpi = next((e for e in reversed(entries) if e is not None), Kpi())
        values = [None if e is None else _num(e.value) for e in entries]
        chart = _series_chart(name, values, labels, low=_num(last_kpi.min), high=_num(last_kpi.max))
        card(name, f"KPI · {_esc(last_kpi.kind or '')}", chart, last_kpi.status)

    perfs = [p.performance or Performance() for p in points]
    metric = (report.performance.metric if report.performance else None) or next(
        (p.metric for p in reversed(perfs) if p.metric), None
    )
    values = [_num(p.value) if p.metric == metric else None for p in perfs]
    if metric and any(v is not None for v in values):
        last_perf = next((p for p in reversed(perfs) if p.metric == metric), Performance())
        chart = _series_chart(
            str(metric),
            values,
            labels,
            low=_num(last_perf.min),
            baseline=_num(last_perf.baseline),
        )
        card(str(metric), "live metric on labelled rows", chart)

    shares = [_num(_dataset(p).share) for p in points]
    if any(s is not None for s in shares):
        limit = _num(_dataset(report).drift_share)
        card(
            "drifted column share",
            "share of drifted columns",
            _series_chart("drifted column share", shares, labels, high=limit, fmt=_pct),
        )
    errors = [_num(p.traffic.error_rate if p.traffic else None) for p in points]
    if any(e is not None for e in errors):
        chart = _series_chart("error rate", errors, labels, fmt=_pct)
        card("error rate", "server errors (5xx)", chart)
    refused = [_num(p.traffic.client_error_rate if p.traffic else None) for p in points]
    if any(r is not None for r in refused):
        chart = _series_chart("client error rate", refused, labels, fmt=_pct)
        card("client error rate", "refused requests (4xx)", chart)

    head = f'<h3 style="margin-top:14px">Over time ({len(points)} report{"s" if len(points) != 1 else ""})</h3>'
    if not cards:
        return head + _note("No KPI or live metric to follow over time.")
    extra = (
        _note("Only this report so far: the series grow as reports accumulate.")
        if len(points) == 1
        else ""
    )
    return head + extra + f'<div class="charts wide">{"".join(cards)}</div>'


def _dataset(report: MonitorReport) -> DatasetDrift:
    drift = report.drift
    return (drift.dataset if drift is not None else None) or DatasetDrift()


def _quality(report: MonitorReport) -> str:
    quality = report.data_quality
    head = '<section id="quality"><h2>Data quality</h2>'
    if quality is None:
        return head + _note("No data-quality checks in this report.") + "</section>"
    columns = quality.columns
    out = [head, f"<p>{_fmt(quality.violations)} data-quality violations.</p>"]
    if not columns:
        out.append(_note("No column was checked."))
        return "".join(out) + "</section>"
    rows = []
    for name, column in columns.items():
        null_rate, allowed = _num(column.null_rate), _num(column.max_null_fraction)
        out_of_range, unseen = _num(column.out_of_range), _num(column.unseen_categories)
        rows.append(
            [
                (_esc(name), ""),
                (_fmt(column.rows), "n"),
                (
                    _pct(column.null_rate),
                    "n bad"
                    if null_rate is not None and allowed is not None and null_rate > allowed
                    else "n",
                ),
                (_pct(column.max_null_fraction), "n"),
                (_fmt(column.out_of_range), "n bad" if out_of_range else "n"),
                (_fmt(column.unseen_categories), "n bad" if unseen else "n"),
            ]
        )
    out.append(
        _table(
            [
                ("column", False),
                ("rows", True),
                ("null rate", True),
                ("max null", True),
                ("out of range", True),
                ("unseen categories", True),
            ],
            rows,
        )
    )
    return "".join(out) + "</section>"


def _freshness(report: MonitorReport) -> str:
    """The feature store's views: how old the newest online value is, against its bound."""
    section = report.feature_freshness
    if section is None:
        return ""
    out = ['<section id="freshness"><h2>Feature freshness</h2>']
    store = section.online_store
    checked = f" at {_esc(section.checked_at)}" if section.checked_at else ""
    if store is not None and store != OnlineStore():
        where = f" ({_esc(store.path)})" if store.path else ""
        out.append(f"<p>Online store {_esc(store.type)}{where}, read{checked}.</p>")
    if section.status == "unavailable":
        out.append(_note(f"The store could not be read: {_esc(section.message or '')}"))
    rows = []
    for view, verdict in section.views.items():
        status = verdict.status
        age, bound = _num(verdict.age_s), _num(verdict.max_age_s)
        badge = {
            "ok": _badge("ok"),
            "violated": _badge("violated", "stale"),
            "not_materialised": _badge("alert", "never materialised"),
        }.get(str(status), _badge(status))
        source = verdict.source
        basis = "materialised up to" if verdict.basis == "materialized_until" else "newest"
        rows.append(
            [
                (_esc(view), ""),
                (_esc(verdict.newest) if verdict.newest else "—", "n"),
                (_age(age), "n bad" if status != "ok" else "n"),
                (_age(bound), "n"),
                (_esc(f"{source}, {basis}") if source else "—", "muted"),
                (badge, ""),
            ]
        )
    if rows:
        columns = [("view", False), ("newest value", True), ("age", True), ("max age", True),
                   ("source", False), ("status", False)]  # fmt: skip
        out.append(_table(columns, rows))
    else:
        out.append(_note("The store declares no view."))
    return "".join(out) + "</section>"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rollback(report: MonitorReport) -> str:
    """The rollback triggers judged for each serving version, and what was done (level 2+)."""
    section = report.rollback
    if section is None:
        return ""
    out = ['<section id="rollback"><h2>Rollback triggers</h2>']
    rows = []
    for arm, judged in section.arms.items():
        grace = judged.grace or Grace()
        waiting = "" if grace.over else f" (grace: {_fmt(grace.samples)} of {_fmt(grace.needed)})"
        for t in judged.judged:
            rows.append(
                [
                    (_esc(f"{arm} v{judged.version}{waiting}"), ""),
                    (_esc(t.trigger), ""),
                    (_fmt(t.value), "n bad" if t.fired else "n"),
                    (f"{_fmt(t.samples)} / {_fmt(t.min_samples)}", "n"),
                    (f"{_fmt(t.fired_in)} of {_fmt(t.n)} (k={_fmt(t.k)})", "n"),
                    (_badge("alert", "decides") if t.decides else _badge("ok", "no"), ""),
                ]
            )
    if rows:
        columns = [("serving", False), ("trigger", False), ("value", True), ("samples / min", True),
                   ("fired in", True), ("decides", False)]  # fmt: skip
        out.append(_table(columns, rows))
    else:
        out.append(_note("No version was judged in this window."))
    for action in section.actions:
        out.append(
            f"<p>{_badge('alert', str(action.event))} {_esc(action.arm)}: "
            f"{_esc(action.from_version)} &rarr; {_esc(action.to_version or '—')} "
            f"({_esc((action.why or {}).get('trigger'))})</p>"
        )
    return "".join(out) + "</section>"


def _footer(report: MonitorReport) -> str:
    parts = [f"{_esc(report.schema or REPORT_SCHEMA)} v{_esc(report.schema_version or 1)}"]
    if report.generated_at:
        parts.append(f"generated {_esc(report.generated_at)}")
    return f"<footer>{' · '.join(parts)}</footer>"


def render_dashboard(
    report: MonitorReport | Mapping[str, Any],
    history: Sequence[MonitorReport | Mapping[str, Any]],
) -> str:
    """The report (with `history`, oldest first, for the time series) as one HTML document.
    Reports of any version, typed or as read from their files (anything else is skipped)."""
    current = read_report(report)
    past = [read_report(h) for h in history if isinstance(h, MonitorReport | Mapping)]
    return _document(current, past)


def _document(report: MonitorReport, history: Sequence[MonitorReport]) -> str:
    name = report.name or (report.model.name if report.model else None) or "model"
    body = "".join(
        [
            _header(report),
            _violations(report),
            _drift(report),
            _predictions(report),
            _traffic(report),
            _performance(report, history),
            _quality(report),
            _freshness(report),
            _rollback(report),
            _footer(report),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(name)} · monitoring</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )

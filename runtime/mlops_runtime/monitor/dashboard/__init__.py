"""A monitoring report as one self-contained HTML page.

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

from mlops_runtime.monitor.dashboard.page import render_dashboard

__all__ = ["render_dashboard"]

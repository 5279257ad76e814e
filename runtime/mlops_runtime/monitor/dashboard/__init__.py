"""A monitoring report as one self-contained HTML page (see `page`): `format` escapes and
formats values, `charts` draws the inline SVG, `page` lays out the sections."""

from mlops_runtime.monitor.dashboard.page import render_dashboard

__all__ = ["render_dashboard"]

"""The monitor's HTML dashboard: valid, self-contained, escaped, deterministic, and drawn by a
real browser (headless Chromium) with its charts on the page.

`rich_example()` builds a report with six numeric and two categorical features and ten past
reports; scripts/dashboard_screenshot.py renders the same example for the docs.
"""

from __future__ import annotations

import copy
import math
import subprocess
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.monitor.dashboard import render_dashboard
from tests.system_programs import require

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CURRENT_RGB = (0x25, 0x63, 0xEB)
REFERENCE_RGB = (0x94, 0xA3, 0xB8)

NUMERIC = {
    "tenure": (0.0, 72.0),
    "monthly_charges": (18.0, 120.0),
    "total_charges": (0.0, 8000.0),
    "age": (18.0, 90.0),
    "support_calls": (0.0, 10.0),
    "usage_hours": (0.0, 200.0),
}
CATEGORICAL = {
    "plan": {"basic": 2400, "pro": 1200, "business": 400},
    "region": {"north": 1100, "south": 1000, "east": 900, "west": 700, "central": 300},
}
HOSTILE_FEATURE = "<script>alert(1)</script>"
HOSTILE_CATEGORY = '"><img src=x onerror=alert(1)>'
HOSTILE_MODEL = "</title><script>alert(2)</script>"
HOSTILE_KPI = "<svg onload=alert(3)>"
HOSTILE_DESCRIPTION = "<b>bold</b> & <a href='javascript:alert(4)'>link</a>"


# --- the example -------------------------------------------------------------------------------


def _bell(bins: int, centre: float, width: float, total: int) -> list[int]:
    weights = [math.exp(-(((i + 0.5 - centre) / width) ** 2) / 2) for i in range(bins)]
    scale = sum(weights)
    return [round(total * w / scale) for w in weights]


def _numeric_feature(index: int, low: float, high: float, step: int) -> dict[str, Any]:
    edges = [round(low + (high - low) * i / 10, 6) for i in range(11)]
    shift = 0.3 * step if index == 0 else 0.05 * step * (index % 3)
    over = 40 + 6 * step if index == 1 else 0
    reference = [0, *_bell(10, 5.0, 1.8 + 0.2 * index, 4000), 0]
    current = [0, *_bell(10, 5.0 + shift, 1.8 + 0.2 * index, 1200), over]
    drifted = index == 0 and step >= 5
    score = round(0.5 / (1 + step), 4) if index == 0 else round(0.3 + 0.05 * index, 4)
    return {
        "kind": "numeric",
        "method": "ks",
        "score": score,
        "threshold": 0.05,
        "score_kind": "p_value",
        "drifted": drifted,
        "status": "ok",
        "reference": {"edges": edges, "counts": reference},
        "current": {"edges": edges, "counts": current},
    }


def _categorical_feature(counts: Mapping[str, int], step: int, unseen: bool) -> dict[str, Any]:
    current = {
        k: max(1, v // 4 + (step * 7 if i == 1 else 0)) for i, (k, v) in enumerate(counts.items())
    }
    if unseen:
        current["enterprise"] = 2 + step
    return {
        "kind": "categorical",
        "method": "chi2",
        "score": 0.4,
        "threshold": 0.05,
        "score_kind": "p_value",
        "drifted": False,
        "status": "ok",
        "reference": {"counts": dict(counts)},
        "current": {"counts": current},
    }


def rich_report(step: int = 10) -> dict[str, Any]:
    """The report of hour `step` (0-10) of a churn model whose `tenure` drifts."""
    hour = 8 + step
    features: dict[str, Any] = {
        name: _numeric_feature(i, low, high, step)
        for i, (name, (low, high)) in enumerate(NUMERIC.items())
    }
    for i, (name, counts) in enumerate(CATEGORICAL.items()):
        features[name] = _categorical_feature(counts, step, unseen=i == 0)
    drifted = sum(1 for f in features.values() if f["drifted"])
    roc_auc = round(0.95 - 0.006 * step, 4)
    churn_share = round(0.3 + 0.06 * math.sin(step), 4)
    violations: list[dict[str, Any]] = []
    if features["tenure"]["drifted"]:
        violations.append(
            {"check": "data_drift", "feature": "tenure", "observed": features["tenure"]["score"], "threshold": 0.05,
             "severity": "warning", "description": "tenure: KS p-value below the threshold"}
        )  # fmt: skip
    if roc_auc < 0.9:
        violations.append(
            {"check": "performance", "feature": None, "observed": roc_auc, "threshold": 0.9,
             "severity": "alert", "description": "roc_auc below its minimum of 0.9"}
        )  # fmt: skip
    return {
        "schema": "mlops-monitor-report",
        "version": 1,
        "name": "churn",
        "generated_at": f"2026-12-01T{hour:02d}:40:00Z",
        "status": "alert" if roc_auc < 0.9 else ("warning" if violations else "ok"),
        "exit_code": 2 if roc_auc < 0.9 else (1 if violations else 0),
        "window": {"kind": "duration", "duration_s": 3600, "records": None,
                   "start": f"2026-12-01T{hour - 1:02d}:40:00Z", "end": f"2026-12-01T{hour:02d}:40:00Z",
                   "rows": 1234, "requests": 1200, "files": 3},
        "model": {"name": "churn", "versions": {"3": 1200 - 10 * step, "2": 34 + 10 * step}},
        # `version` is the profile's format; the profile was trained for model version 3.
        "reference": {"status": "ok", "rows": 4000, "version": 2, "run_id": "0f3a9c1d2e4b5a6c",
                      "model_version": "3"},
        "traffic": {"requests": 1200, "rows": 1234, "errors": 12 + step, "error_rate": round((12 + step) / 1200, 4),
                    "client_errors": 30 + 4 * step, "client_error_rate": round((30 + 4 * step) / 1200, 4),
                    "latency_ms": {"p50": 1.2, "p90": 2.0, "p95": 2.4, "p99": 4.1, "max": 9.0}},
        "predictions": {"kind": "classification", "class_shares": {"0": round(1 - churn_share, 4), "1": churn_share},
                        "reference_class_shares": {"0": 0.65, "1": 0.35},
                        "drift": {"method": "jensenshannon", "score": 0.03, "threshold": 0.1, "drifted": False}},
        "drift": {"status": "ok",
                  "dataset": {"drifted_columns": drifted, "columns": len(features),
                              "share": round(drifted / len(features), 4), "drift_share": 0.5, "drifted": False},
                  "features": features},
        "data_quality": {"columns": {
            name: {"rows": 1234, "null_rate": 0.02 if name == "age" else 0.0, "max_null_fraction": 0.01,
                   "out_of_range": 40 + 6 * step if name == "monthly_charges" else 0,
                   "unseen_categories": 2 + step if name == "plan" else 0}
            for name in features
        }, "violations": 3},
        "performance": {"status": "ok", "metric": "roc_auc", "value": roc_auc, "baseline": 0.95, "min": 0.9,
                        "labelled": 800, "min_samples": 100},
        "kpis": [
            {"name": "churn_share", "kind": "prediction_share", "value": churn_share, "min": 0.25, "max": 0.35,
             "status": "ok" if 0.25 <= churn_share <= 0.35 else "violated"},
            {"name": "mean_monthly_charges", "kind": "feature_mean", "value": round(64 + 0.8 * step, 2),
             "min": 50.0, "max": 80.0, "status": "ok"},
        ],
        "violations": violations,
        "problems": [],
    }  # fmt: skip


def rich_example() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The current report and the ten before it, oldest first."""
    return rich_report(10), [rich_report(step) for step in range(10)]


def minimal_report() -> dict[str, Any]:
    """Level 0: no drift, no reference profile, no labels, no KPIs."""
    return {
        "schema": "mlops-monitor-report",
        "version": 1,
        "name": "iris",
        "generated_at": "2026-12-01T18:40:00Z",
        "status": "ok",
        "exit_code": 0,
        "window": {"kind": "records", "duration_s": None, "records": 500, "start": None, "end": None,
                   "rows": 500, "requests": 480, "files": 1},
        "model": {"name": "iris", "versions": {"1": 480}},
        "reference": {"status": "missing", "rows": None, "version": None},
        "traffic": {"requests": 480, "rows": 500, "errors": 0, "error_rate": 0.0, "latency_ms": None},
        "predictions": {"kind": "classification", "class_shares": {"setosa": 0.3, "versicolor": 0.4, "virginica": 0.3},
                        "reference_class_shares": None, "drift": None},
        "drift": None,
        "data_quality": None,
        "performance": {"status": "no_labels", "metric": "accuracy", "value": None},
        "kpis": [],
        "violations": [],
        "problems": [{"status": "missing_reference", "message": "no reference profile next to the model"}],
    }  # fmt: skip


def regression_report() -> dict[str, Any]:
    report = rich_report(3)
    report["predictions"] = {
        "kind": "regression",
        "quantiles": {"0.05": 40.0, "0.5": 140.0, "0.95": 290.0},
        "reference_quantiles": {"0.05": 35.0, "0.5": 130.0, "0.95": 270.0},
        "drift": {"method": "wasserstein", "score": 0.2, "threshold": 0.1, "score_kind": "distance", "drifted": True},
    }  # fmt: skip
    report["performance"] = {
        "status": "insufficient_samples",
        "metric": "rmse",
        "labelled": 12,
        "min_samples": 100,
    }
    return report


def hostile_report() -> dict[str, Any]:
    report = rich_report(10)
    report["name"] = HOSTILE_MODEL
    report["model"]["versions"] = {"<i>3</i>": 10}
    features = report["drift"]["features"]
    features[HOSTILE_FEATURE] = copy.deepcopy(features["tenure"])
    features["plan"]["current"]["counts"][HOSTILE_CATEGORY] = 5
    report["data_quality"]["columns"][HOSTILE_FEATURE] = {"rows": 1, "null_rate": 0.0}
    report["kpis"].append(
        {"name": HOSTILE_KPI, "kind": "<u>k</u>", "value": 1.0, "min": 0.0, "max": 2.0}
    )
    report["violations"].append(
        {"check": "data_drift", "feature": HOSTILE_FEATURE, "observed": "<em>x</em>", "threshold": 0.05,
         "severity": "warning", "description": HOSTILE_DESCRIPTION}
    )  # fmt: skip
    report["problems"].append({"status": "<h1>", "message": "</section><script>alert(5)</script>"})
    return report


# --- parsing -----------------------------------------------------------------------------------

VOID = frozenset(
    {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source"}
)


class StrictDocument(HTMLParser):
    """Checks nesting (every end tag closes the innermost open element) and collects tags,
    attributes, text and the drawn elements of each <svg>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.doctype: str | None = None
        self.outside_svg: list[str] = []
        self.charts: list[dict[str, Any]] = []
        self._chart: dict[str, Any] | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self._chart = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if self._chart is None:
            self.outside_svg.append(tag)
        if tag == "svg":
            self._chart = {"attrs": attributes, "count": {}}
            self.charts.append(self._chart)
        elif self._chart is not None:
            self._chart["count"][tag] = self._chart["count"].get(tag, 0) + 1
            # Also per class: `bar` counts the data bars, `line.bound` the dashed bounds.
            for cls in (attributes.get("class") or "").split():
                key = cls if cls == "bar" else f"{tag}.{cls}"
                self._chart["count"][key] = self._chart["count"].get(key, 0) + 1


def parse(document: str) -> StrictDocument:
    parser = StrictDocument()
    parser.feed(document)
    parser.close()
    return parser


def assert_valid_self_contained(document: str) -> StrictDocument:
    doc = parse(document)
    assert doc.doctype is not None and doc.doctype.lower() == "doctype html"
    assert doc.errors == []
    assert doc.stack == [], f"unclosed elements {doc.stack}"
    names = [tag for tag, _ in doc.tags]
    for tag in ("html", "head", "body", "title", "style"):
        assert doc.outside_svg.count(tag) == 1, tag
    for forbidden in ("script", "link", "img", "iframe", "object", "embed", "base"):
        assert forbidden not in names, forbidden
    for tag, attrs in doc.tags:
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)
            if key in ("src", "href", "xlink:href", "action"):
                assert value is not None and value.startswith("#"), (tag, key, value)
                assert "http://" not in value and "https://" not in value
    style = document[document.index("<style>") : document.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert doc.charts, "no chart"
    for chart in doc.charts:
        attrs = chart["attrs"]
        width, height = int(attrs["width"]), int(attrs["height"])
        assert attrs["viewbox"] == f"0 0 {width} {height}"
        assert 100 <= width <= 1280 and 40 <= height <= 600
        assert sum(chart["count"].get(t, 0) for t in ("rect", "polyline", "circle")) > 0, attrs
    return doc


def charts_of(doc: StrictDocument, kind: str) -> dict[str, dict[str, int]]:
    return {
        str(c["attrs"].get("data-name") or i): c["count"]
        for i, c in enumerate(doc.charts)
        if c["attrs"].get("data-chart") == kind
    }


# --- tests -------------------------------------------------------------------------------------


def test_rich_report_is_a_valid_document_with_every_chart() -> None:
    report, history = rich_example()
    doc = assert_valid_self_contained(render_dashboard(report, history))
    text = " ".join(doc.text)
    features = charts_of(doc, "feature")
    assert sorted(features) == sorted([*NUMERIC, *CATEGORICAL])
    # Ten inner bins, two bars each; monthly_charges adds the over-range bin (its share > 0).
    assert features["tenure"]["bar"] == 20
    assert features["monthly_charges"]["bar"] == 22
    assert features["monthly_charges"]["rect"] == 23  # plus the shaded out-of-range slot
    # Three reference categories and the unseen `enterprise`, one pair of bars each.
    assert features["plan"]["bar"] == 8
    assert features["region"]["bar"] == 10
    assert charts_of(doc, "classes")["predicted class"]["bar"] == 4
    assert next(iter(charts_of(doc, "latency").values()))["bar"] == 5
    series = charts_of(doc, "series")
    assert set(series) == {
        "churn_share",
        "mean_monthly_charges",
        "roc_auc",
        "drifted column share",
        "error rate",
        "client error rate",
    }
    for name, counts in series.items():
        assert counts["polyline"] == 1 and counts["circle"] == 11, name
    # min and max bounds of both KPIs, the min of the live metric (plus its baseline).
    assert series["churn_share"]["line.bound"] == series["mean_monthly_charges"]["line.bound"] == 2
    assert series["roc_auc"]["line.bound"] == series["roc_auc"]["line.baseline"] == 1
    assert "line.bound" not in series["error rate"]
    assert "line.bound" not in series["client error rate"]
    # churn_share leaves [0.25, 0.35] four times, the live metric falls below 0.9 twice.
    assert series["churn_share"]["circle.bad"] == 4
    assert series["roc_auc"]["circle.bad"] == 2
    # Drifted features come first in the table and the chart grid.
    assert next(iter(features)) == "tenure"
    for phrase in ("Violations (2)", "data_drift", "roc_auc below its minimum", "1 of 8 columns drifted",
                   "Over time (11 reports)", "jensenshannon"):  # fmt: skip
        assert phrase in text, phrase


class SvgTitles(HTMLParser):
    """The <title> texts of each chart's elements (not the chart's own title), per chart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.charts: dict[str, list[str]] = {}
        self._chart: str | None = None
        self._depth = 0  # elements open inside the current <svg>
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self._chart = str(dict(attrs).get("data-name") or len(self.charts))
            self.charts[self._chart] = []
            self._depth = 0
        elif self._chart is not None:
            self._depth += 1
            self._in_title = tag == "title" and self._depth > 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None
        elif self._chart is not None:
            self._depth -= 1
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._chart is not None and self._in_title:
            self.charts[self._chart].append(data)


def test_each_bin_and_category_is_titled_once() -> None:
    report, history = rich_example()
    titles = SvgTitles()
    titles.feed(render_dashboard(report, history))
    for name in [*NUMERIC, *CATEGORICAL, "predicted class"]:
        seen = titles.charts[name]
        assert seen and len(seen) == len(set(seen)), (name, seen)
    tenure = [t for t in titles.charts["tenure"] if t.startswith("[")]
    # Ten inner bins, each titled once with both of its shares.
    assert len(tenure) == 10 and all("reference" in t and "current" in t for t in tenure)
    assert "[21.6, 28.8): reference 15.7%, current 1.1%" in tenure
    plan = titles.charts["plan"]
    assert "enterprise (not in the reference): reference 0.0%, current 1.1%" in plan
    assert sum(t.startswith("basic:") for t in plan) == 1


def reference_tile(document: str) -> str:
    start = document.index('<div class="k">reference</div>')
    return document[start : document.index("</div></div>", start)]


def test_the_reference_tile_names_the_model_version_of_the_profile() -> None:
    report, _ = rich_example()
    tile = reference_tile(render_dashboard(report, []))
    assert "model v3" in tile and "4,000 rows" in tile
    assert "model v2" not in tile, "2 is the profile's format version"
    # A report written before the model version was recorded: the run, never the format.
    older = copy.deepcopy(report)
    del older["reference"]["model_version"]
    tile = reference_tile(render_dashboard(older, []))
    assert "model v" not in tile and "run 0f3a9c1d2e4b" in tile


def test_client_errors_are_shown_apart_from_server_errors() -> None:
    report, _ = rich_example()
    text = " ".join(parse(render_dashboard(report, [])).text)
    for phrase in ("client errors", "70", "client error rate", "5.8%", "server errors (5xx)"):
        assert phrase in text, phrase
    older = copy.deepcopy(report)
    for key in ("client_errors", "client_error_rate"):
        del older["traffic"][key]
    doc = parse(render_dashboard(older, []))
    assert "client errors" not in " ".join(doc.text)
    assert "client error rate" not in charts_of(doc, "series")


def test_minimal_level0_report_shows_sentences_instead_of_sections() -> None:
    doc = assert_valid_self_contained(render_dashboard(minimal_report(), []))
    text = " ".join(doc.text)
    assert "No reference profile for this model: drift was not computed." in text
    assert "No labels yet: accuracy is not measured for this window." in text
    assert "No KPIs are configured." in text
    assert "No violations: every check passed." in text
    assert "No data-quality checks in this report." in text
    assert "no reference profile next to the model" in text
    assert charts_of(doc, "feature") == {}
    # Only current shares: one bar per class.
    assert charts_of(doc, "classes")["predicted class"]["bar"] == 3
    assert "Only this report so far" in text


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"drift": {"features": {"x": {"kind": "numeric", "reference": None}}}},
        regression_report(),
    ],
    ids=["empty", "broken-feature", "regression"],
)
def test_sparse_and_regression_reports_still_render(report: dict[str, Any]) -> None:
    document = render_dashboard(report, [])
    doc = parse(document)
    assert doc.errors == [] and doc.stack == []
    text = " ".join(doc.text)
    if report.get("predictions", {}).get("kind") == "regression":
        quantiles = charts_of(doc, "quantiles")
        (counts,) = quantiles.values()
        assert counts["polyline"] == 2 and counts["circle"] == 6
        assert "Only 12 labelled rows: rmse needs at least 100." in text
    elif report:
        assert "No histogram for this feature." in text
    else:
        assert "No predictions in this window." in text and "No traffic figures" in text


def test_hostile_names_are_escaped_text() -> None:
    document = render_dashboard(hostile_report(), [])
    doc = assert_valid_self_contained(document)
    assert "<script" not in document.lower()
    assert "<img" not in document.lower() and "<em>" not in document and "<i>3" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    text = "".join(doc.text)
    for hostile in (
        HOSTILE_FEATURE,
        HOSTILE_MODEL,
        HOSTILE_KPI,
        HOSTILE_DESCRIPTION,
        "<em>x</em>",
        "v<i>3</i>",
    ):
        assert hostile in text, hostile
    names = [tag for tag, _ in doc.tags]
    assert "b" not in names and "u" not in names and "em" not in names
    assert names.count("a") == 6  # the section links only
    assert names.count("h1") == 1 and names.count("svg") == len(doc.charts)
    # The hostile feature is charted under its own (escaped) name, the category is a bar label.
    assert HOSTILE_FEATURE in charts_of(doc, "feature")
    assert charts_of(doc, "feature")["plan"]["bar"] == 10
    assert any(HOSTILE_CATEGORY[:8] in t for t in doc.text)


def test_output_is_deterministic_and_history_may_include_the_current_report() -> None:
    report, history = rich_example()
    first = render_dashboard(report, history)
    assert render_dashboard(copy.deepcopy(report), copy.deepcopy(history)) == first
    assert render_dashboard(report, [*history, copy.deepcopy(report)]) == first
    shorter = render_dashboard(report, history[1:])
    assert shorter != first and "Over time (10 reports)" in shorter


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def colour_count(pixels: Sequence[tuple[int, tuple[int, ...]]], rgb: tuple[int, int, int]) -> int:
    return sum(count for count, colour in pixels if colour[:3] == rgb)


def test_headless_chromium_draws_the_page(tmp_path: Path) -> None:
    from PIL import Image

    report, history = rich_example()
    document = render_dashboard(report, history)
    page = tmp_path / "dashboard.html"
    page.write_text(document, encoding="utf-8")
    png = tmp_path / "dashboard.png"
    shot = run_chromium(
        tmp_path / "profile-shot", f"--screenshot={png}", "--window-size=1280,2400", page.as_uri()
    )
    assert png.is_file(), shot.stderr[-2000:]
    with Image.open(png) as image:
        assert image.size == (1280, 2400)
        pixels = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert pixels is not None and len(pixels) > 100
    total = 1280 * 2400
    assert max(count for count, _ in pixels) < 0.9 * total  # not one flat colour
    assert colour_count(pixels, (255, 255, 255)) < 0.9 * total
    assert colour_count(pixels, CURRENT_RGB) > 2000  # current bars and lines were painted
    assert colour_count(pixels, REFERENCE_RGB) > 2000  # and the reference bars

    dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    live = parse(dom.stdout)
    source = parse(document)
    assert len(live.charts) == len(source.charts) > 10
    for chart in live.charts:
        assert "viewbox" in chart["attrs"]
        assert sum(chart["count"].get(t, 0) for t in ("rect", "polyline")) > 0, chart["attrs"]
    features = charts_of(live, "feature")
    assert len(features) == 8 and all(counts["bar"] >= 8 for counts in features.values())
    series = charts_of(live, "series")
    assert len(series) == 6 and all(counts["polyline"] >= 1 for counts in series.values())

"""The monitor watches the feature store: the age of each view's newest online value, read from
real Feast stores materialised from the simulated churn tables, against the view's max_age."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.feature_store.conftest import StoreProject, make_store_project
from tests.runtime.serving_fixtures import SPECS, run_stage
from tests.system_programs import require

pytestmark = pytest.mark.slow
VIEW = "activity"
MAX_AGE_S = 40 * 86400.0  # the spec's max_age: 40d
GAUGE = 'mlops_monitor_feature_age_seconds{model="churn",view="activity"}'


def monitor(project: Path, python: str, **env: str) -> tuple[int, dict[str, Any]]:
    """One real monitor run; its exit code and the report it wrote."""
    result = run_stage(project, "monitor", python=python, **env)
    assert result.returncode in (0, 1, 3), result.stdout + result.stderr
    report = json.loads((project / "reports/monitor/latest.json").read_text())
    assert report["exit_code"] == result.returncode
    return result.returncode, report


def textfile(project: Path) -> str:
    text = (project / "reports/monitor/mlops_monitor.prom").read_text()
    lint = subprocess.run(
        [require("promtool"), "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    return text


def gauge(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[-1])


def freshness_violations(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in report["violations"] if v["check"] == "feature_freshness"]


def newest_event(activity: pd.DataFrame, end: pd.Timestamp) -> pd.Timestamp:
    """The newest event time a materialisation up to `end` put in the online store."""
    stamps = pd.to_datetime(activity["event_timestamp"], utc=True)
    return pd.Timestamp(stamps[stamps <= end].max())


def iso(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def materialise(store: StoreProject, **env: str) -> pd.Timestamp:
    start = (store.activity["event_timestamp"].min() - pd.Timedelta(days=1)).isoformat()
    store.ok("features-materialize", "--start", start, **env)
    return pd.Timestamp.now(tz="UTC")


@pytest.fixture(scope="module")
def stale(tmp_path_factory: pytest.TempPathFactory, feast_interpreter: str) -> StoreProject:
    """Materialised today from data that ended 60 days ago: every value is past max_age. At
    level 3, with a webhook receiver, so the alert is also sent."""
    spec = (SPECS / "churn.mlops.yaml").read_text(encoding="utf-8")
    assert "\nlevel: 2\n" in spec
    spec = spec.replace("\nlevel: 2\n", "\nlevel: 3\n")
    spec += "alerts:\n  - {kind: webhook, url_env: ALERT_WEBHOOK_URL}\n"
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(days=60)
    store = make_store_project(tmp_path_factory.mktemp("stale"), end=end, text=spec)
    materialise(store)
    return store


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on loopback: its URL and the JSON bodies posted to it."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            bodies.append(json.loads(raw))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fresh_store_reports_the_age_of_its_newest_value(
    churn: StoreProject, tmp_path: Path
) -> None:
    expected = newest_event(churn.activity, pd.Timestamp.now(tz="UTC"))
    before = time.time()
    # An empty log folder: the project is shared with the serving tests, which log traffic.
    quiet = str(tmp_path / "no-traffic")
    code, report = monitor(churn.path, churn.python, MLOPS_PREDICTION_LOG_DIR=quiet)
    after = time.time()
    section = report["feature_freshness"]
    view = section["views"][VIEW]
    assert view["newest"] == iso(expected)
    assert view["source"] == "online_store" and view["basis"] == "newest_event_time"
    assert before - expected.timestamp() <= view["age_s"] <= after - expected.timestamp()
    assert view["max_age_s"] == MAX_AGE_S
    assert view["status"] == "ok" and section["status"] == "ok" and section["stale_views"] == []
    assert section["online_store"] == {
        "type": "sqlite",
        "path": "feature_repo/data/online_store.db",
    }
    assert freshness_violations(report) == []
    # No traffic yet: a warning for the empty window, never an alert from a fresh store.
    assert code == 1 and {p["status"] for p in report["problems"]} == {"empty_window"}
    prom = textfile(churn.path)
    assert gauge(prom, GAUGE) == pytest.approx(view["age_s"])
    assert gauge(prom, 'mlops_monitor_feature_fresh{model="churn",view="activity"}') == 1.0
    bound = 'mlops_monitor_feature_max_age_seconds{model="churn",view="activity"}'
    assert gauge(prom, bound) == MAX_AGE_S
    newest = 'mlops_monitor_feature_newest_timestamp_seconds{model="churn",view="activity"}'
    assert gauge(prom, newest) == expected.timestamp()


def test_the_sqlite_store_is_read_without_feast(churn: StoreProject) -> None:
    """This interpreter has no Feast: the default store's figure needs none."""
    assert subprocess.run([sys.executable, "-c", "import feast"], capture_output=True).returncode
    expected = newest_event(churn.activity, pd.Timestamp.now(tz="UTC"))
    _, report = monitor(churn.path, sys.executable)
    view = report["feature_freshness"]["views"][VIEW]
    assert view["newest"] == iso(expected) and view["status"] == "ok"
    assert not any(p["status"] == "feature_freshness_unavailable" for p in report["problems"])


def test_a_stale_view_alerts_with_an_empty_window(
    stale: StoreProject, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    expected = newest_event(stale.activity, pd.Timestamp.now(tz="UTC"))
    url, bodies = webhook
    # No proxy between the monitor and the receiver on loopback.
    env = {"ALERT_WEBHOOK_URL": url, "no_proxy": "*", "NO_PROXY": "*"}
    code, report = monitor(stale.path, stale.python, **env)
    assert code == 3 and report["status"] == "alert"
    # Freshness does not wait for traffic: the window is empty, the store is still judged.
    assert report["window"]["rows"] == 0
    assert "empty_window" in {p["status"] for p in report["problems"]}
    view = report["feature_freshness"]["views"][VIEW]
    assert view["status"] == "violated" and view["newest"] == iso(expected)
    assert 59 * 86400 < view["age_s"] < 61 * 86400
    (violation,) = freshness_violations(report)
    assert violation["severity"] == "alert" and violation["feature"] == VIEW
    assert violation["observed"] == pytest.approx(view["age_s"])
    assert violation["threshold"] == MAX_AGE_S
    assert (
        VIEW in violation["description"] and "past its bound of 40.0 d" in violation["description"]
    )
    assert report["feature_freshness"]["stale_views"] == [VIEW]
    prom = textfile(stale.path)
    assert gauge(prom, GAUGE) > MAX_AGE_S
    assert gauge(prom, 'mlops_monitor_feature_fresh{model="churn",view="activity"}') == 0.0
    assert gauge(prom, 'mlops_monitor_violations{model="churn",check="feature_freshness"}') == 1
    html = (stale.path / "reports/monitor/dashboard.html").read_text()
    section = html[html.index('<section id="freshness">') :]
    section = section[: section.index("</section>")]
    assert VIEW in section and "stale" in section and iso(expected) in section
    assert "60.0 d" in section and "40.0 d" in section
    assert 'href="#freshness"' in html
    # Level 3: the alert reached the webhook, with the sentence naming the view and its bound.
    (body,) = bodies
    assert body["status"] == "alert" and body["model"] == "churn"
    assert [v["check"] for v in body["violations"]] == ["feature_freshness"]
    assert "feature_freshness: feature view activity" in body["text"]
    assert "past its bound of 40.0 d" in body["text"]


def test_a_view_never_materialised_alerts_until_it_is_loaded(
    tmp_path: Path, feast_interpreter: str
) -> None:
    store = make_store_project(tmp_path / "p")  # applied: the view's table exists, empty
    code, report = monitor(store.path, store.python)
    assert code == 3
    view = report["feature_freshness"]["views"][VIEW]
    assert view["status"] == "not_materialised" and view["newest"] is None
    assert view["age_s"] is None
    (violation,) = freshness_violations(report)
    assert violation["severity"] == "alert" and violation["feature"] == VIEW
    assert "never materialised" in violation["description"]
    prom = textfile(store.path)
    assert gauge(prom, 'mlops_monitor_feature_fresh{model="churn",view="activity"}') == 0.0
    assert GAUGE not in prom
    html = (store.path / "reports/monitor/dashboard.html").read_text()
    assert "never materialised" in html

    # Feast writes event_ts as a naive UTC time taken for local time; on a host whose clock is
    # not UTC the monitor must still recover the true event time.
    india = {"TZ": "Asia/Kolkata"}
    loaded = materialise(store, **india)
    code, report = monitor(store.path, store.python, **india)
    view = report["feature_freshness"]["views"][VIEW]
    assert view["newest"] == iso(newest_event(store.activity, loaded)), view
    assert view["status"] == "ok" and freshness_violations(report) == [] and code != 3

    # No database at all (the store was never applied on this host): the same alert, and the
    # monitor does not create one.
    database = store.path / "feature_repo/data/online_store.db"
    database.unlink()
    code, report = monitor(store.path, store.python)
    assert code == 3 and not database.exists()
    assert report["feature_freshness"]["views"][VIEW]["status"] == "not_materialised"


def test_another_online_store_is_read_from_the_registry(
    tmp_path: Path, feast_interpreter: str
) -> None:
    store = make_store_project(tmp_path / "p")
    start = store.activity["event_timestamp"].min() - pd.Timedelta(days=1)
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(minutes=30)
    store.ok("features-materialize", "--start", start.isoformat(), "--end", end.isoformat())
    # A remote feature server instead of the SQLite file (nothing listens there): the monitor
    # must not need the online store itself.
    config = store.path / "feature_repo/feature_store.yaml"
    text = config.read_text()
    assert "  type: sqlite\n  path: data/online_store.db\n" in text
    config.write_text(
        text.replace(
            "  type: sqlite\n  path: data/online_store.db\n",
            "  type: remote\n  path: http://127.0.0.1:9\n",
        )
    )
    code, report = monitor(store.path, store.python)
    section = report["feature_freshness"]
    view = section["views"][VIEW]
    assert section["online_store"] == {"type": "remote", "path": None}
    assert view["source"] == "registry" and view["basis"] == "materialized_until"
    assert view["newest_epoch"] == end.timestamp() and view["status"] == "ok"
    assert code != 3
    # Without Feast that figure cannot be read: a problem of the report, not a stale verdict.
    code, report = monitor(store.path, sys.executable)
    assert code == 1 and freshness_violations(report) == []
    assert report["feature_freshness"]["status"] == "unavailable"
    assert "feature_freshness_unavailable" in {p["status"] for p in report["problems"]}

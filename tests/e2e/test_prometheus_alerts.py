"""A real Prometheus (Debian's /usr/bin/prometheus) scrapes the serving container with the
scrape config the compose target generates and evaluates the generated level-3 alert rules:
through its HTTP API a serving alert goes pending, then firing, then clears once its cause is
gone. The causes are honest: a server whose registry has no champion answers 503 until the
alias is set; batch requests of a thousand rows are slow.

The project is the level-3 example with `deploy.target: compose` (the stack a user runs on one
machine). What the test rewrites in the generated files, and only that, is what differs
between the compose network and this host, and the durations (see `on_this_host`).

The engine and a local base image come from scripts/container-engine; where it cannot make
an engine usable the tests skip, saying why, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.images import (
    SPECS,
    Engine,
    engine,
    example_requests,
    free_port,
    open_to_the_app_user,
    post,
    project_image,
    run_ok,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prometheus-alerts")]

PROMETHEUS = Path("/usr/bin/prometheus")
NAME = "breast-cancer"
# Generated durations are minutes; here each minute lasts a second (see on_this_host).
SCALE_S = 60


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only: the spec's `on:` keys stay strings, as the compiler reads them."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def compose_variant(root: Path) -> Path:
    """The level-3 example deployed with compose: its spec under `root`, built and trained."""
    shutil.copytree(SPECS, root / "specs")
    path = root / "specs" / f"{NAME}.mlops.yaml"
    spec = yaml.load(path.read_text(), Loader=_SpecLoader)
    spec["deploy"]["target"] = "compose"
    # What runs on a cluster only (the compiler refuses it with compose), and the CI files,
    # which this test does not look at.
    for key in ("autoscale", "kserve", "pipeline", "replicas"):
        spec["deploy"].pop(key, None)
    spec.pop("ci", None)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    run_ok([sys.executable, "-m", "mlops_compiler", "build", f"specs/{NAME}.mlops.yaml"], root)
    project = root / "generated" / NAME
    run_ok([sys.executable, "-m", "mlops_runtime", "train"], project)
    return project


def window_in_seconds(expr: str) -> str:
    """`[5m]` -> `[5s]`: the expression's range windows, a minute to a second."""
    return re.sub(r"\[(\d+)m\]", r"[\1s]", expr)


def for_in_seconds(duration: str) -> str:
    """`10m` -> `10s`."""
    minutes = re.fullmatch(r"(\d+)m", duration)
    assert minutes is not None, duration
    return f"{minutes[1]}s"


def on_this_host(project: Path, port: int, into: Path) -> tuple[Path, dict[str, Any]]:
    """The generated prometheus.yml and alert-rules.yml, rewritten only where this host differs
    from the compose network, written side by side into `into` (so the generated relative
    `rule_files` entry still finds the rules). Returns the config's path and the rules."""
    config = yaml.safe_load((project / "deploy/compose/prometheus.yml").read_text())
    assert config["rule_files"] == ["alert-rules.yml"], config
    # Scraped and evaluated every second, not every 15 s: Prometheus has no flag for either.
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # On the compose network the server is `serve:8080`; here its port is published on
    # 127.0.0.1. node-exporter (the monitor's gauges) does not run here, so its job goes: the
    # monitor's alerts then have no series and stay inactive.
    assert jobs[NAME]["static_configs"] == [{"targets": ["serve:8080"]}], jobs[NAME]
    jobs[NAME]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    config["scrape_configs"] = [jobs[NAME]]
    (into / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    # The spec cannot declare the alerts' `for:` or rate windows (10m over 5m windows, so a
    # deploy's first slow or failed requests do not page): each generated minute becomes a
    # second here, so that the test runs in about a minute. Nothing else in the expressions
    # changes.
    rules = yaml.safe_load((project / "monitoring/alert-rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        rule["for"] = for_in_seconds(rule["for"])
        rule["expr"] = window_in_seconds(rule["expr"])
    (into / "alert-rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    return into / "prometheus.yml", rules


def matchers_sorted(expr: str) -> str:
    """The expression with each selector's label matchers in name order, as Prometheus prints
    a parsed query."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ",".join(sorted(m[1].split(","))) + "}", expr)


def get(url: str, timeout: float = 5) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            return response.status, (json.loads(body) if body[:1] in b"[{" else body.decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(every)


@dataclass
class Traffic:
    """Requests sent in a loop from a thread; the body can be changed while it runs."""

    url: str
    body: Any
    pause_s: float
    statuses: list[tuple[float, int]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            status, _ = post(self.url, self.body, timeout=30)
            self.statuses.append((time.monotonic(), status))
            self.seconds.append(time.monotonic() - sent)
            self.stop.wait(self.pause_s)

    def start(self, senders: int = 1) -> None:
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(senders)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def since(self, t: float) -> list[int]:
        return [s for at, s in list(self.statuses) if at >= t]


@dataclass(frozen=True)
class Stack:
    project: Path
    podman: Engine
    container: str
    base: str
    prometheus: str
    rules: dict[str, Any]

    def api(self, path: str) -> Any:
        status, body = get(f"{self.prometheus}/api/v1/{path}")
        assert status == 200 and body["status"] == "success", (path, status, body)
        return body["data"]

    def alert(self, name: str) -> dict[str, Any] | None:
        found = [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]
        assert len(found) <= 1, found
        return found[0] if found else None


# Through the runtime's own code: the registry's champion alias removed, as if no model had
# been promoted yet, and then set, as a user's manual promotion does (recorded in the history).
REGISTRY = """
import sys
from mlops_runtime.project import load_project
from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.registry_versions import promote
from mlops_runtime.rollback.stage import model_name
from mlops_runtime.tracking.store import absolute_uri, connect, resolve_tracking_uri

project = load_project()
uri = absolute_uri(resolve_tracking_uri(project.config), project.root)
client, name = connect(project.config, uri=uri), model_name(project.config)
if sys.argv[1] == "remove":
    client.delete_registered_model_alias(name, "champion")
    print("no champion")
else:
    promote(
        client, name, history.history_path(project.root, project.config), alias="champion",
        version=sys.argv[1], why={"trigger": "manual", "reason": "test"}, by="test",
    )
    print("champion", sys.argv[1])
"""


def registry(project: Path, action: str) -> str:
    return run_ok([sys.executable, "-c", REGISTRY, action], project)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    podman = engine()
    if not PROMETHEUS.is_file():
        pytest.fail(f"{PROMETHEUS} is missing (Debian's prometheus package)", pytrace=False)
    root = tmp_path_factory.mktemp("alerts")
    project = compose_variant(root)
    image = project_image(podman, project)
    # The server starts while the registry has no champion: it answers 503 until one is set.
    assert registry(project, "remove").strip() == "no champion"
    log_dir, reports = root / "prediction_log", root / "reports"
    for folder in (log_dir, reports):
        folder.mkdir()
    open_to_the_app_user(project, log_dir, reports)
    port = free_port()
    name = f"mlops-alerts-{port}"
    run = podman.run(
        "run", "--detach", "--name", name,
        "--user", "10001:10001", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--publish", f"127.0.0.1:{port}:8080",
        "--volume", f"{project}:{project}",
        "--volume", f"{log_dir}:/app/prediction_log",
        "--volume", f"{reports}:/app/reports",
        "--env", f"MLFLOW_TRACKING_URI=sqlite:///{project}/mlruns.db",
        "--env", "MLOPS_RELOAD_INTERVAL_S=1",
        image.tag,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                "the server answering, unready",
                lambda: (r := get(f"{base}/ready"))[0] == 503 and "no model" in str(r[1]),
                timeout=120,
                every=0.5,
            )
        except AssertionError:
            logs = podman.run("logs", name)
            raise AssertionError(logs.stdout[-3000:] + logs.stderr[-3000:]) from None
        folder = root / "prometheus"
        (folder / "data").mkdir(parents=True)
        config, rules = on_this_host(project, port, folder)
        check = run_ok(["/usr/bin/promtool", "check", "config", str(config)], folder)
        assert "SUCCESS" in check, check
        web = free_port()
        log = (folder / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prom = f"http://127.0.0.1:{web}"
        started = prometheus
        wait_for(
            "Prometheus ready",
            lambda: started.poll() is None and get(f"{prom}/-/ready")[0] == 200,
            timeout=60,
        )
        yield Stack(project, podman, name, base, prom, rules)
    finally:
        if prometheus is not None:
            prometheus.kill()
            prometheus.wait(timeout=30)
        podman.run("rm", "--force", name)


def test_prometheus_scrapes_the_server_and_loads_every_generated_rule(stack: Stack) -> None:
    def up() -> list[dict[str, Any]]:
        targets = stack.api("targets")["activeTargets"]
        return [t for t in targets if t["health"] == "up"]

    (target,) = wait_for("the server's target up", up, timeout=30)
    assert target["labels"]["job"] == NAME
    assert target["scrapeUrl"] == f"{stack.base}/metrics"

    (group,) = stack.api("rules")["groups"]
    loaded = {r["name"]: r for r in group["rules"]}
    generated = {r["alert"]: r for r in stack.rules["groups"][0]["rules"]}
    assert group["name"] == f"mlops-{NAME}"
    assert loaded.keys() == generated.keys()
    for alert, rule in generated.items():
        assert matchers_sorted(loaded[alert]["query"]) == matchers_sorted(rule["expr"]), alert
        assert loaded[alert]["duration"] == int(rule["for"].rstrip("s")), alert
    # Every rule evaluates (a wrong matcher or function would show as health "err").
    wait_for(
        "every rule evaluated",
        lambda: all(r["health"] == "ok" for g in stack.api("rules")["groups"] for r in g["rules"]),
        timeout=10,
    )


@dataclass
class Seen:
    """The states an alert went through, in order, with when each began (monotonic)."""

    changes: list[tuple[float, str]] = field(default_factory=list)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def first(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for at, state in self.changes:
            out.setdefault(state, at)
        return out

    def held(self, state: str, until: str) -> float:
        """How long `state` lasted before `until` first began."""
        end = self.first[until]
        start = max(at for at, s in self.changes if s == state and at < end)
        return end - start


def watch(stack: Stack, name: str, seen: Seen, until: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            targets = [(t["health"], t["lastError"]) for t in stack.api("targets")["activeTargets"]]
            raise AssertionError(f"{name}: {seen.changes} in {timeout} s; targets {targets}")
        alert = stack.alert(name)
        state = "inactive" if alert is None else alert["state"]
        if not seen.changes or seen.changes[-1][1] != state:
            seen.changes.append((time.monotonic(), state))
        if alert is not None:
            seen.alerts.setdefault(state, alert)
        time.sleep(0.2)


def test_the_error_rate_alert_fires_while_predictions_fail_and_clears_once_a_model_serves(
    stack: Stack,
) -> None:
    endpoint, record = example_requests(stack.project)["predict"]
    status, answer = post(stack.base + endpoint, record)
    assert status == 503, (status, answer)
    assert stack.alert("MlopsErrorRateHigh") is None
    traffic = Traffic(stack.base + endpoint, record, pause_s=0.05)
    traffic.start()
    try:
        seen = Seen()
        watch(stack, "MlopsErrorRateHigh", seen, lambda: "firing" in seen.first, timeout=60)
        assert set(traffic.since(0)) == {503}
        held = seen.held("pending", "firing")
        # `for: 10s` (the generated 10m): pending that long before it fires, give or take an
        # evaluation.
        assert held >= 8, held
        firing = seen.alerts["firing"]
        assert firing["labels"] == {
            "alertname": "MlopsErrorRateHigh",
            "severity": "critical",
            "model": NAME,
        }
        assert float(firing["value"]) == 1.0, firing
        assert "5xx responses of breast-cancer is 1.000" in firing["annotations"]["description"]

        # The cause removed: the champion is set, the server loads it within its reload
        # interval and answers 200, and the alert clears once the 5 s window holds no error.
        promoted = time.monotonic()
        assert registry(stack.project, "1").strip() == "champion 1"
        wait_for("the server serving version 1", lambda: 200 in traffic.since(promoted), 30)
        ok_since = min(at for at, s in traffic.statuses if at >= promoted and s == 200)
        cleared = Seen()
        watch(stack, "MlopsErrorRateHigh", cleared, lambda: "inactive" in cleared.first, 60)
        assert set(traffic.since(ok_since)) == {200}
        print(
            f"error rate: pending->firing {held:.1f} s, "
            f"cleared {cleared.first['inactive'] - ok_since:.1f} s after the first 200"
        )
    finally:
        traffic.close()
    # The predictions answered: no 5xx left in the window, so nothing pending either.
    assert stack.alert("MlopsErrorRateHigh") is None


def test_the_latency_alert_fires_on_slow_batches_and_clears_on_single_requests(
    stack: Stack,
) -> None:
    # Its own precondition, not the error-rate test's leftover: a champion is served.
    if get(f"{stack.base}/ready")[0] != 200:
        registry(stack.project, "1")
    wait_for("the server ready", lambda: get(f"{stack.base}/ready")[0] == 200, 60)
    endpoint, record = example_requests(stack.project)["predict"]
    # Batches just under the server's body limit (max_body_bytes, 1 MB), each row its own.
    rows = 900_000 // len(json.dumps(record))
    batch = [{**record, "mean_radius": 1.0 + i / rows} for i in range(rows)]
    status, answer = post(stack.base + endpoint, batch)
    assert status == 200 and len(answer["predictions"]) == rows, (status, str(answer)[:300])
    assert stack.alert("MlopsLatencyP99High") is None
    # One such batch takes the server about 20 ms: four clients sending them without a pause
    # are more than its one process answers at once, so requests wait, as under a load that
    # grew past what the deployment was sized for.
    traffic = Traffic(stack.base + endpoint, batch, pause_s=0)
    traffic.start(senders=4)
    try:
        seen = Seen()
        watch(stack, "MlopsLatencyP99High", seen, lambda: "firing" in seen.first, timeout=60)
        held = seen.held("pending", "firing")
        assert held >= 8, held
        firing = seen.alerts["firing"]
        assert firing["labels"]["severity"] == "warning"
        assert float(firing["value"]) > 50, firing
        # Single records again: fast, so the p99 of the 5 s window drops under the bound.
        traffic.body = record
        single = time.monotonic()
        batches = sorted(traffic.seconds)
        cleared = Seen()
        watch(stack, "MlopsLatencyP99High", cleared, lambda: "inactive" in cleared.first, 60)
        assert set(traffic.since(0)) == {200}
        median_ms = batches[len(batches) // 2] * 1000
        print(
            f"latency: {rows}-row batches answered in {median_ms:.0f} ms (median, by the "
            f"clients), p99 {float(firing['value']):.0f} ms, pending->firing {held:.1f} s, "
            f"cleared {cleared.first['inactive'] - single:.1f} s after single requests"
        )
    finally:
        traffic.close()

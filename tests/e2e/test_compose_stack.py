"""The level-2 example's generated compose stack, run for real with podman-compose: the
services from the project's image come up hardened, the server becomes healthy and ready and
answers exactly as the local serve stage does, the monitor job reports on the server's
prediction log, and `down -v` leaves no container, pod, network or volume behind.

The stack runs as a user without internet would run it: compose.yaml with the generated
compose.serve-only.yaml (node-exporter, Prometheus and Grafana, whose images cannot be pulled
here, stay out), and a test override for what only this machine needs (below). The engine
and a local base image come from scripts/container-engine; where it cannot make an engine
usable the tests skip, saying why, except under CI=true, where they fail.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import podman_compose  # type: ignore[import-untyped]  # a test dependency (pyproject, [test])
import pytest
import yaml

from tests.e2e.images import (
    ENV,
    SPECS,
    Engine,
    engine,
    example_requests,
    free_port,
    local_serve,
    open_to_the_app_user,
    post,
    project_image,
    trained_project,
    wait_ready,
    without_ids,
)

# One worker holds the module's stack (its tests share it, in this order).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("compose-stack")]

OBSERVABILITY = {"node-exporter", "prometheus", "grafana"}
EXIT_CODES = {0: "ok", 1: "warning", 3: "alert"}  # the monitor's (docs/runtime-exit-codes.md)


@dataclass
class Stack:
    project: Path
    podman: Engine
    name: str  # the compose project's name
    image: str
    base: str
    env: dict[str, str]
    files: list[str]
    # What the tests sent to the stack's server, for the monitor's report to account for.
    predictions: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        files = [a for f in self.files for a in ("-f", f)]
        return subprocess.run(
            [sys.executable, podman_compose.__file__, "-p", self.name, *files, *args],
            cwd=self.project / "deploy/compose",
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def containers(self) -> dict[str, dict[str, Any]]:
        """The stack's containers by service name, as podman inspects them."""
        label = f"label=io.podman.compose.project={self.name}"
        ids = self.podman.run("ps", "--all", "--quiet", "--filter", label).stdout.split()
        if not ids:
            return {}
        inspected = json.loads(self.podman.run("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def volume(self, name: str) -> Path:
        """Where the stack's named volume `name` is on this host."""
        found = self.podman.run(
            "volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.name}_{name}"
        )
        assert found.returncode == 0, found.stderr
        return Path(found.stdout.strip())


# What only this machine needs, on top of the generated files:
# - the image the image stage built for this test (tests/e2e/images.py), rather than the
#   moving tag `localhost:5000/penguins:latest` a user builds, which other runs on the
#   machine could move under this one;
# - the registry is the project's SQLite file (MLFLOW_TRACKING_URI=sqlite:///<project>/...):
#   the project folder is bound at the same path, so it and the artifact paths it records
#   resolve inside the containers, as test_image_runs.py does with --volume.
OVERRIDE = """\
services:
  serve:
    image: {image}
    volumes: ["{project}:{project}"]
  monitor:
    image: {image}
    volumes: ["{project}:{project}"]
  chown-volumes:
    image: {image}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    podman = engine()
    root = tmp_path_factory.mktemp("compose")
    project = trained_project("penguins", root)
    image = project_image(podman, project)
    open_to_the_app_user(project)
    override = root / "compose.test.yaml"
    override.write_text(OVERRIDE.format(image=image.tag, project=project))
    port = free_port()
    env = {
        **ENV,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlruns.db",
        "MLOPS_PORT": str(port),
        "COMPOSE_PROFILES": "",
    }
    running = Stack(
        project=project,
        podman=podman,
        name=f"mlops-compose-{port}",
        image=image.tag,
        base=f"http://127.0.0.1:{port}",
        env=env,
        files=["compose.yaml", "compose.serve-only.yaml", str(override)],
    )
    try:
        up = running.compose("up", "--detach", "--no-build")
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        try:
            wait_ready(
                running.base,
                lambda: running.containers()["serve"]["State"]["Running"] is True,
                timeout=180,
            )
        except AssertionError:
            logs = running.compose("logs")
            raise AssertionError(logs.stdout[-3000:] + logs.stderr[-3000:]) from None
        yield running
    finally:
        running.compose("--profile", "monitor", "down", "--volumes")


@pytest.fixture(scope="module")
def local(stack: Stack) -> Iterator[str]:
    with local_serve(stack.project) as base:
        yield base


def training_rows() -> list[dict[str, Any]]:
    """The example's training data without its target: 344 varied rows, some with gaps."""
    contract = yaml.safe_load((SPECS / "penguins.mlops.yaml").read_text())["data"]["contract"]
    types = {name: column["type"] for name, column in contract["columns"].items()}
    rows = []
    with (SPECS / "data/penguins.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            del row["species"]
            rows.append(
                {
                    k: None
                    if v == ""
                    else int(v)
                    if types[k] == "int"
                    else float(v)
                    if types[k] == "float"
                    else v
                    for k, v in row.items()
                }
            )
    return rows


def test_up_starts_only_the_services_of_the_projects_image_hardened(stack: Stack) -> None:
    containers = stack.containers()
    assert set(containers) == {"serve", "chown-volumes"}, "observability left out, no monitor"
    assert not OBSERVABILITY & set(containers)
    for service in containers.values():
        assert service["ImageName"] == stack.image
    chown = containers["chown-volumes"]["State"]
    assert chown["Status"] == "exited" and chown["ExitCode"] == 0
    serve = containers["serve"]
    # What the generated compose file asks for, as podman-compose passed it to podman.
    assert serve["Config"]["User"] == "10001:10001"
    assert serve["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges" in serve["HostConfig"]["SecurityOpt"]
    assert not serve["EffectiveCaps"]
    assert "/tmp" in serve["HostConfig"]["Tmpfs"]
    assert serve["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert serve["HostConfig"]["Memory"] == 1024**3
    assert serve["HostConfig"]["MemoryReservation"] == 512 * 1024**2
    assert serve["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    (published,) = serve["HostConfig"]["PortBindings"]["8080/tcp"]
    assert published == {"HostIp": "127.0.0.1", "HostPort": stack.env["MLOPS_PORT"]}
    mounts = {m["Destination"]: m for m in serve["Mounts"]}
    for target, volume in (("/app/prediction_log", "prediction-log"), ("/app/reports", "reports")):
        assert mounts[target]["Type"] == "volume"
        assert mounts[target]["Name"] == f"{stack.name}_{volume}"


def test_the_server_becomes_healthy_by_the_compose_healthcheck(stack: Stack) -> None:
    """Podman runs healthchecks on systemd timers, which this machine lacks: the check the
    compose file declares is run here once, as a timer would, and sets the health."""
    serve = stack.containers()["serve"]
    declared = yaml.safe_load((stack.project / "deploy/compose/compose.yaml").read_text())
    assert (
        serve["Config"]["Healthcheck"]["Test"]
        == declared["services"]["serve"]["healthcheck"]["test"]
    )
    checked = stack.podman.run("healthcheck", "run", serve["Id"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert stack.containers()["serve"]["State"]["Health"]["Status"] == "healthy"


def test_requests_answer_exactly_as_the_local_serve_stage(stack: Stack, local: str) -> None:
    examples = example_requests(stack.project)
    for protocol, (endpoint, body) in examples.items():
        status, answer = post(stack.base + endpoint, body)
        expected_status, expected = post(local + endpoint, body)
        assert status == expected_status == 200, (protocol, answer)
        assert without_ids(answer) == without_ids(expected), protocol
        stack.predictions.append(predicted_class(answer))
    endpoint, _ = examples["predict"]
    for row in training_rows():
        status, answer = post(stack.base + endpoint, row)
        expected_status, expected = post(local + endpoint, row)
        assert status == expected_status == 200, (row, answer)
        assert without_ids(answer) == without_ids(expected), row
        assert answer["model_version"] == "1"
        stack.predictions.append(answer["prediction"])
    assert len(set(stack.predictions)) == 3, "varied rows: every species predicted"


def predicted_class(answer: Any) -> str:
    """The one predicted class of an example's answer, whichever its protocol."""
    if "prediction" in answer:
        return str(answer["prediction"])
    if "predictions" in answer:
        (one,) = answer["predictions"]
        return str(one["prediction"] if isinstance(one, dict) else one)
    outputs = {o["name"]: o for o in answer["outputs"]}
    (one,) = outputs["predict"]["data"]
    return str(one)


def test_the_monitor_job_reports_on_the_servers_prediction_log(stack: Stack) -> None:
    sent = len(stack.predictions)
    assert sent > 300, "the requests test runs first"
    log = stack.volume("prediction-log")
    deadline = time.monotonic() + 30
    while (logged := sum(len(p.read_bytes().splitlines()) for p in log.glob("*.jsonl"))) < sent:
        assert time.monotonic() < deadline, f"{logged} of {sent} requests in the prediction log"
        time.sleep(0.5)
    # podman-compose leaves out a service whose profile is not asked for, even one named.
    ran = stack.compose("--profile", "monitor", "run", "--rm", "monitor", timeout=600)
    assert ran.returncode in EXIT_CODES, ran.stdout + ran.stderr
    # Its stdout: the names of the containers it started first (chown-volumes), the summary.
    (summary,) = [ln for ln in ran.stdout.splitlines() if ln.startswith("monitor penguins:")]
    status = EXIT_CODES[ran.returncode]
    assert summary.startswith(f"monitor penguins: {status} ({sent} predictions"), summary
    written = summary.rsplit(" -> ", 1)[1]
    assert written.startswith("reports/monitor/report-") and written.endswith(".json")
    reports = stack.volume("reports")
    report = json.loads((reports / written.removeprefix("reports/")).read_bytes())
    assert (reports / "monitor/latest.json").read_bytes() == (
        reports / written.removeprefix("reports/")
    ).read_bytes()
    assert report["status"] == status and report["exit_code"] == ran.returncode
    assert report["window"]["rows"] == report["traffic"]["requests"] == sent
    assert report["traffic"]["errors"] == 0
    assert report["model"]["versions"] == {"1": sent}
    # Trained on the host, not in the stack: the reference comes from the tracking store.
    assert report["reference"]["status"] == "ok", report["reference"]
    assert report["drift"] is not None
    shares = {k: v / sent for k, v in Counter(stack.predictions).items()}
    assert report["predictions"]["class_shares"] == pytest.approx(shares)
    # Automatic rollback (level 2) judged the champion on this window and left it serving.
    champion = report["rollback"]["arms"]["champion"]
    assert champion["version"] == "1" and champion["rows"] == sent
    assert not report["rollback"]["actions"]
    assert (reports / "monitor/mlops_monitor.prom").stat().st_size > 0
    assert "monitor" not in stack.containers(), "--rm removed the job's container"


def test_down_removes_containers_pod_network_and_volumes(stack: Stack) -> None:
    """Last: it stops the module's stack."""
    volumes = [f"{stack.name}_prediction-log", f"{stack.name}_reports"]
    for volume in volumes:
        assert stack.podman.run("volume", "exists", volume).returncode == 0, volume
    down = stack.compose("--profile", "monitor", "down", "--volumes")
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert stack.containers() == {}
    assert stack.podman.run("pod", "exists", f"pod_{stack.name}").returncode == 1
    assert stack.podman.run("network", "exists", f"{stack.name}_default").returncode == 1
    for volume in volumes:
        assert stack.podman.run("volume", "exists", volume).returncode == 1, volume

"""The serving image, built by the image stage with a real engine and no network, runs
hardened (its own non-root user, read-only root, no capabilities, no-new-privileges) and
answers exactly as the local serve stage does.

The engine and a local base image come from scripts/container-engine; where it cannot make
an engine usable the tests skip, saying why, except under CI=true, where they fail.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.images import (
    Engine,
    engine,
    example_requests,
    free_port,
    local_serve,
    open_to_the_app_user,
    post,
    project_image,
    run_ok,
    trained_project,
    wait_ready,
    without_ids,
)

# One worker holds the module's container (its tests share it, in this order).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image-runs")]


@dataclass(frozen=True)
class Running:
    project: Path
    podman: Engine
    name: str
    base: str
    log_dir: Path

    def inspect(self, template: str) -> str:
        return self.podman.run("inspect", "--format", template, self.name).stdout.strip()


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    podman = engine()
    root = tmp_path_factory.mktemp("image")
    project = trained_project("penguins", root)
    image = project_image(podman, project)
    if image.built is not None:
        assert "with podman" in image.built, image.built
    # The registry is the project's, mounted at the same path, so the artifact locations it
    # records resolve inside the container; the app's writable folders are volumes.
    log_dir, reports = root / "prediction_log", root / "reports"
    for folder in (log_dir, reports):
        folder.mkdir()
    open_to_the_app_user(project, log_dir, reports)
    port = free_port()
    name = f"mlops-test-{port}"
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
    base = f"http://127.0.0.1:{port}"

    running = Running(project, podman, name, base, log_dir)
    try:
        try:
            wait_ready(base, lambda: running.inspect("{{.State.Running}}") == "true")
        except AssertionError:
            logs = podman.run("logs", name)
            raise AssertionError(logs.stdout[-3000:] + logs.stderr[-3000:]) from None
        yield running
    finally:
        podman.run("rm", "--force", name)


@pytest.fixture(scope="module")
def local(container: Running) -> Iterator[str]:
    with local_serve(container.project) as base:
        yield base


def test_the_container_runs_hardened_as_its_own_user(container: Running) -> None:
    inspected = container.podman.run("inspect", container.name)
    (info,) = json.loads(inspected.stdout)
    assert info["Config"]["User"] == "10001:10001"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]
    assert not info["EffectiveCaps"]


def test_the_image_runs_the_library_versions_the_host_trained_with(container: Running) -> None:
    """A tracking database one MLflow wrote must be read by the same MLflow (an image with a
    newer one upgraded nothing and the host could no longer open the registry), and the model
    must be unpickled by the scikit-learn that fitted it."""
    from importlib import metadata

    names = ["mlflow", "scikit-learn", "numpy", "pandas", "scipy", "joblib"]
    probe = (
        "import json, sys; from importlib import metadata; "
        "print(json.dumps({n: metadata.version(n) for n in sys.argv[1:]}))"
    )
    ran = container.podman.run("exec", container.name, "python", "-c", probe, *names)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {name: metadata.version(name) for name in names}


def test_200_requests_answer_exactly_as_the_local_serve_stage(
    container: Running, local: str
) -> None:
    requests = example_requests(container.project)
    endpoint, record = requests["predict"]
    bodies = [
        ("predict", endpoint, {**record, "bill_length_mm": 35.0 + i * 0.1}) for i in range(200)
    ]
    bodies += [(p, *requests[p]) for p in ("invocations", "v2") for _ in range(5)]
    for protocol, path, body in bodies:
        status, answer = post(container.base + path, body)
        expected_status, expected = post(local + path, body)
        assert status == expected_status == 200, (protocol, answer)
        assert without_ids(answer) == without_ids(expected), protocol


def test_the_prediction_log_lands_on_the_mounted_volume(container: Running) -> None:
    deadline = time.monotonic() + 30
    while not any(p.is_file() and p.stat().st_size for p in container.log_dir.rglob("*")):
        assert time.monotonic() < deadline, "nothing in the mounted prediction log"
        time.sleep(0.5)


def serving_version(base: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{base}/ready", timeout=5) as response:
            return response.headers.get("X-Model-Version")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_serving(base: str, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (seen := serving_version(base)) != version:
        assert time.monotonic() < deadline, f"still serving version {seen}, not {version}"
        time.sleep(0.5)


def test_the_container_follows_a_promotion_and_a_rollback_without_restarting(
    container: Running,
) -> None:
    """The model is not in the image: the running container follows the registry's alias."""
    started = container.inspect("{{.State.StartedAt}}")
    assert serving_version(container.base) == "1"
    # v2 (the spec promotes by hand, so training makes it the challenger), then promoted
    # as a user would, through the runtime's own recorded promotion.
    run_ok([sys.executable, "-m", "mlops_runtime", "train"], container.project)
    promoted = run_ok([sys.executable, "-c", PROMOTE_V2], container.project)
    assert "champion 2" in promoted, promoted
    wait_serving(container.base, "2")
    rolled = run_ok(
        [sys.executable, "-m", "mlops_runtime", "rollback", "--reason", "test"], container.project
    )
    assert "rolled back from 2 to 1" in rolled, rolled
    wait_serving(container.base, "1")
    endpoint, record = example_requests(container.project)["predict"]
    for _ in range(20):
        status, answer = post(container.base + endpoint, record)
        assert status == 200, answer
    assert container.inspect("{{.State.StartedAt}}") == started
    assert container.inspect("{{.RestartCount}}") == "0"


# What a user's manual promotion does: the champion alias moves, recorded in the history.
PROMOTE_V2 = """
from mlops_runtime.project import load_project
from mlops_runtime.tracking import serving_history as history
from mlops_runtime.tracking.registry_versions import promote
from mlops_runtime.rollback.stage import model_name
from mlops_runtime.tracking.store import absolute_uri, connect, resolve_tracking_uri

project = load_project()
uri = absolute_uri(resolve_tracking_uri(project.config), project.root)
promote(
    connect(project.config, uri=uri), model_name(project.config),
    history.history_path(project.root, project.config), alias="champion", version="2",
    why={"trigger": "manual", "reason": "test"}, by="test",
)
print("champion 2")
"""


def test_sigterm_drains_in_flight_requests(container: Running) -> None:
    """Last: it stops the module's container."""
    endpoint, record = example_requests(container.project)["predict"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, container.base + endpoint, record) for _ in range(40)]
        time.sleep(0.05)
        stopped = container.podman.run("stop", "--time", "30", container.name)
        results = []
        for future in futures:
            try:
                results.append(future.result()[0])
            except (urllib.error.URLError, ConnectionError) as exc:
                # Refused before it was accepted: never in flight, so not a failed request.
                results.append(f"refused: {exc}")
    assert stopped.returncode == 0, stopped.stderr
    assert all(r == 200 or str(r).startswith("refused") for r in results), results
    assert results.count(200) >= 1
    code = container.inspect("{{.State.ExitCode}}")
    assert code == "0", code

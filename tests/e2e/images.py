"""The serving images the deployment tests run, built once per machine by the image stage.

An example's image holds its generated project files and the runtime, never a model (the
container pulls the registry's alias at start), so every test of one example can run the
same image against its own trained project. The tag names a digest of what goes into the
image: the project's build inputs, the runtime's source and the host's library versions; under the runtime's
cross-process lock, the first test to need it builds it and the others (other pytest-xdist
workers, later runs on the same machine) find it in the engine's store.

The engine and a local base image come from scripts/container-engine; where it cannot make
an engine usable the tests skip, saying why, except under CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_runtime.container.image import (
    allowed_files,
    cache_root,
    host_pins,
    locked,
    source_digest,
)

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")} | {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
# The app's user in the image (the Dockerfile's useradd).
APP_USER = "10001:10001"


@dataclass(frozen=True)
class Engine:
    podman: str
    base_image: str

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.podman, *args], capture_output=True, text=True, check=False, timeout=timeout
        )


def engine() -> Engine:
    """podman and the local base image, or a skip (a failure under CI=true) saying why."""
    made = subprocess.run(
        [str(REPO / "scripts/container-engine")],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    podman = shutil.which("podman")
    if made.returncode != 0 or podman is None:
        reason = f"no container engine ({made.stderr.strip() or 'podman not found'})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI=true, so a missing engine fails the test", pytrace=False)
        pytest.skip(reason)
    return Engine(podman, made.stdout.strip().splitlines()[-1])


def run_ok(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> str:
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or ENV,
        check=False,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{argv}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def trained_project(spec: str, root: Path) -> Path:
    """The example `spec` (e.g. "penguins") built and trained under `root`: its project."""
    shutil.copytree(SPECS, root / "specs")
    run_ok([sys.executable, "-m", "mlops_compiler", "build", f"specs/{spec}.mlops.yaml"], root)
    project = root / "generated" / spec
    run_ok([sys.executable, "-m", "mlops_runtime", "train"], project)
    return project


def image_digest(project: Path) -> str:
    """What decides the image's content: the build context's project files, the runtime and
    the host's library versions."""
    digest = hashlib.sha256()
    for name in sorted(["Dockerfile", ".dockerignore", *allowed_files(project)]):
        path = project / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(source_digest(REPO / "runtime").encode())
    # The image takes this machine's library versions: other versions, another image.
    digest.update("\n".join(host_pins()).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    engine: Engine
    tag: str
    # The image stage's output when this call built it; None when it was in the store.
    built: str | None


def project_image(engine: Engine, project: Path) -> Image:
    """The image of `project`, built by the image stage unless the store has it already."""
    name = json.loads((project / "config.json").read_text())["name"]
    tag = f"localhost/mlops-test-{name}:{image_digest(project)}"
    with locked(cache_root() / f"test-image-{name}.lock"):
        if engine.run("image", "exists", tag).returncode == 0:
            return Image(engine, tag, None)
        started = time.monotonic()
        out = run_ok(
            [
                sys.executable,
                "-m",
                "mlops_runtime",
                "image",
                "--base-image",
                engine.base_image,
                tag,
            ],
            project,
            env={**ENV, "MLOPS_CONTAINER_ENGINE": "podman"},
            timeout=1800,
        )
        took = time.monotonic() - started
        prune_older(engine, tag)
        return Image(engine, tag, f"{out}(took {took:.0f} s)")


def prune_older(engine: Engine, tag: str) -> None:
    """Remove this example's images of earlier inputs (about a gigabyte each); one a
    container still uses stays (no --force)."""
    repository = tag.rsplit(":", 1)[0]
    listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}", repository)
    for old in listed.stdout.split():
        if old != tag:
            engine.run("rmi", old)


def open_to_the_app_user(*folders: Path) -> None:
    """Let the container's own user read and write host folders mounted into it."""
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o777 if path.is_dir() else 0o666)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(base: str, alive: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert alive(), "the server stopped before it was ready"
        time.sleep(0.5)
    raise AssertionError(f"{base} was not ready in {timeout} s")


def post(url: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def example_requests(project: Path) -> dict[str, tuple[str, Any]]:
    """The project's example request of each protocol: (endpoint, body)."""
    config = json.loads((project / "config.json").read_text())
    return {
        e["protocol"]: (e["endpoint"], json.loads((project / e["file"]).read_text()))
        for e in config["serving"]["example_requests"]
    }


def without_ids(value: Any) -> Any:
    """A response without what differs between any two requests: their ids."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k not in ("id", "request_id")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@contextlib.contextmanager
def local_serve(project: Path) -> Iterator[str]:
    """The local serve stage of `project`, on its registry: the answers a container must give."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlops_runtime", "serve"],
        cwd=project,
        env={**ENV, "HOST": "127.0.0.1", "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, lambda: server.poll() is None)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)

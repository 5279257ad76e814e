"""The Kubeflow pipeline (pipelines/kubeflow-pipeline.yaml) is what the kfp SDK compiles, and
the SDK loads it back with the steps and commands the README names.

The compiler prints the pipeline's IR from a template and never imports kfp. Here, in a
virtualenv of its own with kfp==2.17.3 (its exact pins would move requests and protobuf in
the test environment), a pipeline written with kfp's DSL from the generated project's image
and stage commands is compiled and must equal the committed file byte for byte (our header
line aside); then `kfp.components.load_component_from_file` reads the committed file and its
tasks, their order, images, commands and caching are checked. The virtualenv is made once per
machine under $MLOPS_TEST_CACHE (or at $MLOPS_KFP_VENV; tests/cache.py), which needs PyPI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.spec.validate import validate
from tests.cache import cached_venv, run

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KFP_VERSION = "2.17.3"
PIPELINE = "pipelines/kubeflow-pipeline.yaml"

# The pipeline in kfp's DSL: argv[1] is the project (name, level, image, stage commands),
# argv[2] the output file.
COMPILE = """
import json
import sys

from kfp import compiler, dsl

PROJECT = json.loads(sys.argv[1])
IMAGE = PROJECT["image"]
COMMANDS = PROJECT["commands"]
MONITOR = PROJECT["level"] >= 3


@dsl.container_component
def train():
    return dsl.ContainerSpec(image=IMAGE, command=COMMANDS["train"])


@dsl.container_component
def lineage():
    return dsl.ContainerSpec(image=IMAGE, command=[*COMMANDS["lineage"], "champion", "--json"])


@dsl.container_component
def monitor():
    return dsl.ContainerSpec(image=IMAGE, command=COMMANDS["monitor"])


DESCRIPTION = "Train, gate and register the model; print its lineage"


@dsl.pipeline(
    name=PROJECT["name"] + "-training", description=DESCRIPTION + ("; monitor" if MONITOR else "")
)
def training():
    # The train stage is the contract gate, the fit, the model gate and the registration.
    trained = train().set_display_name("train, gate, register").set_caching_options(False)
    shown = lineage().after(trained).set_caching_options(False)
    if MONITOR:
        monitor().after(shown).set_caching_options(False)


compiler.Compiler().compile(training, sys.argv[2])
"""

# Reads a compiled pipeline back with the SDK: each task's component, upstream tasks, display
# name, caching, image and command, as JSON on stdout.
LOAD = """
import json
import sys

from kfp import components

pipeline = components.load_component_from_file(sys.argv[1])
spec = pipeline.pipeline_spec
executors = spec.deployment_spec["executors"]
tasks = {}
for name, task in spec.root.dag.tasks.items():
    component = spec.components[task.component_ref.name]
    container = executors[component.executor_label]["container"]
    tasks[name] = {
        "component": task.component_ref.name,
        "after": sorted(task.dependent_tasks),
        "display_name": task.task_info.name,
        "cache": task.caching_options.enable_cache,
        "image": container["image"],
        "command": list(container["command"]),
        "args": list(container["args"]) if "args" in container else [],
        "env": list(container["env"]) if "env" in container else [],
    }
print(json.dumps({"name": pipeline.name, "tasks": tasks}))
"""


def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run(argv, timeout=timeout)


def _kfp_python() -> Path:
    return cached_venv(
        f"kfp-{KFP_VERSION}",
        override="MLOPS_KFP_VENV",
        requirement=f"kfp=={KFP_VERSION}",
        probe="import kfp; print(kfp.__version__)",
        expected=KFP_VERSION,
        sees_running_env=False,
    )


@pytest.fixture(scope="session")
def kfp_python() -> Path:
    return _kfp_python()


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The golden project (level 3) and the same spec built at level 2."""
    out = tmp_path_factory.mktemp("level2")
    shutil.copytree(REPO / "specs", out / "specs")
    built = _run(
        [sys.executable, "-m", "mlops_compiler", "build", "--level", "2", "--out",
         str(out / "generated"), str(out / "specs" / "breast-cancer.mlops.yaml")]
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return {3: REPO / "generated" / "breast-cancer", 2: out / "generated" / "breast-cancer"}


def _project(project: Path, level: int) -> dict[str, Any]:
    """What the DSL pipeline is written from: the image the plan names, the manifest's stage
    commands."""
    loaded = load_spec(REPO / "specs" / "breast-cancer.mlops.yaml")
    deploy = make_plan(validate(loaded), loaded, project.parent, level=level).context["deploy"]
    manifest = json.loads((project / "mlops-manifest.json").read_text())
    assert manifest["level"] == level
    return {
        "name": manifest["name"],
        "level": level,
        "image": f"{deploy['image']}:{deploy['tag']}",
        "commands": manifest["commands"],
    }


@pytest.mark.parametrize("level", [3, 2])
def test_pipeline_is_what_kfp_compiles(
    kfp_python: Path, projects: dict[int, Path], level: int, tmp_path: Path
) -> None:
    project = projects[level]
    script = tmp_path / "compile_pipeline.py"
    script.write_text(COMPILE)
    compiled = tmp_path / "compiled.yaml"
    result = _run(
        [str(kfp_python), str(script), json.dumps(_project(project, level)), str(compiled)]
    )
    assert result.returncode == 0, result.stderr
    header, _, committed = (project / PIPELINE).read_text().partition("\n")
    assert header.startswith("# Generated by mlops-compiler from ")
    assert committed == compiled.read_text()


@pytest.mark.parametrize("level", [3, 2])
def test_sdk_loads_the_steps_and_their_commands(
    kfp_python: Path, projects: dict[int, Path], level: int, tmp_path: Path
) -> None:
    project = projects[level]
    script = tmp_path / "load_pipeline.py"
    script.write_text(LOAD)
    result = _run([str(kfp_python), str(script), str(project / PIPELINE)])
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["name"] == "breast-cancer-training"
    tasks = loaded["tasks"]
    expected = ["train", "lineage", "monitor"] if level == 3 else ["train", "lineage"]
    assert set(tasks) == set(expected)
    # A chain: each step after the one before it.
    for before, step in zip([None, *expected], expected, strict=False):
        assert tasks[step]["after"] == ([before] if before else []), step
    image = _project(project, level)["image"]
    runtime = ["python", "-m", "mlops_runtime"]
    commands = {
        "train": [*runtime, "train"],
        "lineage": [*runtime, "lineage", "champion", "--json"],
        "monitor": [*runtime, "monitor"],
    }
    for step in expected:
        task = tasks[step]
        assert task["component"] == f"comp-{step}"
        assert task["image"] == image == "ghcr.io/acme/breast-cancer:latest"
        assert task["command"] == commands[step], step
        assert task["args"] == [] and task["env"] == [], "no value in the file, secrets aside"
        assert task["cache"] is False, f"{step} must never be served from the cache"
    assert tasks["train"]["display_name"] == "train, gate, register"

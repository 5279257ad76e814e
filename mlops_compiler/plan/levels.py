"""The level gating table: which component each level emits, and the files it is made of.

This is the one place that decides what a level means; `mlops plan` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Emit:
    path: str  # relative to the output root
    template: str  # relative to templates/; "*.jinja" is rendered, anything else copied


@dataclass(frozen=True)
class Component:
    name: str
    min_level: int
    max_level: int
    summary: str
    files: tuple[Emit, ...]
    requirements: tuple[str, ...] = ()
    commands: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def emitted_at(self, level: int) -> bool:
        return self.min_level <= level <= self.max_level


def _package(*modules: str) -> tuple[Emit, ...]:
    return tuple(Emit(f"mlops_project/{m}", f"project/mlops_project/{m}") for m in sorted(modules))


_TRAIN = ("python", "-m", "mlops_project.train")
SERVE = ("python", "-m", "mlops_project.serve")
_IMAGE = ("python", "-m", "mlops_project.image")
_LINEAGE = ("python", "-m", "mlops_project.lineage")

COMPONENTS: tuple[Component, ...] = (
    Component(
        "project",
        0,
        3,
        "README, requirements, configuration and data contract of the generated project",
        (
            Emit(".gitignore", "project/gitignore.jinja"),
            Emit("README.md", "project/README.md.jinja"),
            Emit("mlops_project/__init__.py", "project/mlops_project/__init__.py"),
            Emit("mlops_project/config.py", "project/mlops_project/config.py.jinja"),
            Emit("mlops_project/contract.py", "project/mlops_project/contract.py.jinja"),
            *_package("record_check.py"),
            Emit("requirements.txt", "project/requirements.txt.jinja"),
        ),
        (
            "joblib>=1.3,<2",
            "numpy>=1.26,<3",
            "pandas>=2.2,<4",
            "pyarrow>=15,<30",
            "scikit-learn>=1.5,<2",
            "scipy>=1.11,<2",
        ),
    ),
    Component(
        "training-plain",
        0,
        0,
        "plain training script: fit, print metrics, save a local model file; no tracking",
        (
            *_package("data.py", "features.py", "fitting.py", "metrics.py", "report.py"),
            Emit("mlops_project/train.py", "project/mlops_project/train_plain.py"),
        ),
        (),
        (("train", _TRAIN),),
    ),
    Component(
        "training",
        1,
        3,
        "contract gate, tracked training on MLflow, registry aliases, lineage, reference profile",
        _package(
            "contract_gate.py",
            "data.py",
            "features.py",
            "fitting.py",
            "lineage.py",
            "metrics.py",
            "profile.py",
            "registry.py",
            "report.py",
            "tracking.py",
            "tracking_worker.py",
            "train.py",
        ),
        ("mlflow>=3.1,<4", "pandera>=0.24,<1", "skops>=0.10,<1"),
        (("lineage", _LINEAGE), ("train", _TRAIN)),
    ),
    Component(
        "serving",
        0,
        3,
        "ASGI app: /predict, Open Inference Protocol, MLflow scoring protocol, /metrics, "
        "contract at the door, prediction log, micro-batching, hot reload; the local model "
        "file at level 0, the registry alias from level 1, A/B from level 2",
        _package(
            "ab.py",
            "batching.py",
            "door.py",
            "fast_predict.py",
            "metrics_export.py",
            "model_source.py",
            "openapi.py",
            "prediction_log.py",
            "serve.py",
            "serving_app.py",
            "tree_kernel.py",
        ),
        (
            "httptools>=0.6,<1",
            "orjson>=3.8,<4",
            "prometheus-client>=0.20,<1",
            "uvicorn>=0.30,<1",
            'uvloop>=0.19,<1; sys_platform != "win32"',
        ),
        (("serve", SERVE),),
    ),
    Component(
        "container",
        2,
        3,
        "Dockerfile and .dockerignore of the serving image, and a stage that builds it",
        (
            Emit(".dockerignore", "project/dockerignore.jinja"),
            Emit("Dockerfile", "project/Dockerfile.jinja"),
            *_package("image.py"),
        ),
        ("docker>=7,<8",),
        (("image", _IMAGE),),
    ),
)

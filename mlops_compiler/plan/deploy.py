"""What the delivery templates print (deploy/, pipelines/): the image, where it runs, with what.

Everything is resolved here, so a template never guesses a default: the image repository, the
namespace, the resources, the stage commands the containers run, the schedule of the monitor.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mlops_compiler.spec.model import Spec

LOCAL_REGISTRY = "localhost:5000"
# The serving app's own endpoints (runtime serve/app.py): /health answers 200 while the
# process lives, /ready (like /ping) only once a model is loaded; a liveness probe on /ping
# would restart a server still waiting for its first champion.
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
# What the containers write: the prediction log, reports (monitor, serving history), /tmp.
WRITABLE_DIRS = ("prediction_log", "reports", "/tmp")
APP_DIR = "/app"
RUN_AS_USER = 10001  # the Dockerfile's `app` user


def image_repository(spec: Spec) -> str:
    return spec.deploy.image or f"{LOCAL_REGISTRY}/{spec.name}"


def deploy_context(
    spec: Spec, config: dict[str, Any], commands: dict[str, tuple[str, ...]]
) -> dict[str, Any]:
    d = spec.deploy
    ab = spec.serving.ab_test
    return {
        "target": d.target,
        "image": image_repository(spec),
        # The committed manifests name a moving tag; CI pins the version it deployed with
        # `kustomize edit set image` (docs in the generated README).
        "tag": "latest",
        "namespace": d.namespace or spec.name,
        "replicas": d.replicas,
        "autoscale": None if d.autoscale is None else d.autoscale.model_dump(),
        "resources": d.resources.model_dump(),
        "secrets": list(d.secrets),
        "secret_name": f"{spec.name}-secrets",
        "kserve": d.kserve,
        "pipeline": d.pipeline,
        "port": config["serving"]["port"],
        "liveness_path": LIVENESS_PATH,
        "readiness_path": READINESS_PATH,
        "app_dir": APP_DIR,
        "writable_dirs": list(WRITABLE_DIRS),
        "run_as_user": RUN_AS_USER,
        "monitor_schedule": spec.monitors.schedule,
        "challenger_weight": None if ab is None else ab.challenger_weight,
        "commands": {stage: list(argv) for stage, argv in commands.items()},
        "tracking_uri": config.get("tracking", {}).get("uri"),
        "registered_model": config.get("tracking", {}).get("registered_model") or spec.name,
        **_pod_files(config, list(d.secrets)),
    }


def _pod_files(config: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """Where a pod's files go: a volume per writable dir (read-only root filesystem), and the
    training data and late labels, which the batch pods read from their `data` volume."""
    volumes = [
        {"name": d.strip("/").replace("_", "-"), "path": d if d[:1] == "/" else f"{APP_DIR}/{d}"}
        for d in WRITABLE_DIRS
    ]
    data = f"{APP_DIR}/data"
    labels = (config.get("monitor") or {}).get("labels")
    return {
        "volumes": volumes,
        "prediction_log_dir": f"{APP_DIR}/prediction_log",
        "data_dir": data,
        "train_data": f"{data}/{PurePosixPath(config['data']['path']).name}",
        "labels_file": f"{data}/{PurePosixPath(labels['path']).name}" if labels else None,
        # The monitor sends the alerts: their URLs come from the Secret too, where present.
        "alert_secrets": sorted({a["url_env"] for a in config.get("alerts") or []} - set(secrets)),
    }

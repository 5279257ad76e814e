"""What the delivery templates print (deploy/, pipelines/): the image, where it runs, with what.

Everything is resolved here, so a template never guesses a default: the image repository, the
namespace, the resources, the stage commands the containers run, the schedule of the monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from mlops_compiler.spec.model import Spec

LOCAL_REGISTRY = "localhost:5000"
# The serving image's default base: the official Python image, pinned by tag (a site with its
# own registry, or a Debian python3 image, sets deploy.base_image or --base-image).
OFFICIAL_BASE_IMAGE = "python:3.11.11-slim-bookworm"
# The serving app's own endpoints (runtime serve/app.py): /health answers 200 while the
# process lives, /ready (like /ping) only once a model is loaded; a liveness probe on /ping
# would restart a server still waiting for its first champion.
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
# What the containers write: the prediction log, reports (monitor, serving history), /tmp.
WRITABLE_DIRS = ("prediction_log", "reports", "/tmp")
APP_DIR = "/app"
# Where the score stage's runs go (`batch.output` is relative to it): a volume of the score
# pod alone, which an overlay makes a claim to keep the results.
SCORED_DIR = "scored"
RUN_AS_USER = 10001  # the Dockerfile's `app` user
# The compose stack's own services, pinned (a compiler upgrade moves them): Prometheus,
# node-exporter (its textfile collector serves the monitor's gauges) and Grafana.
COMPOSE_IMAGES = {
    "prometheus": "prom/prometheus:v3.5.0",
    "node_exporter": "prom/node-exporter:v1.9.1",
    "grafana": "grafana/grafana:12.1.1",
}
_QUANTITY_UNITS = {
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def image_repository(spec: Spec) -> str:
    return spec.deploy.image or f"{LOCAL_REGISTRY}/{spec.name}"


def image_config(spec: Spec) -> dict[str, Any]:
    """config.json's `image`: what the image stage tags, builds with and builds FROM."""
    return {
        "repository": image_repository(spec),
        "engine": spec.deploy.engine,
        "base_image": spec.deploy.base_image or OFFICIAL_BASE_IMAGE,
    }


def deploy_context(
    spec: Spec, config: dict[str, Any], commands: dict[str, tuple[str, ...]], batch: bool
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
        "run_as_user": RUN_AS_USER,
        "monitor_schedule": spec.monitors.schedule,
        "materialize_schedule": (
            spec.features.store.materialize_schedule
            if spec.features is not None and spec.features.store is not None
            else None
        ),
        # KServe's canaryTrafficPercent: the challenger's share in whole percent, never 0 or 100.
        "canary_traffic_percent": (
            None if ab is None else min(99, max(1, round(ab.challenger_weight * 100)))
        ),
        "commands": {stage: list(argv) for stage, argv in commands.items()},
        "batch": _batch(spec) if batch else None,
        **_pod_files(config, list(d.secrets)),
        "compose": _compose(spec, config),
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
    store = config.get("feature_store")
    if store:
        volumes.append(_store_volume(store))
    return {
        "volumes": volumes,
        # Each view's source, read by the feature stages from the `data` volume too.
        "feature_sources": [
            {"env": v["source_env"], "file": f"{data}/{PurePosixPath(v['source']).name}"}
            for v in (store or {}).get("views", [])
        ],
        "prediction_log_dir": f"{APP_DIR}/prediction_log",
        "data_dir": data,
        "train_data": f"{data}/{PurePosixPath(config['data']['path']).name}",
        "labels_file": f"{data}/{PurePosixPath(labels['path']).name}" if labels else None,
        # The monitor sends the alerts: their URLs come from the Secret too, where present.
        "alert_secrets": sorted({a["url_env"] for a in config.get("alerts") or []} - set(secrets)),
    }


def _batch(spec: Spec) -> dict[str, Any]:
    """The score stage's schedule and arguments: its input on the `data` volume, its output
    on the `scored` volume (both relative in the spec)."""
    b = spec.batch
    assert b is not None
    data, scored = f"{APP_DIR}/data", f"{APP_DIR}/{SCORED_DIR}"
    args = ["--input", f"{data}/{b.input}", "--output", f"{scored}/{b.output}"]
    args += ["--model", b.model, "--format", b.format]
    return {
        "schedule": b.schedule,
        "args": args + (["--key", b.key] if b.key is not None else []),
        "volume": {"name": SCORED_DIR, "path": scored},
        "folder": SCORED_DIR,  # in the image's /app, owned by the app user
    }


def _store_volume(store: dict[str, Any]) -> dict[str, str]:
    """The feature store's files (registry, offline tables, the SQLite online store):
    written by features-materialize and train, read by the server and the monitor."""
    return {"name": "feature-store", "path": f"{APP_DIR}/{store['repo']}/data"}


def _source(view: dict[str, Any], bind: Callable[[str, str], dict[str, str]]) -> dict[str, str]:
    folder = bind(view["source"], f"{APP_DIR}/feature-sources/{view['name']}")
    return {**folder, "setting": f"{view['source_env']}={folder['file']}"}


def quantity(text: str) -> float:
    """A Kubernetes quantity ("250m", "512Mi", "1") as a plain number."""
    number = text.rstrip("mkMGTi")
    return float(number) * _QUANTITY_UNITS[text[len(number) :]]


def _compose(spec: Spec, config: dict[str, Any]) -> dict[str, Any]:
    """What only the compose stack needs: its images, the limits in compose's units, the
    variables passed through by name, and the monitor's inputs: the folders holding the
    training data and the late labels, bound read-only (a folder, not the file: labels arrive
    after the first runs, and a file replaced by rename stays visible)."""
    r = spec.deploy.resources
    labels = (config.get("monitor") or {}).get("labels")
    textfile = PurePosixPath(config["monitor"]["textfile"])

    def bind(path: str, target: str) -> dict[str, str]:
        # Sources relative to deploy/compose/, two folders below the project's.
        source = PurePosixPath("../..", path)
        return {"source": str(source.parent), "target": target, "file": f"{target}/{source.name}"}

    secrets = list(dict.fromkeys(["MLFLOW_TRACKING_URI", *spec.deploy.secrets]))
    # A named volume per writable folder of the app (its root filesystem is read-only).
    volumes = [
        {"name": d.replace("_", "-"), "path": f"{APP_DIR}/{d}"}
        for d in WRITABLE_DIRS
        if d[:1] != "/"
    ]
    store = config.get("feature_store")
    if store:
        volumes.append(_store_volume(store))
    return {
        "images": dict(COMPOSE_IMAGES),
        "volumes": volumes,
        # The folder of each view's source, bound read-only for the feature stages.
        "feature_sources": [_source(v, bind) for v in (store or {}).get("views", [])],
        # Set as MLOPS_PREDICTION_LOG_DIR, whatever serving.prediction_log.dir says.
        "prediction_log_dir": f"{APP_DIR}/prediction_log",
        "cpus": quantity(r.cpu_limit),
        "mem_limit": int(quantity(r.memory_limit)),
        "mem_reservation": int(quantity(r.memory)),
        # Compose takes each from the environment it runs in: a name here, never a value.
        "environment": secrets,
        # The monitor sends the alerts: their URLs too.
        "alert_environment": sorted({a["url_env"] for a in config["alerts"]} - set(secrets)),
        "train_data": bind(config["data"]["path"], f"{APP_DIR}/data"),
        "labels": bind(labels["path"], f"{APP_DIR}/labels") if labels else None,
        "textfile_dir": f"{APP_DIR}/{textfile.parent}",
    }

"""Serving stage: python -m mlops_runtime serve

Serves the registry's `champion` (with an A/B test also `challenger`) or the local
model/model.joblib, as config.json's serving.model_source says, over HTTP; see app.py for the
endpoints.

Environment:
    HOST, PORT                  where to listen (default CONFIG["serving"]["host"] / ["port"])
    MLOPS_RELOAD_INTERVAL_S     seconds between alias polls (default serving.reload_interval_s)
    MLOPS_PREDICTION_LOG_DIR    prediction log folder (default serving.prediction_log.dir)
    MLOPS_MODEL_PATH            the local model file (default model/model.joblib)
    MLFLOW_TRACKING_URI         the tracking/registry store (default tracking.uri)
    LOG_LEVEL                   uvicorn log level (default "warning")
    WEB_CONCURRENCY             server processes (default CONFIG["serving"]["workers"])
    OMP_NUM_THREADS             default 1: see below

With more than one worker, uvicorn's supervisor starts that many processes on one listening
socket (and restarts any that dies); Prometheus metrics are then kept in files under
$PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder unless set) so /metrics, whichever worker
answers, reports the sum over all of them.

Exit codes: 0 stopped normally; 2 configuration error.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from mlops_runtime.project import Project

# Set before numpy/sklearn load their thread pools: for the small batches a server scores,
# OpenMP workers spin-waiting on a busy machine cost more than they save (measured: a 16-row
# HistGradientBoosting call takes ~10x longer with default threads on 2 loaded cores).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXIT_OK = 0
EXIT_CONFIG = 2


def listen_address(
    config: dict[str, object], environ: dict[str, str] | os._Environ[str] | None = None
) -> tuple[str, int]:
    env = os.environ if environ is None else environ
    serving = config.get("serving") or {}
    assert isinstance(serving, dict)
    host = env.get("HOST") or str(serving.get("host", "127.0.0.1"))
    port = int(env.get("PORT") or serving.get("port", 8080))
    return host, port


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def worker_count(
    config: dict[str, object], environ: dict[str, str] | os._Environ[str] | None = None
) -> int:
    env = os.environ if environ is None else environ
    serving = config.get("serving") or {}
    assert isinstance(serving, dict)
    count = int(env.get("WEB_CONCURRENCY") or serving.get("workers", 1))
    if count < 1:
        raise ValueError(f"WEB_CONCURRENCY must be at least 1, got {count}")
    return count


def record_ab_weight(project: Project) -> bool:
    """A changed A/B weight changes who serves: the serving history records it once, when
    the first server starts with it. Returns whether a record was written."""
    from mlops_runtime.rollback import history
    from mlops_runtime.serve.ab import CHALLENGER, ab_config

    ab = ab_config(project.config)
    weight = float(ab["challenger_weight"]) if ab is not None else 0.0
    path = history.history_path(project.root, project.config)
    with history.serving_lock(path):
        changes = [e for e in history.read(path) if e.get("event") == history.AB_WEIGHT]
        before = float(changes[-1]["weight"]) if changes else 0.0
        if weight == before:
            return False
        entry = history.record(
            history.AB_WEIGHT,
            alias=CHALLENGER,
            from_version=f"{before:g}",
            to_version=f"{weight:g}",
            why={"trigger": "config", "reason": "serving.ab_test.challenger_weight"},
            by="serve",
            weight=weight,
        )
        history.append(path, entry)
        return True


def main(argv: list[str], project: Project) -> int:
    del argv  # everything comes from the project and the environment
    import uvicorn

    CONFIG, CONTRACT = project.config, project.contract  # noqa: N806
    record_ab_weight(project)

    try:
        host, port = listen_address(CONFIG)
        workers = worker_count(CONFIG)
    except (ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        # uvloop and httptools roughly double uvicorn's throughput where available.
        "loop": "uvloop" if _available("uvloop") else "asyncio",
        "http": "httptools" if _available("httptools") else "h11",
        "lifespan": "on",
        "access_log": False,  # the prediction log and /metrics record every request
        "log_level": os.environ.get("LOG_LEVEL", "warning"),
        "timeout_keep_alive": 30,
        "backlog": 2048,
    }
    if workers == 1:
        from mlops_runtime.serve.app import create_app

        try:
            app = create_app(CONFIG, CONTRACT, root=project.root)
        except (ValueError, KeyError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"{CONFIG.get('name')}: serving on http://{host}:{port}", flush=True)
        uvicorn.Server(uvicorn.Config(app, **settings)).run()
        return EXIT_OK
    # Each worker is a fresh interpreter (its own GIL) that builds the app from CONFIG. The
    # metrics folder must exist, empty, before any worker imports prometheus_client.
    own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlops-metrics-")
    print(f"{CONFIG.get('name')}: serving on http://{host}:{port} ({workers} workers)", flush=True)
    try:
        uvicorn.run(
            "mlops_runtime.serve.app:app_from_config",
            factory=True,
            workers=workers,
            **settings,
        )
    finally:
        if own_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    return EXIT_OK

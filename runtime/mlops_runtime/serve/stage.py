"""Serving stage: python -m mlops_runtime serve

Serves the registry's `champion` (with an A/B test also `challenger`) or the local
model/model.skops, as config.json's serving.model_source says, over HTTP; see app.py for the
endpoints.

Environment:
    HOST, PORT                  where to listen (default CONFIG["serving"]["host"] / ["port"])
    MLOPS_RELOAD_INTERVAL_S     seconds between alias polls (default serving.reload_interval_s)
    MLOPS_PREDICTION_LOG_DIR    prediction log folder (default serving.prediction_log.dir)
    MLOPS_MODEL_PATH            the local model file (default model/model.skops)
    MLFLOW_TRACKING_URI         the tracking/registry store (default tracking.uri)
    LOG_LEVEL                   uvicorn log level (default "warning")
    WEB_CONCURRENCY             server processes (default CONFIG["serving"]["workers"])
    OMP_NUM_THREADS             default 1: see below

With more than one worker, uvicorn's supervisor starts that many processes on one listening
socket (and restarts any that dies); Prometheus metrics are then kept in files under
$PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder unless set) so /metrics, whichever worker
answers, reports the sum over all of them.

Stopping: SIGTERM or SIGINT (Ctrl-C) drains the server (uvicorn stops accepting, finishes
the requests in flight for at most serving.limits.drain_s, runs the app's shutdown: the
prediction log is flushed), frees the port and exits 0, with every worker process gone. A
second SIGINT while draining stops at once. A model call stuck in a thread past the drain does
not keep the process alive.

Reading a request has deadlines (serving.limits.header_s, body_s; http_guard.py): a client
that does not finish sending its request in time gets 408 and its connection is closed.

Exit codes: 0 stopped normally, also by SIGTERM or SIGINT; 2 configuration error; 3 the
address cannot be listened on (the port is taken, or needs privileges): one line says which,
before anything is loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlops_runtime.project import STOP_SIGNALS, Project, Stopped, stop_on_signals

if TYPE_CHECKING:
    import uvicorn

# Set before numpy/sklearn load their thread pools: for the small batches a server scores,
# OpenMP workers spin-waiting on a busy machine cost more than they save (measured: a 16-row
# HistGradientBoosting call takes ~10x longer with default threads on 2 loaded cores).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_CANNOT_LISTEN = 3


def listen_address(
    config: dict[str, object], environ: dict[str, str] | os._Environ[str] | None = None
) -> tuple[str, int]:
    env = os.environ if environ is None else environ
    serving = config.get("serving") or {}
    assert isinstance(serving, dict)
    host = env.get("HOST") or str(serving.get("host", "127.0.0.1"))
    port = int(env.get("PORT") or serving.get("port", 8080))
    return host, port


def cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, found by binding it as uvicorn will
    (SO_REUSEADDR: a port left in TIME_WAIT is free); None when it can."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is already in use (set PORT to a free one)"
            if exc.errno == errno.EACCES:
                return f"port {port} needs privileges this user lacks (set PORT above 1023)"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine (set HOST)"
            return exc.strerror or str(exc)
    return None


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
    from mlops_runtime.serve.ab import CHALLENGER, ab_config
    from mlops_runtime.tracking import serving_history as history

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


def example_command(config: dict[str, object], host: str, port: int) -> str | None:
    """A request to copy, from the project's requests/ (made from its contract at build)."""
    serving = config.get("serving") or {}
    assert isinstance(serving, dict)
    examples = serving.get("example_requests") or []
    if not examples:
        return None
    first = examples[0]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return (
        f"try: curl -s -H 'Content-Type: application/json' -d @{first['file']} "
        f"http://{shown}:{port}{first['endpoint']}   (other protocols: requests/)"
    )


def uvicorn_settings(config: dict[str, object], host: str, port: int) -> dict[str, Any]:
    """uvicorn's options: the fast loop and parser, the read deadlines and the drain limit."""
    serving = config.get("serving") or {}
    assert isinstance(serving, dict)
    limits = serving.get("limits") or {}
    settings: dict[str, Any] = {
        "host": host,
        "port": port,
        # uvloop and httptools roughly double uvicorn's throughput where available.
        "loop": "uvloop" if _available("uvloop") else "asyncio",
        # Only if httptools is missing (it is a dependency): h11, without the read deadlines.
        "http": "h11",
        "lifespan": "on",
        "access_log": False,  # the prediction log and /metrics record every request
        "log_level": os.environ.get("LOG_LEVEL", "warning"),
        "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": int(limits.get("drain_s", 20)),
        "backlog": 2048,
    }
    if _available("httptools"):
        from mlops_runtime.serve.http_guard import GuardedHttpToolsProtocol, configure

        configure(config)  # this process; each worker configures its own (app_from_config)
        settings["http"] = GuardedHttpToolsProtocol
    return settings


def leave_stuck_model_calls() -> None:
    """A model call that never returns holds a thread the interpreter would wait for at exit;
    the server has drained and flushed its log, so the process leaves without it."""
    from mlops_runtime.serve.core import BATCH_THREADS

    stuck = [t for t in threading.enumerate() if t.name.startswith(BATCH_THREADS)]
    for thread in stuck:
        thread.join(1.0)
    if any(t.is_alive() for t in stuck):
        print("stopped with a model call still running (it was answered 504)", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's server, except that a stop by signal ends in a plain return.

    uvicorn drains on SIGTERM and SIGINT and then raises the signal again with the previous
    handlers back, so the process dies by SIGTERM, or Python turns the SIGINT into a
    KeyboardInterrupt traceback. A server asked to stop has stopped normally: exit 0.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(config)


def main(argv: list[str], project: Project) -> int:
    del argv  # everything comes from the project and the environment
    try:
        # Until uvicorn takes the signals over (and again once it is done), a stop unwinds.
        with stop_on_signals():
            return _main(project)
    except Stopped:  # stopped while starting: nothing was served, nothing to drain
        return EXIT_OK


def _main(project: Project) -> int:
    import uvicorn

    CONFIG, CONTRACT = project.config, project.contract  # noqa: N806
    record_ab_weight(project)

    try:
        host, port = listen_address(CONFIG)
        workers = worker_count(CONFIG)
    except (ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = cannot_listen(host, port)
    if problem is not None:
        print(f"{CONFIG.get('name')}: cannot serve on {host}:{port}: {problem}", file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    settings = uvicorn_settings(CONFIG, host, port)
    if workers == 1:
        from mlops_runtime.serve.app import create_app

        try:
            app = create_app(CONFIG, CONTRACT, root=project.root)
        except (ValueError, KeyError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"{CONFIG.get('name')}: serving on http://{host}:{port}", flush=True)
        example = example_command(CONFIG, host, port)
        if example is not None:
            print(example, flush=True)
        _server(uvicorn.Config(app, **settings)).run()
        leave_stuck_model_calls()
        return EXIT_OK
    # Each worker is a fresh interpreter (its own GIL) that builds the app from CONFIG. The
    # metrics folder must exist, empty, before any worker imports prometheus_client.
    own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlops-metrics-")
    print(f"{CONFIG.get('name')}: serving on http://{host}:{port} ({workers} workers)", flush=True)
    example = example_command(CONFIG, host, port)
    if example is not None:
        print(example, flush=True)
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

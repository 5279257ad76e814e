"""The train stage's MLflow work, in a second process started as the stage begins.

Importing MLflow and skops, opening the store and MLflow's own checks before it logs a model
cost seconds of single-threaded Python. The train stage starts this worker first, so that work
runs on the core the stage leaves idle while it reads, gates and preprocesses the data; only
the logging that needs the fitted model is left for the end.

Protocol: pickled messages on stdin, pickled replies on the file descriptor named by argv[1]
(stdout and stderr stay the stage's, where MLflow prints its own messages). Both ends are
processes of the same stage, so the pipe carries trusted data.

    open    store URI, config, data file: imports, hashes the data, reads the champion
    start   sent once the contract gate passed: starts the run, logs tags and parameters.
            Nothing is written to the store before it, so a stage stopped by the gate leaves
            the store as it was.
    finish  metrics, reports, model gate, the fitted pipeline: logs, registers, aliases, and
            replies with the outcome.

End of input before "finish" (the stage failed) ends a started run as FAILED.

Stopping: the worker dies with the stage. It ignores SIGINT (Ctrl-C reaches the whole process
group; the stage decides and stops the worker); SIGTERM, which the stage sends when it is
stopped and which on Linux the kernel sends when the stage dies any other way
(PR_SET_PDEATHSIG), ends a started run as FAILED and exits 143. One step finishes first: once
a version is being registered, the worker completes the registration and its alias and
replies, so a stop never leaves a version half registered; and no registration starts once
the stage is gone. When both are killed outright, the run is tagged with the worker's process
(`mlops.process`), and the next run ends it as KILLED; the alias change, written ahead in the
serving history, is completed by the next change (tracking/serving_history.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from mlops_runtime.data import file_sha256
from mlops_runtime.project import Stopped
from mlops_runtime.tracking.store import environment_tags, git_commit, model_requirements
from mlops_runtime.train.evaluation import evaluate_vs_champion


@dataclass
class Session:
    uri: str
    config: dict[str, Any]
    data_path: Path
    data_sha: str = ""
    git: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    client: Any = None
    run_id: str | None = None
    rows: int = 0
    feature_views: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return str(self.config["tracking"].get("registered_model") or self.config["name"])


def warm_up() -> None:
    """Import what logging a model needs, and let MLflow build its package index, now."""
    import mlflow.sklearn  # noqa: F401
    import skops.io  # noqa: F401
    from mlflow.models import infer_signature  # noqa: F401
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    # Logging a model compares its requirements with every installed distribution (about a
    # second on a large environment). Ours are pinned to what is installed, so this warns of
    # nothing; it only fills MLflow's cache early.
    warn_dependency_requirement_mismatches(model_requirements())


def store_exists(uri: str) -> bool:
    """Whether opening `uri` reads an existing store rather than creating one."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return Path(uri[len(prefix) :]).is_file()
    return uri.startswith(("http://", "https://", "databricks"))


def open_session(message: Mapping[str, Any]) -> Session:
    from mlops_runtime.tracking.store import connect

    session = Session(message["uri"], dict(message["config"]), Path(message["data_path"]))
    if store_exists(session.uri):
        session.client = connect(session.config, uri=session.uri)
    session.data_sha = file_sha256(session.data_path)
    commit = git_commit()
    session.git = {"mlops.git_commit": commit} if commit else {}
    session.environment = environment_tags()
    return session


def start_run(session: Session, message: Mapping[str, Any]) -> None:
    import mlflow

    from mlops_runtime.tracking.store import connect, ensure_experiment

    if session.client is None:
        session.client = connect(session.config, uri=session.uri)
    experiment_id = ensure_experiment(session.client, session.config)
    end_orphaned_runs(session.client, experiment_id)
    # The whole step is one: MLflow writes the run's row (RUNNING) before it makes the run
    # active, and a stop raised inside one of the writes after it can leave the store's session
    # holding SQLite's write lock, so the ending cannot mark the run FAILED. A stop meanwhile
    # is raised once the step is done (well under a second).
    with _STOPPING.deferred():
        run = mlflow.start_run(experiment_id=experiment_id)
        session.run_id, session.rows = run.info.run_id, int(message["rows"])
        session.feature_views = _feature_views(session.config)
        if session.feature_views:
            mlflow.log_dict({"views": session.feature_views}, "reports/feature_views.json")
        mlflow.set_tags(
            {**lineage_tags(session), **session.environment, PROCESS_TAG: process_tag()}
        )
        mlflow.log_params(message["params"])
        mlflow.log_dict(message["contract_report"], "reports/contract_report.json")


# host:pid:start time of the process holding a run open, so a later run can tell that
# process died (kill -9 of the stage and its worker) and end the run it left RUNNING.
PROCESS_TAG = "mlops.process"


def process_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    """Ticks since boot when `pid` started (/proc), so a reused pid is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def holder_is_gone(tag: str) -> bool:
    """Whether the process named by a PROCESS_TAG is certainly dead (on this host)."""
    parts = tag.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another machine's run, or a tag we did not write: leave it be
    if not Path("/proc").is_dir():
        return False
    now = _start_time(int(parts[1]))
    return now == "" or (parts[2] != "" and now != parts[2])


def end_orphaned_runs(client: Any, experiment_id: str) -> list[str]:
    """End as KILLED the runs still RUNNING whose worker died without ending them."""
    ended = []
    for run in client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=200
    ):
        tag = run.data.tags.get(PROCESS_TAG)
        if tag and holder_is_gone(tag):
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


def lineage_tags(session: Session) -> dict[str, str]:
    config = session.config
    split = config["data"].get("split", {})
    return {
        "mlops.name": str(config.get("name")),
        "mlops.level": str(config.get("level")),
        "mlops.data_path": str(session.data_path),
        "mlops.data_sha256": session.data_sha,
        "mlops.data_rows": str(session.rows),
        "mlops.spec_sha256": str(config.get("spec_sha256", "")),
        "mlops.compiler_version": str(config.get("compiler_version", "")),
        "mlops.estimator": config["model"]["estimator"],
        "mlops.seed": str(split.get("seed", 0)),
        **session.git,
        **{f"mlops.feature_view.{view['name']}": _view_tag(view) for view in session.feature_views},
    }


def _feature_views(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The feature views the training rows were joined from, as the train stage recorded them
    just before the contract gate (it rewrites the file on every run)."""
    if not (config.get("feature_store") or {}).get("entity_timestamp"):
        return []
    from mlops_runtime.features.store.offline import VIEWS_LINEAGE
    from mlops_runtime.project import project_dir

    views: list[dict[str, Any]] = json.loads((project_dir() / VIEWS_LINEAGE).read_text())
    return views


def _view_tag(view: Mapping[str, Any]) -> str:
    """One tag per view: the version of its definition and of the table the rows came from."""
    return (
        f"definition_sha256={view['definition_sha256']} offline_sha256={view['offline_sha256']} "
        f"registry_updated={view['registry_updated']}"
    )


def finish_run(session: Session, message: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics, reports, gate, model and registry; the run ends FINISHED either way."""
    import mlflow

    from mlops_runtime.project import project_dir
    from mlops_runtime.tracking.registry import (
        CHAMPION,
        alias_version,
        choose_alias,
        metric_tags,
        register,
        version_metrics,
    )
    from mlops_runtime.tracking.registry_versions import promote
    from mlops_runtime.tracking.serving_history import actor, history_path
    from mlops_runtime.tracking.store import log_model, serialization_of

    config, metrics, checks = session.config, message["metrics"], message["gate"]
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(message["profile_path"], artifact_path="reports")
    if not message["gate_passed"]:
        mlflow.log_dict({"absolute": checks}, "reports/gate.json")
        mlflow.set_tag("mlops.gate", "failed")
        mlflow.end_run()
        return {"run_id": session.run_id, "vs_checks": []}
    mlflow.set_tag("mlops.gate", "passed")
    pipeline = message["pipeline"]
    info = log_model(
        pipeline, message["example"], config["model"]["estimator"], serialization_of(config)
    )
    champion = alias_version(session.client, session.model_name, CHAMPION)
    vs_checks: list[dict[str, Any]] = []
    beats = False
    if champion is not None:
        vs = evaluate_vs_champion(
            metrics,
            version_metrics(session.client, champion),
            config.get("gate", {}).get("vs_champion", []),
        )
        vs_checks, beats = vs.checks, vs.passed
    mlflow.log_dict({"absolute": checks, "vs_champion": vs_checks}, "reports/gate.json")
    alias = choose_alias(
        champion is not None, config.get("gate", {}).get("promote", "manual"), beats
    )
    version_tags = {
        **lineage_tags(session),
        "mlops.run_id": session.run_id,
        "mlops.gate": "passed",
        **metric_tags(metrics),
        **artifact_tags(session, info.model_id),
    }
    if _STAGE.gone():
        # Killed outright, the stage reports nothing: register nothing it would not report.
        raise Stopped(signal.SIGTERM)
    _STOPPING.critical = True  # until the reply is sent: registered, aliased, answered
    version = str(register(info.model_uri, session.model_name, version_tags).version)
    promote(
        session.client,
        session.model_name,
        history_path(project_dir(), config),
        alias=alias,
        version=version,
        why={"trained": session.run_id, "gate": checks, "vs_champion": vs_checks},
        by=actor(),
    )
    mlflow.set_tags({"mlops.registered_version": version, "mlops.alias": alias})
    mlflow.end_run()
    return {"run_id": session.run_id, "version": version, "alias": alias, "vs_checks": vs_checks}


def artifact_tags(session: Session, model_id: str) -> dict[str, str]:
    """The digest a server checks before loading this model, and its serialisation.

    Hashed as stored (read back from the artifact store, not from the files MLflow wrote
    before uploading them), through the same code the server uses, so both sides hash the
    same bytes the same way. The tags go on the version as it is created: no version is ever
    registered without them.
    """
    from mlops_runtime.tracking.store import (
        MODEL_SHA256_TAG,
        SERIALIZATION_TAG,
        fetch_model_files,
    )

    location = session.client.get_logged_model(model_id).artifact_location
    files = fetch_model_files(session.client, location)
    return {MODEL_SHA256_TAG: files.sha256, SERIALIZATION_TAG: files.serialization}


class _Stopping:
    """SIGTERM's handler: raise Stopped, unless a registration or the ending of the run is
    under way (then the worker exits once that is done)."""

    def __init__(self) -> None:
        self.critical = False
        self.pending: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        del frame
        if self.critical:
            self.pending = signum
            return
        signal.signal(signum, signal.SIG_IGN)  # once is enough: let the cleanup run
        raise Stopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A step a stop must not cut in two: a SIGTERM meanwhile is raised once it is done."""
        self.critical = True
        try:
            yield
        finally:
            self.critical = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            signal.signal(signum, signal.SIG_IGN)
            raise Stopped(signum)


_STOPPING = _Stopping()


class _Stage:
    """The stage process this worker serves, once main() was told its pid."""

    def __init__(self) -> None:
        self.pid: int | None = None

    def gone(self) -> bool:
        return self.pid is not None and os.getppid() != self.pid


_STAGE = _Stage()


def _die_with(parent: int) -> None:
    """Linux: have the kernel send SIGTERM when the stage dies, however it dies."""
    _STAGE.pid = parent
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the stage was gone before the call took effect
        raise Stopped(signal.SIGTERM)


def serve(inbox: IO[bytes], outbox: IO[bytes]) -> int:
    session: Session | None = None
    try:
        warm_up()
        while True:
            try:
                message = pickle.load(inbox)
            except EOFError:
                return 0  # the stage ended early (contract, error): nothing more to do
            if message["op"] == "open":
                session = open_session(message)
            elif message["op"] == "start" and session is not None:
                start_run(session, message)
            elif message["op"] == "finish" and session is not None:
                reply(outbox, finish_run(session, message))
                return 0
            else:
                raise ValueError(f"unexpected message {message['op']!r}")
    except Exception:  # noqa: BLE001 - any failure is the stage's to report, with its traceback
        reply(outbox, {"error": traceback.format_exc()})
        return 1
    finally:
        # A SIGTERM arriving now (the stage may close our input and signal us at once) waits
        # until the run is ended, instead of interrupting the ending.
        _STOPPING.critical = True
        _end_unfinished_run()


def reply(outbox: IO[bytes], value: Mapping[str, Any]) -> None:
    pickle.dump(dict(value), outbox, protocol=pickle.HIGHEST_PROTOCOL)
    outbox.flush()


def _end_unfinished_run() -> None:
    if "mlflow" not in sys.modules:
        return
    try:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED")
    except Exception:  # noqa: BLE001 - stopped mid-import: there is no run to end
        return


def main(argv: list[str]) -> NoReturn:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _STOPPING)
    try:
        if len(argv) > 1:
            _die_with(int(argv[1]))
        with os.fdopen(int(argv[0]), "wb") as outbox:
            code = serve(sys.stdin.buffer, outbox)
        if _STOPPING.pending is not None:
            code = 128 + _STOPPING.pending
    except Stopped as stop:
        code = stop.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to clean up; skip tearing down MLflow's module graph.
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Tracked training stage (level >= 1): python -m mlops_runtime train

load -> data-contract gate -> split -> fit -> metrics -> model gate -> log run -> register.

Exit codes (also in docs/runtime-exit-codes.md):
    0  trained and registered (as champion or challenger)
    1  unexpected error (a traceback is printed)
    2  configuration error (e.g. the estimator cannot be imported), or no training data file
       at the path (`error: training data not found: PATH`)
    3  data contract failed: reports/contract_report.json says why; nothing was written to
       the tracking server or the registry, aliases are untouched
    4  model gate failed: the run is logged and tagged mlops.gate=failed; no version registered
    130, 143  stopped by SIGINT / SIGTERM (128 + the signal): the tracking worker is stopped
       with the stage and a started run ends FAILED; one line says so, no traceback

Tracking goes to $MLFLOW_TRACKING_URI if set, else CONFIG["tracking"]["uri"]; the data file is
$<CONFIG["data"]["path_env"]> if set, else CONFIG["data"]["path"].
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn

import pandas as pd

from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.data import DataNotFound, load_table, require_data
from mlops_runtime.features.pipeline import build_pipeline
from mlops_runtime.project import (
    STOP_SIGNALS,
    Project,
    Stopped,
    stop_on_signals,
    stop_received,
)
from mlops_runtime.tracking.store import absolute_uri, loggable_params, resolve_tracking_uri
from mlops_runtime.train.evaluation import describe, evaluate_absolute
from mlops_runtime.train.fitting import Fitted, fit_and_evaluate

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_CONTRACT = 3
EXIT_GATE = 4
STOP_TIMEOUT_S = 10.0  # a stopped stage waits this long for its tracking worker, then kills it


@dataclass
class TrainResult:
    exit_code: int
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    version: str | None = None
    alias: str | None = None
    gate: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None
    message: str = ""


def load_validated(
    config: Mapping[str, Any], contract: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, Path, dict[str, Any]]:
    """Read and gate the data; raises DataNotFound when there is no file, ContractViolation
    (report already written) when it fails the contract."""
    from mlops_runtime.contract.training_gate import validate_frame

    path = require_data(config, environ)
    if (config.get("feature_store") or {}).get("entity_timestamp"):
        from mlops_runtime.features.store.offline import load_training_rows

        raw = load_training_rows(path, config, contract, Path.cwd())
    else:
        raw = load_table(path, contract)
    typed, report = validate_frame(raw, contract, source=str(path))
    return typed, path, report


class TrackingWorker:
    """The stage's end of mlops_runtime.tracking.worker (see there for why and how).

    The worker dies with the stage: a stage stopped by SIGTERM or SIGINT stops it (`stop`), and
    on Linux the kernel sends it SIGTERM if the stage dies any other way (even by SIGKILL).
    """

    def __init__(self, uri: str, config: Mapping[str, Any], data_path: Path):
        self.started = False
        reply_read, reply_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlops_runtime.tracking.worker",
                    str(reply_write),
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(reply_write,),
            )
        finally:
            os.close(reply_write)
        self.replies: IO[bytes] = os.fdopen(reply_read, "rb")
        self._send({"op": "open", "uri": uri, "config": dict(config), "data_path": str(data_path)})

    def _send(self, message: Mapping[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        # A worker that died has left its error on the reply pipe; finish() reports it.
        with contextlib.suppress(BrokenPipeError):
            pickle.dump(dict(message), stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()

    def start(self, params: Mapping[str, str], rows: int, report: Mapping[str, Any]) -> None:
        """Start the run: the data passed the contract gate."""
        self.started = True
        self._send(
            {"op": "start", "params": dict(params), "rows": rows, "contract_report": dict(report)}
        )

    def finish(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Hand over the results; returns run id, and version and alias if one was registered."""
        self._send({"op": "finish", **message})
        try:
            # Read before waiting: a long error could otherwise fill the pipe and block both.
            answer: dict[str, Any] = pickle.load(self.replies)
        except EOFError:
            answer = {"error": f"the tracking worker exited with code {self.process.wait()}"}
        self.close()
        if "error" in answer:
            raise RuntimeError(f"tracking failed:\n{answer['error']}")
        return answer

    def close(self) -> None:
        if not self.started and self.process.poll() is None:
            # No run was started, so the worker has nothing to write or end: stop it rather
            # than wait for its imports to finish.
            self.process.terminate()
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        self.process.wait()

    def stop(self) -> dict[str, Any] | None:
        """The stage was stopped: SIGTERM to the worker (it ends a started run as FAILED, or
        finishes the registration it is in the middle of), wait for it, and return its reply
        if it had sent one. Further signals are ignored meanwhile: this ends in seconds."""
        with _signals_ignored():
            if self.process.poll() is None:
                self.process.terminate()
            if self.process.stdin is not None and not self.process.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    self.process.stdin.close()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            try:
                answer: dict[str, Any] = pickle.load(self.replies)
            except Exception:  # noqa: BLE001 - no reply, or half of one read before the signal
                return None
            return answer

    def __enter__(self) -> TrackingWorker:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if isinstance(value, Stopped) or stop_received() is not None:
            answer = self.stop()
            if value is not None and answer is not None and answer.get("version"):
                value.add_note(
                    f"registered version {answer['version']} as {answer['alias']} before stopping"
                )
        else:
            self.close()
        self.replies.close()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_training(
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> TrainResult:
    """The whole stage; returns a result with the exit code instead of exiting."""
    try:
        pipeline = build_pipeline(config)
    except (ImportError, ValueError, TypeError, KeyError) as exc:
        return TrainResult(EXIT_CONFIG, message=f"configuration error: {type(exc).__name__}: {exc}")
    try:
        data_path = require_data(config, environ)
    except DataNotFound as missing:
        # Before the tracking worker starts: a wrong path is said at once, nothing else runs.
        return TrainResult(EXIT_CONFIG, message=f"error: {missing}")
    uri = absolute_uri(resolve_tracking_uri(config, environ))
    with TrackingWorker(uri, config, data_path) as worker:
        try:
            frame, _, contract_report = load_validated(config, contract, environ)
        except ContractViolation as violation:
            # The worker never gets "start": nothing is written to the tracking store.
            return TrainResult(
                EXIT_CONTRACT, report_path=violation.report_path, message=str(violation)
            )

        def start_run(fitting: Any, train_rows: int, test_rows: int) -> None:
            params = run_params(config, fitting, train_rows, test_rows)
            worker.start(params, len(frame), contract_report)

        fitted = fit_and_evaluate(frame, config, pipeline, start_run)
        return _finish(config, contract, fitted, worker)


def run_params(
    config: Mapping[str, Any], pipeline: Any, train_rows: int, test_rows: int
) -> dict[str, str]:
    """Every resolved estimator parameter, and how the data was split."""
    split = config["data"].get("split", {})
    return {
        **loggable_params(pipeline[-1].get_params()),
        "mlops.test_size": str(split.get("test_size", 0.2)),
        "mlops.stratify": str(split.get("stratify", False)),
        "mlops.train_rows": str(train_rows),
        "mlops.test_rows": str(test_rows),
    }


def _finish(
    config: Mapping[str, Any], contract: Mapping[str, Any], fitted: Fitted, worker: TrackingWorker
) -> TrainResult:
    from mlops_runtime.train.reference_profile import (
        build_profile,
        write_profile,
        write_run_profile,
    )

    gate = evaluate_absolute(fitted.metrics, config.get("gate", {}).get("absolute", []))
    profile = build_profile(
        fitted.frame,
        config,
        contract,
        rows=fitted.train_rows,
        predictions=fitted.predictions,
        proba=fitted.proba,
        classes=fitted.classes,
        metrics=fitted.metrics,
    )
    answer = worker.finish(
        {
            "metrics": fitted.metrics,
            "gate": gate.checks,
            "gate_passed": gate.passed,
            "profile_path": str(write_profile(profile)),
            "pipeline": fitted.pipeline,
            "example": fitted.x_test.head(5),
        }
    )
    if answer.get("run_id"):
        write_run_profile(profile, str(answer["run_id"]))
    if not gate.passed:
        return TrainResult(
            EXIT_GATE,
            fitted.metrics,
            answer["run_id"],
            gate=gate.checks,
            message=f"model gate failed: {describe(gate)}",
        )
    return TrainResult(
        EXIT_OK,
        fitted.metrics,
        answer["run_id"],
        answer["version"],
        answer["alias"],
        gate.checks + answer["vs_checks"],
    )


def summary(result: TrainResult, config: Mapping[str, Any]) -> str:
    metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()))
    name = config.get("tracking", {}).get("registered_model") or config.get("name")
    if result.message.startswith("error: "):
        return result.message  # a usage error says only what to fix
    if result.exit_code == EXIT_OK:
        head = f"{name}: registered version {result.version} as {result.alias}"
    elif result.exit_code == EXIT_CONTRACT:
        return f"{name}: {result.message}\nreport: {result.report_path}"
    else:
        head = f"{name}: {result.message}"
    lines = [head]
    if metrics:
        lines.append(f"  metrics: {metrics}")
    if result.run_id:
        lines.append(f"  run: {result.run_id}")
    return "\n".join(lines)


def main(argv: list[str], project: Project) -> int:
    del argv  # the stage takes no arguments; everything comes from the project and environment
    try:
        with stop_on_signals():
            result = run_training(project.config, project.contract)
    except Stopped as stop:
        print(stopped_message(project.config, stop), file=sys.stderr)
        return stop.exit_code
    stream = sys.stdout if result.exit_code == EXIT_OK else sys.stderr
    print(summary(result, project.config), file=stream)
    return result.exit_code


def stopped_message(config: Mapping[str, Any], stop: Stopped) -> str:
    name = config.get("tracking", {}).get("registered_model") or config.get("name")
    notes = getattr(stop, "__notes__", None) or [
        "nothing registered; a started run is marked FAILED"
    ]
    return f"{name}: training stopped by {stop.name}: {'; '.join(notes)}"


def exit_now(code: int) -> NoReturn:
    """End the process once its output is flushed. Freeing a heap of million-row frames and
    MLflow's module graph at interpreter exit takes most of a second and serves no one."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

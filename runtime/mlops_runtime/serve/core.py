"""The serving core: the model slots, their reload, the A/B choice and scoring; no HTTP in it.

Every protocol (native_api.py, mlflow_invocations.py, open_inference.py) decodes its body into
`Rows`, asks the core for the arm that serves them (`pick`, or `by_version` for a pinned
version) and hands both to `score`, which completes the rows from the feature store, holds
them to the contract, predicts (single records micro-batched, see batching.py) and logs; the
protocol then writes its own answer. As BentoML's base_app and MLflow's `invocations()`, the
core knows nothing of requests or status codes: what it refuses to score it raises as a
`Refused` (or the feature store's `LookupRefused`), and the app's dispatch answers it.

The slots are two attributes (`champion`, `challenger`) swapped by one assignment on the event
loop (`install`), so a request keeps the `Served` it was given however the slots move.

A model that fails (raises anything but an input refusal, answers NaN or the wrong shape, or
takes longer than `serving.limits.model_s`) fails only the requests of that model call, as a
`ModelFailed`; every failed call is counted and logged, and after
`serving.limits.unready_after_failures` consecutive failed calls of the champion the server
says it is not ready, so an orchestrator stops routing to it until another version is installed
(a rollback moves the alias, the reload loop installs it) or a call succeeds again. A challenger
that failed as many calls in a row gets no more of the A/B split until another version is
installed as challenger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_runtime.features.columns import feature_split
from mlops_runtime.project import train_command
from mlops_runtime.serve.ab import CHALLENGER, CHAMPION, ab_config, choose_arm, sticky_key
from mlops_runtime.serve.batching import MicroBatcher, ModelFailure, ModelInputError, failed
from mlops_runtime.serve.fast_predict import Prediction
from mlops_runtime.serve.feature_lookup import Completed, FeatureLookup, LookupRefused
from mlops_runtime.serve.model_source import (
    LoadedModel,
    LocalSource,
    ModelRef,
    RegistrySource,
    make_source,
    prepare,
)
from mlops_runtime.serve.prediction_log import Entry, PredictionLog
from mlops_runtime.serve.prometheus_export import ServingMetrics
from mlops_runtime.serve.record_validation import Batch, ContractRejection, Door
from mlops_runtime.serve.rows import Rows

log = logging.getLogger("mlops_runtime.serve.stage")

BATCH_THREADS = "batch"  # the name prefix of the threads big batches are scored in
COLUMNAR_ROWS = 32  # from this many rows the column-wise check beats the per-record one
BIG_BATCH_ROWS = 256  # larger requests are validated off the event loop, logged as Parquet


class Refused(Exception):
    """A request the core does not score: a message and more fields for the answer."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotServing(Refused):
    """No model serves yet (or the feature store is not open): `detail` says why."""

    def __init__(self, detail: str | None):
        super().__init__("no model loaded yet", {"detail": detail})


class UnknownVersion(Refused):
    """A version asked for by name that neither slot holds."""

    def __init__(self, version: str):
        super().__init__(f"version {version!r} is not being served")


class InvalidInput(Refused):
    """Rows the contract or the model refused."""


class ModelFailed(Refused):
    """The model failed on the call that held these rows (see ModelFailure): a 500."""


class ModelTimedOut(ModelFailed):
    """The model call took longer than serving.limits.model_s: a 504."""


@dataclass(frozen=True)
class Served:
    """A loaded model, the arm it serves, and its door (its own training categories)."""

    arm: str
    model: LoadedModel
    door: Door


class ServingCore:
    def __init__(
        self,
        config: Mapping[str, Any],
        contract: Mapping[str, Any],
        *,
        source: LocalSource | RegistrySource | None = None,
        environ: Mapping[str, str] | None = None,
        root: Path | None = None,
    ):
        env = os.environ if environ is None else environ
        self.config = config
        self.contract = contract
        serving = dict(config.get("serving") or {})
        self.serving = serving
        self.task = config["model"]["task"]
        self.alias = serving.get("model_alias", CHAMPION)
        self.ab = ab_config(config)
        self.reload_interval = float(
            env.get("MLOPS_RELOAD_INTERVAL_S") or serving.get("reload_interval_s", 2)
        )
        self.numeric, self.categorical = feature_split(config, contract)
        self.base_door = Door(config, contract, self.numeric, self.categorical)
        self.column_names = [c.name for c in self.base_door.columns]
        self._source = source
        self.root = root or Path.cwd()
        # Why no model serves yet, for the log and every 503 (see unready()).
        self._waiting: str | None = None
        store = bool(config.get("feature_store"))
        self.metrics = ServingMetrics(self.task, feature_store=store)
        # Feast is imported (at startup) only by projects that declare a store.
        self.features = (
            FeatureLookup(config, self.root, self.metrics.observe_lookup) if store else None
        )
        log_cfg = serving.get("prediction_log") or {}
        self.prediction_log = PredictionLog(
            Path(env.get("MLOPS_PREDICTION_LOG_DIR") or log_cfg.get("dir", "prediction_log")),
            float(log_cfg.get("rotate_mb", 64)),
            keep_files=log_cfg.get("keep_files"),
            on_drop=self.metrics.log_dropped.inc,
        )
        batching = serving.get("batching") or {}
        self.batch_executor = ThreadPoolExecutor(2, thread_name_prefix=BATCH_THREADS)
        limits = serving.get("limits") or {}
        self.model_timeout_s = float(limits.get("model_s", 10))
        self.unready_after = int(limits.get("unready_after_failures", 5))
        # id() of the loaded models that took longer than the limit once: from then on their
        # micro-batches run in a thread, with a real timeout (batching.py).
        self._slow: set[int] = set()
        self.batcher = MicroBatcher(
            self._run_model,
            int(batching.get("max_batch_size", 32)),
            float(batching.get("max_wait_ms", 2)),
            on_batch=self.metrics.batch_size.observe,
            slow=self._slow,
            executor=self.batch_executor,
            timeout_s=self.model_timeout_s,
            on_timeout=lambda model, failure: self._model_failed(model, failure, None),
        )
        # Consecutive failed model calls per version; any success clears its count.
        self._failures: dict[ModelRef, int] = {}
        self.champion: Served | None = None
        self.challenger: Served | None = None
        self._store_failed = False
        self._reload_task: asyncio.Task[None] | None = None
        # The names the model answers to: the project's, and the source's once it is made.
        self.names = {str(config.get("name"))}

    # -- models -------------------------------------------------------------------------------

    @property
    def source(self) -> LocalSource | RegistrySource:
        if self._source is None:
            self._source = make_source(self.config)
            self.names.add(self._source.name)
        return self._source

    def _arms(self) -> list[tuple[str, str]]:
        arms = [(CHAMPION, self.alias)]
        if self.ab is not None:
            arms.append((CHALLENGER, CHALLENGER))
        return arms

    def refresh(self) -> dict[str, Served | None]:
        """Look up every alias and load versions that changed (blocking; run in a thread)."""
        out: dict[str, Served | None] = {}
        for arm, alias in self._arms():
            current = self.champion if arm == CHAMPION else self.challenger
            ref = self.source.lookup(alias)
            if ref is None:
                # A champion that vanished from the registry keeps serving rather than nothing.
                out[arm] = current if arm == CHAMPION else None
                if arm == CHAMPION and current is None:
                    self._waiting = self._untrained(self.source.missing(alias))
                continue
            if current is not None and current.model.ref == ref:
                out[arm] = current
                continue
            model = prepare(ref, self.source.load(ref), self.config, self.contract)
            door = self.base_door.with_known_categories(model.known_categories)
            out[arm] = Served(arm, model, door)
        return out

    def install(self, found: Mapping[str, Served | None]) -> None:
        """Swap in new models: plain attribute assignment on the event loop, so atomic."""
        before = (self.champion, self.challenger)
        self.champion = found.get(CHAMPION, self.champion)
        self.challenger = found.get(CHALLENGER)
        # A version no longer served keeps no count: a rollback's version starts ready.
        live = {s.model.ref for s in (self.champion, self.challenger) if s is not None}
        # list(): a batch's thread may clear a count meanwhile.
        self._failures = {ref: n for ref, n in list(self._failures.items()) if ref in live}
        self._slow.intersection_update(id(s.model) for s in self.served())
        for arm, old, new in (
            (CHAMPION, before[0], self.champion),
            (CHALLENGER, before[1], self.challenger),
        ):
            if new is not None and (old is None or old.model.ref != new.model.ref):
                if old is not None:
                    self.metrics.reloads.labels(arm).inc()
                log.warning(
                    "%s: serving %s version %s (%s)",
                    arm,
                    new.model.ref.name,
                    new.model.ref.version,
                    "compiled" if new.model.predictor.fast else "pipeline",
                )
        self.metrics.set_models(
            [
                (s.arm, s.model.ref.name, s.model.ref.version, s.model.ref.run_id)
                for s in (self.champion, self.challenger)
                if s is not None
            ]
        )

    def served(self) -> list[Served]:
        """The models serving now, champion first."""
        return [s for s in (self.champion, self.challenger) if s is not None]

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            await self._open_store()
            try:
                self.install(await asyncio.to_thread(self.refresh))
            except Exception:  # noqa: BLE001 - a registry hiccup must not stop serving
                log.warning("model reload failed:\n%s", traceback.format_exc())

    async def _open_store(self) -> None:
        """Open the online store unless it is open; a failure leaves the server unready, and
        the reload loop tries again."""
        features = self.features
        if features is None or features.online is not None:
            return
        try:
            await asyncio.to_thread(features.open)
        except Exception as exc:  # noqa: BLE001 - e.g. Feast missing: say so, keep serving
            if not self._store_failed:
                log.warning("online feature store not open:\n%s", traceback.format_exc())
            else:
                log.warning("online feature store still not open: %s: %s", type(exc).__name__, exc)
            self._store_failed = True

    def _untrained(self, what: str) -> str:
        return (
            f"no model to serve yet: {what}; train one with {train_command(self.root)}. "
            "The server keeps answering 503 until then and serves the model as soon as "
            "training registers it"
        )

    def failing(self, served: Served) -> bool:
        """Whether `served` failed serving.limits.unready_after_failures calls in a row."""
        return self._failures.get(served.model.ref, 0) >= self.unready_after

    def unready(self) -> str | None:
        """Why the server is not ready, in one line for people; None when it is ready (a
        model is loaded and, with a feature store, the store is open)."""
        if self.champion is None:
            return self._waiting or "no model loaded yet"
        failures = self._failures.get(self.champion.model.ref, 0) if self._failures else 0
        if failures >= self.unready_after:
            return (
                f"the model (version {self.champion.model.ref.version}) failed {failures} "
                "model calls in a row (the server's log says why); ready again once a call "
                "succeeds or another version is installed"
            )
        if self.features is not None and self.features.online is None:
            return "the online feature store is not open yet (the server's log says why)"
        return None

    async def startup(self) -> None:
        self.prediction_log.start()
        # Opening a store through Feast takes seconds (its import): meanwhile the model loads.
        opening = asyncio.create_task(self._open_store())
        try:
            self.install(await asyncio.to_thread(self.refresh))
        except Exception as exc:  # noqa: BLE001 - start unready and keep polling, not dying
            log.warning("no model loaded at startup:\n%s", traceback.format_exc())
            first = (str(exc).splitlines() or [""])[0]
            self._waiting = f"the model could not be loaded ({type(exc).__name__}: {first})"
        else:
            if self.champion is None and self._waiting is not None:
                log.warning("%s: %s", self.config.get("name"), self._waiting)
        await opening
        self._reload_task = asyncio.create_task(self._reload_loop())

    async def shutdown(self) -> None:
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        self.prediction_log.flush(2.0)
        self.prediction_log.close()
        self.batch_executor.shutdown(wait=False)
        if self.features is not None:
            self.features.close()

    def _run_model(
        self, model: LoadedModel, numeric: np.ndarray, categorical: np.ndarray
    ) -> Prediction:
        """One model call, held to what an answer is: one finite label per row (and a row of
        finite probabilities per class), in time; anything else raises ModelFailure. A
        ValueError or TypeError is the model refusing an input and passes as it is."""
        started = time.perf_counter()
        try:
            prediction = model.predictor.predict(numeric, categorical)
        except (ValueError, TypeError):
            raise
        except Exception as exc:  # counted, then answered for this call only
            failure = failed(exc)
            self._model_failed(model, failure, exc)
            raise failure from exc
        problem = _unanswerable(prediction, len(numeric), model.classes)
        elapsed = time.perf_counter() - started
        if problem is None and elapsed > self.model_timeout_s:
            # Too late is not good: the client was promised an answer within the limit.
            limit = self.model_timeout_s
            problem = ModelFailure(f"the model took {elapsed:.1f}s, over {limit:g}s", "timeout")
            if id(model) in self._slow:
                raise problem  # a thread's call: its timeout answered and counted it already
            self._slow.add(id(model))
        if problem is not None:
            self._model_failed(model, problem, None)
            raise problem
        if self._failures:
            self._failures.pop(model.ref, None)
        return prediction

    def _model_failed(
        self, model: LoadedModel, failure: ModelFailure, exc: BaseException | None
    ) -> None:
        ref = model.ref
        count = self._failures.get(ref, 0) + 1
        self._failures[ref] = count
        self.metrics.model_failures.labels(ref.version, failure.kind).inc()
        # The first failure of a run is logged with its traceback; then a line now and then,
        # so a model failing every call does not flood the log.
        if count == 1 or count == self.unready_after or count % 1000 == 0:
            log.error(
                "model %s version %s failed (%d in a row): %s%s",
                ref.name,
                ref.version,
                count,
                failure.message,
                "\n" + "".join(traceback.format_exception(exc)) if exc is not None else "",
            )

    # -- who answers --------------------------------------------------------------------------

    def pick(self, first: Any, headers: Mapping[bytes, bytes], request_id: str) -> Served:
        """The arm for a request whose first record is `first`: the champion, or with an A/B
        test the arm its sticky key (that record's field, a header, else the request id)
        falls in."""
        champion = self.champion
        if champion is None:
            raise NotServing(self.unready())
        challenger = self.challenger
        if challenger is None or self.ab is None:
            return champion
        if self._failures and self.failing(challenger):
            return champion  # a challenger that keeps failing leaves the split
        key = sticky_key(self.base_door.sticky, first, headers, request_id)
        return (
            challenger if choose_arm(key, self.ab["challenger_weight"]) == CHALLENGER else champion
        )

    def by_version(self, version: str | None) -> Served:
        """The slot serving `version` (None: the champion)."""
        if self.champion is None:
            raise NotServing(self.unready())
        if version is None:
            return self.champion
        for served in (self.champion, self.challenger):
            if served is not None and served.model.ref.version == version:
                return served
        raise UnknownVersion(version)

    def version_or_none(self, version: str) -> Served | None:
        try:
            return self.by_version(version)
        except Refused:
            return None

    # -- scoring ------------------------------------------------------------------------------

    async def score(
        self,
        rows: Rows,
        served: Served,
        request_id: str,
        endpoint: str,
        started: float,
    ) -> tuple[list[Any], Any, list[list[str]] | None]:
        """Complete from the feature store, validate, predict (micro-batched when single), log.

        Returns (labels, probabilities, stale views): a list of labels, and None, a list of
        lists (one row) or an (n, classes) array, which the JSON and the binary encoders take
        as they are; then each row's stale views when any row has one, else None. `endpoint`
        and `started` (a perf_counter) are what the prediction log records.
        """
        stale: list[list[str]] | None = None
        keys: tuple[str, ...] = ()
        if self.features is not None:
            completed = await self._complete(rows)
            rows, stale, keys = completed.rows, completed.stale, completed.keys
        door = served.door
        try:
            if rows.count > BIG_BATCH_ROWS:
                loop = asyncio.get_running_loop()
                batch = await loop.run_in_executor(self.batch_executor, door.validate_columns, rows)
            elif rows.count >= COLUMNAR_ROWS:
                batch = door.validate_columns(rows)
            else:
                batch = door.validate(rows.as_records(), rows)
        except ContractRejection as rejection:
            self.metrics.observe_violations(rejection.errors)
            raise InvalidInput(
                "contract violation",
                {"violations": rejection.errors, "total": rejection.total},
            ) from None
        labels, proba = await self._predict(batch, served)
        model = served.model
        self.metrics.observe_predictions(model.ref.version, served.arm, labels)
        columnar = len(batch) > BIG_BATCH_ROWS
        self.prediction_log.submit(
            Entry(
                request_id,
                time.time(),
                model.ref.name,
                model.ref.version,
                model.ref.run_id,
                served.arm,
                endpoint,
                # Big batches are logged column-wise (Parquet): no per-row work on this path.
                None if columnar else batch.records,
                labels,
                proba,
                (time.perf_counter() - started) * 1000.0,
                self._log_columns(batch, door, keys) if columnar else None,
                stale=stale,
            )
        )
        return labels, proba, stale if stale is not None and any(stale) else None

    async def _complete(self, rows: Rows) -> Completed:
        assert self.features is not None
        try:
            return await self.features.complete(rows)
        except LookupRefused as refused:
            if "violations" in refused.extra:
                self.metrics.observe_violations(refused.extra["violations"])
            raise

    @staticmethod
    def _log_columns(batch: Batch, door: Door, keys: Sequence[str]) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}
        for key in keys:  # entity keys the features were looked up by
            values = np.empty(len(batch), dtype=object)
            values[:] = [r.get(key) if type(r) is dict else None for r in batch.records]
            columns[key] = values
        columns.update(door.input_columns(batch))
        return columns

    async def _predict(self, batch: Batch, served: Served) -> tuple[list[Any], Any]:
        if len(batch) == 0:
            return [], [] if served.model.classes is not None else None
        try:
            if len(batch) == 1:
                label, proba = await self.batcher.submit(
                    served.model, batch.numeric[0], batch.categorical[0]
                )
                return [label], None if proba is None else [proba]
            loop = asyncio.get_running_loop()
            call = loop.run_in_executor(
                self.batch_executor, self._run_model, served.model, batch.numeric, batch.categorical
            )
            try:
                prediction = await asyncio.wait_for(call, self.model_timeout_s)
            except TimeoutError:
                # The thread cannot be stopped; its late answer is dropped when it comes.
                failure = ModelFailure(
                    f"the model gave no answer within {self.model_timeout_s:g}s", "timeout"
                )
                self._slow.add(id(served.model))
                self._model_failed(served.model, failure, None)
                raise failure from None
            self.metrics.batch_size.observe(len(batch))
        except (ModelInputError, ValueError, TypeError) as exc:
            raise InvalidInput(f"the model rejected the input: {exc}") from None
        except ModelFailure as failure:
            refused = ModelTimedOut if failure.kind == "timeout" else ModelFailed
            raise refused(failure.message) from None
        # orjson writes a float64 array as fast as it reads one; labels may be objects.
        return prediction.labels.tolist(), prediction.proba

    def log_failure(
        self,
        request_id: str,
        endpoint: str,
        served: Served | None,
        status: int,
        message: str,
        elapsed_ms: float,
    ) -> None:
        """A failed prediction request is logged too: the monitor's error rate counts it."""
        ref = served.model.ref if served is not None else None
        self.prediction_log.submit(
            Entry(
                request_id,
                time.time(),
                ref.name if ref is not None else str(self.config.get("name", "")),
                ref.version if ref is not None else "none",
                ref.run_id if ref is not None else None,
                served.arm if served is not None else "none",
                endpoint,
                None,
                (),
                None,
                elapsed_ms,
                status=status,
                error=message,
            )
        )


def _unanswerable(
    prediction: Prediction, rows: int, classes: Sequence[Any] | None
) -> ModelFailure | None:
    """Why a prediction is no answer for `rows` rows (None when it is one): NaN would be sent
    as null and a short or long answer would pair rows with other rows' labels."""
    labels = prediction.labels
    if not 1 <= labels.ndim <= 2 or labels.shape[0] != rows or labels.shape[1:] not in ((), (1,)):
        return ModelFailure(f"the model answered shape {labels.shape} for {rows} rows", "shape")
    if labels.dtype.kind in "fc" and not np.isfinite(labels).all():
        return ModelFailure("the model answered NaN or infinity", "nan")
    proba = prediction.proba
    if proba is not None:
        width = len(classes) if classes is not None else proba.shape[-1] if proba.ndim else 0
        if proba.shape != (rows, width):
            return ModelFailure(
                f"the model answered probabilities of shape {proba.shape} for {rows} rows "
                f"and {width} classes",
                "shape",
            )
        if not np.isfinite(proba).all():
            return ModelFailure("the model answered NaN or infinite probabilities", "nan")
    return None


def model_fields(served: Served, request_id: str) -> dict[str, Any]:
    """Who answered: the fields /predict and /health give for a model."""
    ref = served.model.ref
    return {
        "request_id": request_id,
        "model": ref.name,
        "model_version": ref.version,
        "run_id": ref.run_id,
        "arm": served.arm,
    }

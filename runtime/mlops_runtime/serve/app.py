"""The model server: a plain ASGI app (run by uvicorn, see serve.py).

No web framework sits on the request path: routing is a dict lookup, bodies are parsed with
orjson, and single records are micro-batched into one model call (batching.py). Endpoints:

    POST /predict                    one record (object) or many (array of objects)
    POST /invocations, GET /ping     MLflow scoring protocol
    GET  /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer      Open Inference Protocol (KServe V2)
    GET  /health, /ready, /metrics, /openapi.json

Every response carries X-Request-ID (the client's if it sent a sane one) and, once a model is
loaded, X-Model-Name, X-Model-Version, X-Model-Run-Id and X-AB-Arm. Bad input is a 4xx, never
a 5xx: 400 unreadable body, 413 too large, 415 not JSON, 422 contract violations.

With a feature store (config.json's `feature_store`) every prediction endpoint also takes
records that carry only their entity key and request-time features: feature_lookup.py fills in
the rest before the contract at the door; 404 unknown entity, 422 no usable key, 409 stale
values under `stale: reject`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mlops_runtime.features.columns import feature_split
from mlops_runtime.project import train_command
from mlops_runtime.serve.ab import CHALLENGER, CHAMPION, ab_config, choose_arm, sticky_key
from mlops_runtime.serve.batching import MicroBatcher, ModelInputError
from mlops_runtime.serve.exchange import BadRequest, HttpError
from mlops_runtime.serve.exchange import dumps as _dumps
from mlops_runtime.serve.fast_predict import Prediction
from mlops_runtime.serve.feature_lookup import Completed, FeatureLookup, LookupRefused
from mlops_runtime.serve.mlflow_invocations import invocation_rows
from mlops_runtime.serve.model_source import (
    LoadedModel,
    LocalSource,
    RegistrySource,
    make_source,
    prepare,
)
from mlops_runtime.serve.native_api import predict_rows
from mlops_runtime.serve.open_inference_codec import (
    V2_DATATYPE,
    decode_inputs,
    encode_tensor,
    label_datatype,
    requested_outputs,
)
from mlops_runtime.serve.openapi import build_openapi
from mlops_runtime.serve.prediction_log import Entry, PredictionLog
from mlops_runtime.serve.prometheus_export import ServingMetrics
from mlops_runtime.serve.record_validation import Batch, ContractRejection, Door
from mlops_runtime.serve.rows import Rows

log = logging.getLogger("mlops_runtime.serve.stage")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_V2_MODEL = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")
COLUMNAR_ROWS = 32  # from this many rows the column-wise check beats the per-record one
BIG_BATCH_ROWS = 256  # larger requests are validated off the event loop, logged as Parquet


@dataclass(frozen=True)
class Served:
    """A loaded model, the arm it serves, and its door (its own training categories)."""

    arm: str
    model: LoadedModel
    door: Door

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        ref = self.model.ref
        return [
            (b"x-model-name", ref.name.encode("latin-1", "replace")),
            (b"x-model-version", ref.version.encode("latin-1", "replace")),
            (b"x-model-run-id", (ref.run_id or "").encode("latin-1", "replace")),
            (b"x-ab-arm", self.arm.encode()),
        ]


@dataclass
class Reply:
    status: int
    body: bytes
    endpoint: str
    served: Served | None = None
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] | None = None


class ServingApp:
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
        self.max_body = int(serving.get("max_body_bytes", 1_000_000))
        self.reload_interval = float(
            env.get("MLOPS_RELOAD_INTERVAL_S") or serving.get("reload_interval_s", 2)
        )
        self.numeric, self.categorical = feature_split(config, contract)
        self.base_door = Door(config, contract, self.numeric, self.categorical)
        self._column_names = [c.name for c in self.base_door.columns]
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
        self.batch_executor = ThreadPoolExecutor(2, thread_name_prefix="batch")
        self.batcher = MicroBatcher(
            self._run_model,
            int(batching.get("max_batch_size", 32)),
            float(batching.get("max_wait_ms", 2)),
            on_batch=self.metrics.batch_size.observe,
        )
        self.champion: Served | None = None
        self.challenger: Served | None = None
        self._store_failed = False
        self.openapi = _dumps(build_openapi(config, contract))
        self._reload_task: asyncio.Task[None] | None = None
        self._names = {str(config.get("name"))}
        self.routes: dict[tuple[str, str], Callable[..., Awaitable[Reply]]] = {
            ("POST", "/predict"): self.predict,
            ("POST", "/invocations"): self.invocations,
            ("GET", "/ping"): self.ping,
            ("GET", "/health"): self.health,
            ("GET", "/ready"): self.ready,
            ("GET", "/v2"): self.v2_server,
            ("GET", "/v2/health/live"): self.v2_live,
            ("GET", "/v2/health/ready"): self.v2_ready,
            ("GET", "/metrics"): self.metrics_endpoint,
            ("GET", "/openapi.json"): self.openapi_endpoint,
        }
        self._paths = {path for _, path in self.routes}

    # -- models -------------------------------------------------------------------------------

    @property
    def source(self) -> LocalSource | RegistrySource:
        if self._source is None:
            self._source = make_source(self.config)
            self._names.add(self._source.name)
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

    def _ready(self) -> bool:
        """A model is loaded and, with a feature store, the store is open."""
        return self.unready() is None

    def _untrained(self, what: str) -> str:
        return (
            f"no model to serve yet: {what}; train one with {train_command(self.root)}. "
            "The server keeps answering 503 until then and serves the model as soon as "
            "training registers it"
        )

    def unready(self) -> str | None:
        """Why the server is not ready, in one line for people; None when it is ready."""
        if self.champion is None:
            return self._waiting or "no model loaded yet"
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
        return model.predictor.predict(numeric, categorical)

    def pick(self, first: Any, headers: Mapping[bytes, bytes], request_id: str) -> Served:
        champion = self.champion
        if champion is None:
            raise HttpError(503, "no model loaded yet", {"detail": self.unready()})
        challenger = self.challenger
        if challenger is None or self.ab is None:
            return champion
        key = sticky_key(self.base_door.sticky, first, headers, request_id)
        return (
            challenger if choose_arm(key, self.ab["challenger_weight"]) == CHALLENGER else champion
        )

    def by_version(self, version: str | None) -> Served:
        if self.champion is None:
            raise HttpError(503, "no model loaded yet", {"detail": self.unready()})
        if version is None:
            return self.champion
        for served in (self.champion, self.challenger):
            if served is not None and served.model.ref.version == version:
                return served
        raise HttpError(404, f"version {version!r} is not being served")

    # -- the shared prediction path -----------------------------------------------------------

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
        lists (one row) or an (n, classes) array, which _dumps and the binary encoder take as
        they are; then each row's stale views when any row has one, else None.
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
            raise HttpError(
                422,
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
            raise HttpError(refused.status, refused.message, refused.extra) from None

    @staticmethod
    def _log_columns(batch: Batch, door: Door, keys: Sequence[str]) -> dict[str, np.ndarray]:
        columns: dict[str, np.ndarray] = {}
        for key in keys:  # entity keys the features were looked up by
            values = np.empty(len(batch), dtype=object)
            values[:] = [r.get(key) if type(r) is dict else None for r in batch.records]
            columns[key] = values
        for col in door.columns:
            if col.feature == "numeric":
                columns[col.name] = batch.numeric[:, col.slot]
            elif col.feature == "categorical":
                columns[col.name] = batch.categorical[:, col.slot]
            else:
                columns[col.name] = batch.other[:, col.slot]
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
            prediction = await loop.run_in_executor(
                self.batch_executor, self._run_model, served.model, batch.numeric, batch.categorical
            )
            self.metrics.batch_size.observe(len(batch))
        except (ModelInputError, ValueError, TypeError) as exc:
            raise HttpError(422, f"the model rejected the input: {exc}") from None
        # orjson writes a float64 array as fast as it reads one; labels may be objects.
        return prediction.labels.tolist(), prediction.proba

    def _model_fields(self, served: Served, request_id: str) -> dict[str, Any]:
        ref = served.model.ref
        return {
            "request_id": request_id,
            "model": ref.name,
            "model_version": ref.version,
            "run_id": ref.run_id,
            "arm": served.arm,
        }

    # -- endpoints ----------------------------------------------------------------------------

    async def predict(self, ctx: Context) -> Reply:
        payload = ctx.json(await ctx.body())
        rows, single = predict_rows(payload)
        served = self.pick(rows.first(), ctx.headers, ctx.request_id)
        ctx.served = served
        labels, proba, stale = await self.score(
            rows, served, ctx.request_id, "/predict", ctx.started
        )
        out = self._model_fields(served, ctx.request_id)
        if single:
            out["prediction"] = labels[0]
            if proba is not None:
                out["probabilities"] = proba[0]
            if stale is not None:
                out["stale_features"] = stale[0]
        else:
            out["predictions"] = labels
            if proba is not None:
                out["probabilities"] = proba
            if stale is not None:
                out["stale_features"] = stale
        if served.model.classes is not None:
            out["classes"] = served.model.classes
        return Reply(200, _dumps(out), "/predict", served)

    async def invocations(self, ctx: Context) -> Reply:
        content_type = ctx.headers.get(b"content-type", b"application/json").lower()
        if b"json" not in content_type:
            raise HttpError(415, "only application/json is accepted")
        payload = ctx.json(await ctx.body())
        rows = invocation_rows(payload, self._column_names)
        served = self.pick(rows.first(), ctx.headers, ctx.request_id)
        ctx.served = served
        labels, _, stale = await self.score(
            rows, served, ctx.request_id, "/invocations", ctx.started
        )
        out: dict[str, Any] = {"predictions": labels}
        if stale is not None:
            out["stale_features"] = stale
        return Reply(200, _dumps(out), "/invocations", served)

    async def ping(self, ctx: Context) -> Reply:
        detail = self.unready()
        if detail is None:
            return Reply(200, b"\n", "/ping", self.champion, b"text/plain")
        return Reply(503, detail.encode() + b"\n", "/ping", self.champion, b"text/plain")

    async def health(self, ctx: Context) -> Reply:
        models = [
            {**self._model_fields(s, ctx.request_id), "compiled": s.model.predictor.fast}
            for s in (self.champion, self.challenger)
            if s is not None
        ]
        body: dict[str, Any] = {"status": "ok", "ready": self._ready(), "models": models}
        detail = self.unready()
        if detail is not None:
            body["detail"] = detail
        if self.features is not None:
            body["feature_store"] = {"open": self.features.online is not None}
        return Reply(200, _dumps(body), "/health", self.champion)

    async def ready(self, ctx: Context) -> Reply:
        return self._readiness({}, "/ready", self.champion)

    def _readiness(self, body: dict[str, Any], endpoint: str, served: Served | None) -> Reply:
        """200 {ready: true} or 503 {ready: false, detail: why}."""
        detail = self.unready()
        if detail is None:
            return Reply(200, _dumps({**body, "ready": True}), endpoint, served)
        return Reply(503, _dumps({**body, "ready": False, "detail": detail}), endpoint, served)

    async def v2_server(self, ctx: Context) -> Reply:
        body = {
            "name": "mlops-serving",
            "version": str(self.config.get("compiler_version", "0")),
            "extensions": ["binary_tensor_data"],
        }
        return Reply(200, _dumps(body), "/v2", self.champion)

    async def v2_live(self, ctx: Context) -> Reply:
        return Reply(200, _dumps({"live": True}), "/v2/health/live", self.champion)

    async def v2_ready(self, ctx: Context) -> Reply:
        return self._readiness({}, "/v2/health/ready", self.champion)

    async def metrics_endpoint(self, ctx: Context) -> Reply:
        return Reply(
            200, self.metrics.render(), "/metrics", None, self.metrics.content_type.encode()
        )

    async def openapi_endpoint(self, ctx: Context) -> Reply:
        return Reply(200, self.openapi, "/openapi.json", None)

    async def v2_model(self, ctx: Context, name: str, version: str | None, action: str) -> Reply:
        if name not in self._names:
            raise HttpError(404, f"unknown model {name!r}")
        endpoint = "/v2/models/{name}" + (action or "")
        if action == "/ready":
            if ctx.method != "GET":
                raise HttpError(405, "use GET")
            if version is None:
                return self._readiness({"name": name}, endpoint, self.champion)
            served = self._version_or_none(version)
            ok = served is not None
            body: dict[str, Any] = {"name": name, "ready": ok}
            if not ok:
                body["detail"] = self.unready() or f"version {version!r} is not being served"
            return Reply(200 if ok else 503, _dumps(body), endpoint, served)
        if action == "/infer":
            if ctx.method != "POST":
                raise HttpError(405, "use POST")
            return await self.v2_infer(ctx, version, endpoint)
        if ctx.method != "GET":
            raise HttpError(405, "use GET")
        served = self.by_version(version)
        return Reply(200, _dumps(self._v2_metadata(name, served)), endpoint, served)

    def _version_or_none(self, version: str) -> Served | None:
        try:
            return self.by_version(version)
        except HttpError:
            return None

    def _v2_metadata(self, name: str, served: Served) -> dict[str, Any]:
        target = self.config["data"]["target"]
        inputs = [
            {"name": column, "datatype": V2_DATATYPE[rule["type"]], "shape": [-1]}
            for column, rule in self.contract.get("columns", {}).items()
            if column != target
        ]
        parameters: dict[str, Any] = {"run_id": served.model.ref.run_id, "content_type": "pd"}
        if self.features is not None:
            # An entity key is an input too; the inputs the store supplies may be left out.
            store = self.config["feature_store"]
            kinds = {e["join_key"]: e["type"] for e in store["entities"]}
            known = {i["name"] for i in inputs}
            for key in self.features.join_keys:
                if key not in known:
                    inputs.append({"name": key, "datatype": V2_DATATYPE[kinds[key]], "shape": [-1]})
            parameters["entity_keys"] = sorted(self.features.join_keys)
            parameters["looked_up"] = [
                *(f for v in store["views"] for f in v["features"]),
                *store["on_demand"],
            ]
        classes = served.model.classes
        outputs = [
            {"name": "predict", "datatype": label_datatype(classes, self.task), "shape": [-1]}
        ]
        if classes is not None and served.model.predictor.classes is not None:
            outputs.append(
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]}
            )
        versions = [s.model.ref.version for s in (self.champion, self.challenger) if s is not None]
        return {
            "name": name,
            "versions": versions,
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }

    async def v2_infer(self, ctx: Context, version: str | None, endpoint: str) -> Reply:
        body = await ctx.body()
        binary: bytes | None = None
        header_length = ctx.headers.get(b"inference-header-content-length")
        if header_length is not None:
            # Binary tensor extension: a JSON header of this many bytes, then raw tensors.
            try:
                size = int(header_length)
            except ValueError:
                raise BadRequest("Inference-Header-Content-Length is not a number") from None
            if not 0 <= size <= len(body):
                raise BadRequest("Inference-Header-Content-Length beyond the body")
            payload = ctx.json(body[:size])
            binary = body[size:]
        else:
            payload = ctx.json(body)
        rows, client_id = decode_inputs(payload, binary)
        wanted, binary_out = requested_outputs(payload)
        if version is None:
            served = self.pick(rows.first(), ctx.headers, ctx.request_id)
        else:
            served = self.by_version(version)
        ctx.served = served
        labels, proba, stale = await self.score(rows, served, ctx.request_id, endpoint, ctx.started)
        classes = served.model.classes
        label_type = label_datatype(classes, self.task)
        outputs: list[dict[str, Any]] = [
            {"name": "predict", "datatype": label_type, "shape": [len(labels)], "data": labels}
        ]
        if proba is not None and classes is not None:
            outputs.append(
                {
                    "name": "predict_proba",
                    "datatype": "FP64",
                    "shape": [len(labels), len(classes)],
                    "data": np.asarray(proba, dtype=np.float64).reshape(-1),
                }
            )
        if wanted is not None:
            unknown = [w for w in wanted if w not in {o["name"] for o in outputs}]
            if unknown:
                raise HttpError(
                    400, f"unknown outputs {unknown}; available: predict, predict_proba"
                )
            outputs = [o for o in outputs if o["name"] in wanted]
        ref = served.model.ref
        chunks: list[bytes] = []
        for output in outputs:
            if binary_out is True or output["name"] in (binary_out or ()):
                data = output.pop("data")
                if output["datatype"] == "BOOL":
                    data = np.asarray(data, dtype=bool)
                raw = encode_tensor(output["datatype"], data)
                output["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
        head = _dumps(
            {
                "model_name": ref.name,
                "model_version": ref.version,
                "id": client_id or ctx.request_id,
                "parameters": {
                    "request_id": ctx.request_id,
                    "run_id": ref.run_id,
                    "arm": served.arm,
                    "classes": classes,
                    **({} if stale is None else {"stale_features": stale}),
                },
                "outputs": outputs,
            }
        )
        if not chunks:
            return Reply(200, head, endpoint, served)
        return Reply(
            200,
            b"".join([head, *chunks]),
            endpoint,
            served,
            b"application/octet-stream",
            [(b"inference-header-content-length", str(len(head)).encode())],
        )

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = Context(scope, receive, self.max_body)
        path = scope["path"]
        method = scope["method"]
        try:
            handler = self.routes.get((method, path))
            if handler is not None:
                reply = await handler(ctx)
            else:
                match = _V2_MODEL.fullmatch(path)
                if match is not None:
                    name, version, action = match.groups()
                    reply = await self.v2_model(ctx, name, version, action or "")
                elif path in self._paths:
                    raise HttpError(405, f"method {method} not allowed on {path}")
                else:
                    raise HttpError(404, f"no endpoint {path}")
        except (HttpError, BadRequest) as exc:
            status = exc.status
            body: dict[str, Any] = {"error": exc.message, "request_id": ctx.request_id}
            if isinstance(exc, HttpError):
                body.update(exc.extra)
            reply = Reply(status, _dumps(body), _endpoint_label(path), ctx.served or self.champion)
        except Exception:  # noqa: BLE001 - a bug answers 500 with the request id, server lives
            log.error("request %s failed:\n%s", ctx.request_id, traceback.format_exc())
            body = {"error": "internal error", "request_id": ctx.request_id}
            reply = Reply(500, _dumps(body), _endpoint_label(path), ctx.served or self.champion)
        headers = [
            (b"content-type", reply.content_type),
            # An explicit length spares uvicorn the chunked encoding.
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", ctx.request_id.encode()),
        ]
        if reply.served is not None:
            headers.extend(reply.served.headers)
        if reply.headers:
            headers.extend(reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        version = reply.served.model.ref.version if reply.served is not None else "none"
        elapsed = time.perf_counter() - ctx.started
        self.metrics.observe_request(reply.endpoint, reply.status, version, elapsed)
        if reply.status >= 400 and reply.endpoint in _PREDICTION_ENDPOINTS:
            self._log_failure(ctx, reply, elapsed)

    def _log_failure(self, ctx: Context, reply: Reply, elapsed: float) -> None:
        """A failed prediction request is logged too: the monitor's error rate counts it."""
        served = reply.served
        ref = served.model.ref if served is not None else None
        try:
            message = str(orjson.loads(reply.body).get("error", ""))[:500]
        except (ValueError, AttributeError):
            message = ""
        self.prediction_log.submit(
            Entry(
                ctx.request_id,
                time.time(),
                ref.name if ref is not None else str(self.config.get("name", "")),
                ref.version if ref is not None else "none",
                ref.run_id if ref is not None else None,
                served.arm if served is not None else "none",
                reply.endpoint,
                None,
                (),
                None,
                elapsed * 1000.0,
                status=reply.status,
                error=message,
            )
        )


_PREDICTION_ENDPOINTS = frozenset({"/predict", "/invocations", "/v2/models/{name}/infer"})


def _endpoint_label(path: str) -> str:
    """Bounded label values: unknown paths must not grow the metric's cardinality."""
    if path.startswith("/v2/models/"):
        match = _V2_MODEL.fullmatch(path)
        return "/v2/models/{name}" + ((match.group(3) or "") if match else "")
    known = {"/predict", "/invocations", "/ping", "/health", "/ready", "/v2", "/v2/health/live",
             "/v2/health/ready", "/metrics", "/openapi.json"}  # fmt: skip
    return path if path in known else "other"


class Context:
    """Per-request state: headers, request id, body reader with the size limit."""

    __slots__ = ("_receive", "headers", "max_body", "method", "request_id", "served", "started")

    def __init__(self, scope: Scope, receive: Receive, max_body: int):
        self.started = time.perf_counter()
        self.method: str = scope["method"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self._receive = receive
        self.max_body = max_body
        self.served: Served | None = None
        given = self.headers.get(b"x-request-id")
        text = given.decode("latin-1") if given else ""
        self.request_id = text if text and _REQUEST_ID.fullmatch(text) else uuid.uuid4().hex

    async def body(self) -> bytes:
        length = self.headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body:
                    raise BadRequest(f"body larger than {self.max_body} bytes", 413)
            except ValueError:
                raise BadRequest("invalid Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected", 499)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BadRequest(f"body larger than {self.max_body} bytes", 413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def json(body: bytes) -> Any:
        if not body:
            raise BadRequest("empty body: send JSON")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None


def app_from_config() -> ServingApp:
    """The app of the project in the current folder: what each of several workers imports."""
    from mlops_runtime.project import load_project

    project = load_project()
    return create_app(project.config, project.contract, root=project.root)


def create_app(
    config: Mapping[str, Any],
    contract: Mapping[str, Any],
    *,
    source: LocalSource | RegistrySource | None = None,
    root: Path | None = None,
) -> ServingApp:
    """`root` is the project folder (a feature store's repository lies in it; default: the
    current folder)."""
    return ServingApp(config, contract, source=source, root=root)

"""The model server: a plain ASGI app (run by uvicorn, see serve.py) assembled from its parts.

No web framework sits on the request path: routing is a dict lookup, bodies are parsed with
orjson, and single records are micro-batched into one model call (batching.py). The parts:

    core.py                 ServingCore: the model slots, reload, the A/B choice and scoring
    native_api.py           POST /predict    one record (object) or many (array of objects)
    mlflow_invocations.py   POST /invocations, GET /ping      MLflow scoring protocol
    open_inference.py       GET  /v2, /v2/health/live, /v2/health/ready,
                                 /v2/models/{name}[/versions/{v}][/ready]
                            POST /v2/models/{name}[/versions/{v}]/infer
                                                    Open Inference Protocol (KServe V2)
    system_routes.py        GET  /health, /ready, /metrics, /openapi.json
    exchange.py             the request's context, the reply, the errors that become a 4xx

This module is the ASGI entry: the lifespan (the core's startup and shutdown), the dispatch
to a route, the answer of every error, the response headers, the request metrics, and the
log entry of a failed prediction request.

Every response carries X-Request-ID (the client's if it sent a sane one) and, once a model is
loaded, X-Model-Name, X-Model-Version, X-Model-Run-Id and X-AB-Arm. Bad input is a 4xx, never
a 5xx: 400 unreadable body, 413 too large, 415 not JSON, 422 contract violations.

With a feature store (config.json's `feature_store`) every prediction endpoint also takes
records that carry only their entity key and request-time features: feature_lookup.py fills in
the rest before the contract at the door; 404 unknown entity, 422 no usable key, 409 stale
values under `stale: reject`.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from mlops_runtime.serve.core import (
    InvalidInput,
    ModelFailed,
    ModelTimedOut,
    NotServing,
    Refused,
    ServingCore,
    UnknownVersion,
)
from mlops_runtime.serve.exchange import (
    BadRequest,
    Context,
    HttpError,
    Receive,
    Reply,
    Routes,
    Scope,
    Send,
    dumps,
    model_headers,
)
from mlops_runtime.serve.feature_lookup import LookupRefused
from mlops_runtime.serve.mlflow_invocations import MlflowInvocations
from mlops_runtime.serve.model_source import LocalSource, RegistrySource
from mlops_runtime.serve.native_api import NativeApi
from mlops_runtime.serve.open_inference import MODEL_PATH, OpenInference
from mlops_runtime.serve.system_routes import SystemRoutes

log = logging.getLogger("mlops_runtime.serve.stage")

# What the core's refusals are answered with (the feature store's carry their own status).
REFUSAL_STATUS: dict[type[Refused], int] = {
    NotServing: 503,
    UnknownVersion: 404,
    InvalidInput: 422,
    ModelFailed: 500,
    ModelTimedOut: 504,
}


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
        core = ServingCore(config, contract, source=source, environ=environ, root=root)
        self.core = core
        self.metrics = core.metrics
        self.max_body = int(core.serving.get("max_body_bytes", 1_000_000))
        self.open_inference = OpenInference(core)
        self.routes: Routes = {
            **NativeApi(core).routes(),
            **MlflowInvocations(core).routes(),
            **SystemRoutes(core).routes(),
            **self.open_inference.routes(),
        }
        self._paths = {path for _, path in self.routes}
        # One of several worker processes (app_from_config): nothing runs after its shutdown.
        self.worker_process = False

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
                await self.core.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.core.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                if self.worker_process:
                    from mlops_runtime.serve.stage import leave_stuck_model_calls

                    leave_stuck_model_calls()  # the process ends after this anyway
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
                match = MODEL_PATH.fullmatch(path)
                if match is not None:
                    name, version, action = match.groups()
                    reply = await self.open_inference.model(ctx, name, version, action or "")
                elif path in self._paths:
                    raise HttpError(405, f"method {method} not allowed on {path}")
                else:
                    raise HttpError(404, f"no endpoint {path}")
        except (HttpError, BadRequest) as exc:
            extra = exc.extra if isinstance(exc, HttpError) else None
            reply = self._error(ctx, path, exc.status, exc.message, extra)
        except Refused as exc:
            reply = self._error(ctx, path, REFUSAL_STATUS[type(exc)], exc.message, exc.extra)
        except LookupRefused as exc:
            reply = self._error(ctx, path, exc.status, exc.message, exc.extra)
        except Exception:  # noqa: BLE001 - a bug answers 500 with the request id, server lives
            log.error("request %s failed:\n%s", ctx.request_id, traceback.format_exc())
            reply = self._error(ctx, path, 500, "internal error", None)
        headers = [
            (b"content-type", reply.content_type),
            # An explicit length spares uvicorn the chunked encoding.
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", ctx.request_id.encode()),
        ]
        if reply.served is not None:
            headers.extend(model_headers(reply.served))
        if reply.headers:
            headers.extend(reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})
        version = reply.served.model.ref.version if reply.served is not None else "none"
        elapsed = time.perf_counter() - ctx.started
        self.metrics.observe_request(reply.endpoint, reply.status, version, elapsed)
        if reply.status >= 400 and reply.endpoint in _PREDICTION_ENDPOINTS:
            self._log_failure(ctx, reply, elapsed)

    def _error(
        self, ctx: Context, path: str, status: int, message: str, extra: dict[str, Any] | None
    ) -> Reply:
        body: dict[str, Any] = {"error": message, "request_id": ctx.request_id}
        if extra:
            body.update(extra)
        return Reply(status, dumps(body), _endpoint_label(path), ctx.served or self.core.champion)

    def _log_failure(self, ctx: Context, reply: Reply, elapsed: float) -> None:
        """A failed prediction request is logged too: the monitor's error rate counts it."""
        try:
            message = str(orjson.loads(reply.body).get("error", ""))[:500]
        except (ValueError, AttributeError):
            message = ""
        self.core.log_failure(
            ctx.request_id, reply.endpoint, reply.served, reply.status, message, elapsed * 1000.0
        )


_PREDICTION_ENDPOINTS = frozenset({"/predict", "/invocations", "/v2/models/{name}/infer"})
_KNOWN_PATHS = frozenset(
    ("/predict", "/invocations", "/ping", "/health", "/ready", "/v2", "/v2/health/live",
     "/v2/health/ready", "/metrics", "/openapi.json")
)  # fmt: skip


def _endpoint_label(path: str) -> str:
    """Bounded label values: unknown paths must not grow the metric's cardinality."""
    if path.startswith("/v2/models/"):
        match = MODEL_PATH.fullmatch(path)
        return "/v2/models/{name}" + ((match.group(3) or "") if match else "")
    return path if path in _KNOWN_PATHS else "other"


def app_from_config() -> ServingApp:
    """The app of the project in the current folder: what each of several workers imports."""
    from mlops_runtime.project import load_project

    project = load_project()
    if importlib.util.find_spec("httptools") is not None:
        from mlops_runtime.serve.http_guard import configure

        configure(project.config)  # before this worker listens: its read deadlines
    app = create_app(project.config, project.contract, root=project.root)
    app.worker_process = True
    return app


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

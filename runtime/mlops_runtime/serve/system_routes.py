"""The server's own routes, whatever the protocol: `GET /health`, `/ready`, `/metrics` and
`/openapi.json`.

/health is 200 while the process lives (what an orchestrator's liveness probe asks) and says
which models serve, compiled or not, and why the server is not ready if it is not; /ready is
200 `{ready: true}` or 503 `{ready: false, detail}`, as are the Open Inference readiness routes
(open_inference.py), through `readiness`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_runtime.serve.core import model_fields
from mlops_runtime.serve.exchange import Context, Reply, Routes, dumps
from mlops_runtime.serve.openapi import build_openapi

if TYPE_CHECKING:
    from mlops_runtime.serve.core import Served, ServingCore


def readiness(
    core: ServingCore, body: dict[str, Any], endpoint: str, served: Served | None
) -> Reply:
    """200 {ready: true} or 503 {ready: false, detail: why}, after the fields of `body`."""
    detail = core.unready()
    if detail is None:
        return Reply(200, dumps({**body, "ready": True}), endpoint, served)
    return Reply(503, dumps({**body, "ready": False, "detail": detail}), endpoint, served)


class SystemRoutes:
    def __init__(self, core: ServingCore):
        self.core = core
        self.openapi = dumps(build_openapi(core.config, core.contract))

    def routes(self) -> Routes:
        return {
            ("GET", "/health"): self.health,
            ("GET", "/ready"): self.ready,
            ("GET", "/metrics"): self.metrics,
            ("GET", "/openapi.json"): self.openapi_document,
        }

    async def health(self, ctx: Context) -> Reply:
        core = self.core
        models = [
            {**model_fields(s, ctx.request_id), "compiled": s.model.predictor.fast}
            for s in core.served()
        ]
        detail = core.unready()
        body: dict[str, Any] = {"status": "ok", "ready": detail is None, "models": models}
        if detail is not None:
            body["detail"] = detail
        if core.features is not None:
            body["feature_store"] = {"open": core.features.online is not None}
        return Reply(200, dumps(body), "/health", core.champion)

    async def ready(self, ctx: Context) -> Reply:
        return readiness(self.core, {}, "/ready", self.core.champion)

    async def metrics(self, ctx: Context) -> Reply:
        metrics = self.core.metrics
        return Reply(200, metrics.render(), "/metrics", None, metrics.content_type.encode())

    async def openapi_document(self, ctx: Context) -> Reply:
        return Reply(200, self.openapi, "/openapi.json", None)

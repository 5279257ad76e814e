"""Open Inference Protocol V2 (KServe, Triton, MLServer): its routes over the core.

    GET  /v2, /v2/health/live, /v2/health/ready              server metadata and health
    GET  /v2/models/{name}[/versions/{v}][/ready]            model metadata and readiness
    POST /v2/models/{name}[/versions/{v}]/infer              inference, JSON or binary tensors

The tensors' encoding (datatypes, the binary_tensor_data extension) is open_inference_codec.py;
a request without a version goes to the arm the core picks, one with a version to that slot.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_runtime.serve.exchange import BadRequest, Context, HttpError, Reply, Routes, dumps
from mlops_runtime.serve.open_inference_codec import (
    V2_DATATYPE,
    decode_inputs,
    encode_tensor,
    label_datatype,
    requested_outputs,
)
from mlops_runtime.serve.system_routes import readiness

if TYPE_CHECKING:
    from mlops_runtime.serve.core import Served, ServingCore

# /v2/models/{name}[/versions/{v}][/ready|/infer]: groups name, version, action.
MODEL_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")


class OpenInference:
    def __init__(self, core: ServingCore):
        self.core = core

    def routes(self) -> Routes:
        """The fixed paths; the model paths (MODEL_PATH) go to `model`."""
        return {
            ("GET", "/v2"): self.server,
            ("GET", "/v2/health/live"): self.live,
            ("GET", "/v2/health/ready"): self.ready,
        }

    async def server(self, ctx: Context) -> Reply:
        body = {
            "name": "mlops-serving",
            "version": str(self.core.config.get("compiler_version", "0")),
            "extensions": ["binary_tensor_data"],
        }
        return Reply(200, dumps(body), "/v2", self.core.champion)

    async def live(self, ctx: Context) -> Reply:
        return Reply(200, dumps({"live": True}), "/v2/health/live", self.core.champion)

    async def ready(self, ctx: Context) -> Reply:
        return readiness(self.core, {}, "/v2/health/ready", self.core.champion)

    async def model(self, ctx: Context, name: str, version: str | None, action: str) -> Reply:
        """A MODEL_PATH route: `action` is "", "/ready" or "/infer"."""
        core = self.core
        if name not in core.names:
            raise HttpError(404, f"unknown model {name!r}")
        endpoint = "/v2/models/{name}" + (action or "")
        if action == "/ready":
            if ctx.method != "GET":
                raise HttpError(405, "use GET")
            if version is None:
                return readiness(core, {"name": name}, endpoint, core.champion)
            served = core.version_or_none(version)
            ok = served is not None
            body: dict[str, Any] = {"name": name, "ready": ok}
            if not ok:
                body["detail"] = core.unready() or f"version {version!r} is not being served"
            return Reply(200 if ok else 503, dumps(body), endpoint, served)
        if action == "/infer":
            if ctx.method != "POST":
                raise HttpError(405, "use POST")
            return await self.infer(ctx, version, endpoint)
        if ctx.method != "GET":
            raise HttpError(405, "use GET")
        served = core.by_version(version)
        return Reply(200, dumps(self.metadata(name, served)), endpoint, served)

    def metadata(self, name: str, served: Served) -> dict[str, Any]:
        core = self.core
        target = core.config["data"]["target"]
        inputs = [
            {"name": column, "datatype": V2_DATATYPE[rule["type"]], "shape": [-1]}
            for column, rule in core.contract.get("columns", {}).items()
            if column != target
        ]
        parameters: dict[str, Any] = {"run_id": served.model.ref.run_id, "content_type": "pd"}
        if core.features is not None:
            # An entity key is an input too; the inputs the store supplies may be left out.
            store = core.config["feature_store"]
            kinds = {e["join_key"]: e["type"] for e in store["entities"]}
            known = {i["name"] for i in inputs}
            for key in core.features.join_keys:
                if key not in known:
                    inputs.append({"name": key, "datatype": V2_DATATYPE[kinds[key]], "shape": [-1]})
            parameters["entity_keys"] = sorted(core.features.join_keys)
            parameters["looked_up"] = [
                *(f for v in store["views"] for f in v["features"]),
                *store["on_demand"],
            ]
        classes = served.model.classes
        outputs = [
            {"name": "predict", "datatype": label_datatype(classes, core.task), "shape": [-1]}
        ]
        if classes is not None and served.model.predictor.classes is not None:
            outputs.append(
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]}
            )
        return {
            "name": name,
            "versions": [s.model.ref.version for s in core.served()],
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            "parameters": parameters,
        }

    async def infer(self, ctx: Context, version: str | None, endpoint: str) -> Reply:
        core = self.core
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
            served = core.pick(rows.first(), ctx.headers, ctx.request_id)
        else:
            served = core.by_version(version)
        ctx.served = served
        labels, proba, stale = await core.score(rows, served, ctx.request_id, endpoint, ctx.started)
        classes = served.model.classes
        label_type = label_datatype(classes, core.task)
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
        head = dumps(
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

"""The project's own API: `POST /predict` with one record (an object) or many (an array).

A single record is answered with `prediction` (and `probabilities`, `classes`), a list with
`predictions`; both with the model fields (request id, model, version, run id, arm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_runtime.serve.core import model_fields
from mlops_runtime.serve.exchange import BadRequest, Context, Reply, Routes, dumps
from mlops_runtime.serve.rows import Rows

if TYPE_CHECKING:
    from mlops_runtime.serve.core import ServingCore


def predict_rows(payload: Any) -> tuple[Rows, bool]:
    """(rows, single?): a single record is answered with `prediction`, a list `predictions`."""
    if isinstance(payload, dict):
        return Rows(1, records=[payload]), True
    if isinstance(payload, list):
        return Rows(len(payload), records=payload), False
    raise BadRequest("body must be a JSON object (one record) or an array of records")


class NativeApi:
    """POST /predict: the body to rows, the core scores them, the answer in this API's shape."""

    def __init__(self, core: ServingCore):
        self.core = core

    def routes(self) -> Routes:
        return {("POST", "/predict"): self.predict}

    async def predict(self, ctx: Context) -> Reply:
        core = self.core
        payload = ctx.json(await ctx.body())
        rows, single = predict_rows(payload)
        served = core.pick(rows.first(), ctx.headers, ctx.request_id)
        ctx.served = served
        labels, proba, stale = await core.score(
            rows, served, ctx.request_id, "/predict", ctx.started
        )
        out = model_fields(served, ctx.request_id)
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
        return Reply(200, dumps(out), "/predict", served)

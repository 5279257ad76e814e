"""MLflow's scoring protocol: `POST /invocations` in all four of its layouts, and `GET /ping`.

`/invocations` answers `{"predictions": [...]}` (labels only, as MLflow's pyfunc server does);
content types other than JSON are 415. `/ping` is MLflow's health check: 200 with a model
loaded, else 503 with the reason as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_runtime.serve.exchange import BadRequest, Context, HttpError, Reply, Routes, dumps
from mlops_runtime.serve.rows import Rows, rows_to_columns

if TYPE_CHECKING:
    from mlops_runtime.serve.core import ServingCore

_LAYOUTS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def invocation_rows(payload: Any, names: Sequence[str]) -> Rows:
    """dataframe_split, dataframe_records, inputs or instances; `names` are the contract's
    columns in order, which rows given as bare lists of values follow."""
    if not isinstance(payload, dict):
        raise BadRequest(
            "body must be an object with one of dataframe_split, dataframe_records, "
            "inputs, instances"
        )
    keys = [k for k in _LAYOUTS if k in payload]
    if len(keys) != 1:
        raise BadRequest(
            "body needs exactly one of dataframe_split, dataframe_records, inputs, instances"
        )
    value = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, dict):
            raise BadRequest("dataframe_split must be an object with columns and data")
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BadRequest("dataframe_split.columns must be a list of column names")
        width = len(columns)
        if not isinstance(data, list) or not all(type(r) is list and len(r) == width for r in data):
            raise BadRequest("dataframe_split.data must be rows as long as columns")
        return rows_to_columns(columns, data)
    if keys[0] == "dataframe_records":
        if not isinstance(value, list):
            raise BadRequest("dataframe_records must be a list of records")
        return Rows(len(value), records=value)
    # inputs / instances: records, one record, or columns {name: [values]}
    if isinstance(value, list):
        if value and all(isinstance(r, list) for r in value):
            if not all(len(r) == len(names) for r in value):
                raise BadRequest(f"rows given as lists need {len(names)} values: {list(names)}")
            return rows_to_columns(list(names), value)
        return Rows(len(value), records=value)
    if isinstance(value, dict):
        return columns_to_rows(value)
    raise BadRequest(f"{keys[0]} must be a list of records or an object of columns")


def columns_to_rows(columns: Mapping[str, Any]) -> Rows:
    if not columns:
        return Rows(0, records=[])
    if all(isinstance(v, list) for v in columns.values()):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise BadRequest("all columns must have the same length")
        return Rows(lengths.pop(), columns=dict(columns))
    if any(isinstance(v, list) for v in columns.values()):
        raise BadRequest("give every column as a list, or one record of scalars")
    return Rows(1, records=[dict(columns)])


class MlflowInvocations:
    """POST /invocations and GET /ping, over the core."""

    def __init__(self, core: ServingCore):
        self.core = core

    def routes(self) -> Routes:
        return {("POST", "/invocations"): self.invocations, ("GET", "/ping"): self.ping}

    async def invocations(self, ctx: Context) -> Reply:
        core = self.core
        content_type = ctx.headers.get(b"content-type", b"application/json").lower()
        if b"json" not in content_type:
            raise HttpError(415, "only application/json is accepted")
        payload = ctx.json(await ctx.body())
        rows = invocation_rows(payload, core.column_names)
        served = core.pick(rows.first(), ctx.headers, ctx.request_id)
        ctx.served = served
        labels, _, stale = await core.score(
            rows, served, ctx.request_id, "/invocations", ctx.started
        )
        out: dict[str, Any] = {"predictions": labels}
        if stale is not None:
            out["stale_features"] = stale
        return Reply(200, dumps(out), "/invocations", served)

    async def ping(self, ctx: Context) -> Reply:
        detail = self.core.unready()
        champion = self.core.champion
        if detail is None:
            return Reply(200, b"\n", "/ping", champion, b"text/plain")
        return Reply(503, detail.encode() + b"\n", "/ping", champion, b"text/plain")

"""The project's own API: `POST /predict` with one record (an object) or many (an array)."""

from __future__ import annotations

from typing import Any

from mlops_runtime.serve.exchange import BadRequest
from mlops_runtime.serve.rows import Rows


def predict_rows(payload: Any) -> tuple[Rows, bool]:
    """(rows, single?): a single record is answered with `prediction`, a list `predictions`."""
    if isinstance(payload, dict):
        return Rows(1, records=[payload]), True
    if isinstance(payload, list):
        return Rows(len(payload), records=payload), False
    raise BadRequest("body must be a JSON object (one record) or an array of records")

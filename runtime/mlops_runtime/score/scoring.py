"""One batch of rows scored as the server scores a request: the door's record checks, then the
model's prediction code. The in-process engine and Spark's executors call this same code.

Rows that break the contract are not an error here: they come back as rejects, each with its
input position and every rule it broke (the faults a 422 would list), and the others are
scored. Rows in = scored + rejected, for every batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from mlops_runtime.score.rows import door_rows
from mlops_runtime.serve.model_source import LoadedModel
from mlops_runtime.serve.record_validation import Batch, Door

REJECTS = pa.schema(
    [("source", pa.string()), ("row", pa.int64()), ("checks", pa.string()), ("faults", pa.string())]
)


@dataclass(frozen=True)
class Scored:
    predictions: pa.RecordBatch
    rejects: pa.RecordBatch
    batch: Batch  # the scored rows as validated: what the prediction log records
    labels: np.ndarray
    proba: np.ndarray | None


class Scorer:
    """The model and door of one version; `key` is an input column copied to the output."""

    def __init__(self, model: LoadedModel, door: Door, key: str | None = None) -> None:
        self.model = model
        self.door = door.with_known_categories(model.known_categories)
        self.key = key
        classes = model.classes
        self.prediction_type = pa.array(classes).type if classes else pa.float64()
        # A probability column per class only when the model gives probabilities: the same
        # columns for every batch, one with no scored row and an empty part included.
        self.probabilities = (
            [f"probability_{label}" for label in classes]
            if classes and gives_probabilities(model.predictor)
            else []
        )
        # The door's own columns; the others too when it refuses extra columns.
        self.names = None if door.forbid_extra else frozenset(c.name for c in door.columns)

    def schemas(self, key_type: pa.DataType | None = None) -> dict[str, pa.Schema]:
        """The columns of the two outputs, for a part that had no rows."""
        fields = [("source", pa.string()), ("row", pa.int64())]
        if self.key is not None:
            fields.append((self.key, key_type or pa.string()))
        fields.append(("prediction", self.prediction_type))
        fields += [(name, pa.float64()) for name in self.probabilities]
        fields += [(name, pa.string()) for name in ("request_id", "model_version", "run_id")]
        return {"predictions": pa.schema(fields), "rejects": REJECTS}

    def score(self, batch: pa.RecordBatch, source: str, first_row: int, request_id: str) -> Scored:
        """`request_id`: what the prediction log records these rows under."""
        rows = door_rows(batch, self.names)
        good, checked, faults = self.door.split_columns(rows)
        positions = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
        if len(checked):
            prediction = self.model.predictor.predict(checked.numeric, checked.categorical)
            labels, proba = prediction.labels, prediction.proba
        else:
            labels, proba = np.empty(0, dtype=object), None
        out: dict[str, Any] = {"source": _same(source, len(checked))}
        out["row"] = pa.array(positions[good])
        if self.key is not None:
            out[self.key] = batch.column(self.key).take(pa.array(np.flatnonzero(good)))
        out["prediction"] = pa.array(
            labels.tolist() if labels.dtype == object else labels, self.prediction_type
        )
        for i, name in enumerate(self.probabilities):
            values = proba[:, i] if proba is not None else np.empty(0, dtype=np.float64)
            out[name] = pa.array(values, pa.float64())
        ref = self.model.ref
        out["request_id"] = _same(request_id, len(checked))
        out["model_version"] = _same(ref.version, len(checked))
        out["run_id"] = _same(ref.run_id, len(checked))
        bad = np.flatnonzero(~good)
        rejects = pa.RecordBatch.from_pydict(
            schema=REJECTS,
            mapping={
                "source": _same(source, len(bad)),
                "row": pa.array(positions[bad]),
                "checks": pa.array(
                    [",".join(sorted({f["check"] for f in faults[i]})) for i in bad.tolist()],
                    pa.string(),
                ),
                "faults": pa.array([_faults_json(faults[i]) for i in bad.tolist()], pa.string()),
            },
        )
        return Scored(pa.RecordBatch.from_pydict(out), rejects, checked, labels, proba)


def gives_probabilities(predictor: Any) -> bool:
    """Whether the predictor's `predict` returns probabilities (the serving code decides the
    same way: a classifier whose final step has `predict_proba`)."""
    if getattr(predictor, "classes", None) is None:
        return False
    compiled = getattr(predictor, "has_proba", None)
    if compiled is not None:
        return bool(compiled)
    return hasattr(predictor.pipeline, "predict_proba")


def _same(value: str | None, n: int) -> pa.Array:
    """A string column of one value: Arrow repeats it (a Python list of n costs ~10 ms per
    65,536 rows, four times a batch)."""
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _faults_json(faults: Sequence[Mapping[str, Any]]) -> str:
    return orjson.dumps(
        [{k: v for k, v in f.items() if k != "record"} for f in faults], default=str
    ).decode()

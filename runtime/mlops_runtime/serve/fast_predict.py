"""A numpy-only twin of the fitted pipeline, for the serving hot path.

A fitted `Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])` spends most of
a small prediction in scikit-learn's per-call input validation and pandas column selection
(milliseconds per call, whatever the row count). The transformers features.py builds are
simple affine maps and lookups, so `compile_pipeline` re-expresses them with their fitted
attributes and calls only the final estimator. It refuses anything it does not know (returns
None) and `verify` compares it with the real pipeline on probe rows before it is trusted; the
caller falls back to the pipeline otherwise.

Inputs are two matrices in a fixed column order: `numeric` (float64, NaN = null) and
`categorical` (object: str, or NaN for null), as `model_frame` would have produced them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

# One transform step: (input matrices) -> 2-D float block of the design matrix.
Block = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # predicted value per row (class label or regression value)
    proba: np.ndarray | None  # (n, classes) for classifiers with predict_proba


class ModelInput:
    """Maps the door's two matrices to the pipeline's DataFrame (the slow, always-right path)."""

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str], order: Sequence[str]):
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.order = list(order)

    def frame(self, numeric: np.ndarray, categorical: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i, name in enumerate(self.numeric):
            data[name] = numeric[:, i]
        for i, name in enumerate(self.categorical):
            data[name] = pd.Series(categorical[:, i], dtype=object)
        return pd.DataFrame({name: data[name] for name in self.order})


class _Answers:
    """The classes as the server answers them (serve/labels.py), when not as trained."""

    classes: np.ndarray | None
    answers: np.ndarray | None = None
    _class_index: pd.Index | None = None

    def answer_with(self, answers: np.ndarray | None) -> None:
        """Answer each class as `answers` holds it (same order as `classes`), not as trained."""
        self.answers = answers
        self._class_index = None if self.classes is None else pd.Index(self.classes)

    def _answered(self, labels: np.ndarray) -> np.ndarray:
        """Each predicted class as answered: one hash lookup per row, no Python loop."""
        if self.answers is None or self._class_index is None:
            return labels
        index = self._class_index.get_indexer(labels)
        if (index < 0).any():  # not one of the model's classes (no sklearn classifier does this)
            return labels
        return np.asarray(self.answers[index])


class PipelinePredictor(_Answers):
    """Runs the real sklearn pipeline on a DataFrame built like `model_frame`."""

    fast = False

    def __init__(self, pipeline: Any, model_input: ModelInput):
        self.pipeline = pipeline
        self.model_input = model_input
        self.classes = _classes(pipeline)

    def predict(self, numeric: np.ndarray, categorical: np.ndarray) -> Prediction:
        frame = self.model_input.frame(numeric, categorical)
        labels = self._answered(np.asarray(self.pipeline.predict(frame)))
        if self.classes is not None and hasattr(self.pipeline, "predict_proba"):
            proba = np.asarray(self.pipeline.predict_proba(frame), dtype=np.float64)
            return Prediction(labels, proba)
        return Prediction(labels, None)


class CompiledPredictor(_Answers):
    """Preprocessing as numpy on fitted attributes, then the final estimator on the matrix."""

    fast = True

    def __init__(self, blocks: list[Block], estimator: Any, classes: np.ndarray | None):
        self.blocks = blocks
        self.estimator = estimator
        self.classes = classes
        self.has_proba = classes is not None and hasattr(estimator, "predict_proba")

    def design(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        parts = [block(numeric, categorical) for block in self.blocks]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def predict(self, numeric: np.ndarray, categorical: np.ndarray) -> Prediction:
        matrix = self.design(numeric, categorical)
        if self.has_proba:
            assert self.classes is not None
            proba = np.asarray(self.estimator.predict_proba(matrix), dtype=np.float64)
            # argmax of the probabilities is how these classifiers predict; `verify` checks it.
            named = self.classes if self.answers is None else self.answers
            return Prediction(named[np.argmax(proba, axis=1)], proba)
        return Prediction(self._answered(np.asarray(self.estimator.predict(matrix))), None)


def _classes(pipeline: Any) -> np.ndarray | None:
    classes = getattr(pipeline, "classes_", None)
    return None if classes is None else np.asarray(classes)


def _numeric_steps(steps: list[Any]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Chain of imputer/scaler steps on a float block; None if a step is not understood."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    funcs: list[Callable[[np.ndarray], np.ndarray]] = []
    for step in steps:
        if isinstance(step, SimpleImputer):
            if getattr(step, "indicator_", None) is not None or step.strategy not in (
                "mean",
                "median",
                "most_frequent",
            ):
                return None
            fill = np.asarray(step.statistics_, dtype=np.float64)
            if np.isnan(fill).any():  # sklearn drops all-NaN columns; not worth mirroring
                return None
            funcs.append(partial(_fill_nan, fill=fill))
        elif isinstance(step, StandardScaler):
            mean = step.mean_ if step.with_mean else None
            scale = step.scale_ if step.with_std else None
            funcs.append(partial(_affine, center=mean, scale=scale))
        elif isinstance(step, RobustScaler):
            funcs.append(partial(_affine, center=step.center_, scale=step.scale_))
        elif isinstance(step, MinMaxScaler):
            if step.clip:
                return None
            funcs.append(partial(_min_max, scale=step.scale_, low=step.min_))
        else:
            return None

    def run(block: np.ndarray) -> np.ndarray:
        for func in funcs:
            block = func(block)
        return block

    return run


def _fill_nan(x: np.ndarray, fill: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), fill, x)


def _min_max(x: np.ndarray, scale: np.ndarray, low: np.ndarray) -> np.ndarray:
    return np.asarray(x * scale + low)


def _numeric_columns(numeric: np.ndarray, categorical: np.ndarray, idx: list[int]) -> np.ndarray:
    return numeric[:, idx]


def _numeric_block(
    numeric: np.ndarray,
    categorical: np.ndarray,
    idx: list[int],
    func: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    return func(numeric[:, idx])


def _categorical_block(
    numeric: np.ndarray,
    categorical: np.ndarray,
    idx: list[int],
    func: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    return func(categorical[:, idx])


def _affine(x: np.ndarray, center: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    if center is not None:
        x = x - center
    if scale is not None:
        x = x / scale
    return x


def _categorical_steps(steps: list[Any]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Imputer (most frequent) then one-hot or ordinal encoding of an object block."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    fills: list[Any] | None = None
    for step in steps[:-1]:
        if not isinstance(step, SimpleImputer) or step.strategy != "most_frequent":
            return None
        if getattr(step, "indicator_", None) is not None:
            return None
        fills = list(step.statistics_)
    encoder = steps[-1]
    if isinstance(encoder, OneHotEncoder):
        if (
            encoder.drop_idx_ is not None
            or encoder.handle_unknown != "ignore"
            or getattr(encoder, "_infrequent_enabled", False)
        ):
            return None
    elif isinstance(encoder, OrdinalEncoder):
        if getattr(encoder, "_infrequent_enabled", False) or encoder.unknown_value != -1:
            return None
        if encoder.encoded_missing_value != -1:
            return None
    else:
        return None
    lookups: list[tuple[dict[str, int], int | None]] = []
    for categories in encoder.categories_:
        known: dict[str, int] = {}
        null_index: int | None = None
        for index, value in enumerate(categories):
            if isinstance(value, str):
                known[value] = index
            elif isinstance(value, float) and math.isnan(value):
                null_index = index
            else:
                return None  # non-text categories never come out of model_frame
        lookups.append((known, null_index))
    widths = [len(c) for c in encoder.categories_]
    onehot = isinstance(encoder, OneHotEncoder)

    def encode(block: np.ndarray) -> np.ndarray:
        rows = block.shape[0]
        out = np.zeros((rows, sum(widths) if onehot else len(widths)), dtype=np.float64)
        offset = 0
        for j, (known, null_index) in enumerate(lookups):
            fill = fills[j] if fills is not None else None
            column = block[:, j]
            for i in range(rows):
                value = column[i]
                if not isinstance(value, str) and fill is not None:
                    value = fill  # null: the imputer's most frequent value
                # Unknown text gets no index (one-hot: all zeros); a null without an imputer
                # takes the null category if training saw one.
                index = known.get(value) if isinstance(value, str) else null_index
                if onehot:
                    if index is not None:
                        out[i, offset + index] = 1.0
                else:
                    # Ordinal: unknown and missing both encode as -1 (see features.py).
                    out[i, j] = -1.0 if index is None or index == null_index else float(index)
            offset += widths[j]
        return out

    return encode


def compile_pipeline(
    pipeline: Any, numeric: Sequence[str], categorical: Sequence[str]
) -> CompiledPredictor | None:
    """The numpy twin of `pipeline`, or None when it contains something not handled here."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        return None
    num_index = {name: i for i, name in enumerate(numeric)}
    cat_index = {name: i for i, name in enumerate(categorical)}
    blocks: list[Block] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder":
            if transformer != "drop":
                return None
            continue
        if transformer == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(c, str) for c in columns):
            return None
        # A fitted ColumnTransformer stores "passthrough" as an identity FunctionTransformer.
        if isinstance(transformer, FunctionTransformer) and transformer.func is None:
            transformer = "passthrough"
        steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else None
        if all(c in num_index for c in columns):
            idx = [num_index[c] for c in columns]
            if transformer == "passthrough":
                blocks.append(partial(_numeric_columns, idx=idx))
                continue
            func = _numeric_steps(steps if steps is not None else [transformer])
            if func is None:
                return None
            blocks.append(partial(_numeric_block, idx=idx, func=func))
        elif all(c in cat_index for c in columns):
            if transformer == "passthrough":
                return None
            idx = [cat_index[c] for c in columns]
            func = _categorical_steps(steps if steps is not None else [transformer])
            if func is None:
                return None
            blocks.append(partial(_categorical_block, idx=idx, func=func))
        else:
            return None
    if not blocks:
        return None
    from mlops_runtime.serve.tree_kernel import compile_estimator

    return CompiledPredictor(blocks, compile_estimator(estimator), _classes(pipeline))


def probe_inputs(
    compiled: CompiledPredictor, pipeline: Any, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Probe rows around the fitted statistics, with nulls and unseen categories mixed in."""
    from sklearn.compose import ColumnTransformer

    rng = np.random.default_rng(0)
    rows = 64
    centre = np.zeros(len(numeric))
    spread = np.ones(len(numeric))
    known: dict[str, list[str]] = {name: [] for name in categorical}
    preprocess = pipeline.steps[0][1]
    if isinstance(preprocess, ColumnTransformer):
        for _, transformer, columns in preprocess.transformers_:
            steps = getattr(transformer, "steps", [(None, transformer)])
            for _, step in steps:
                mean = getattr(step, "mean_", None)
                if mean is None:
                    mean = getattr(step, "center_", None)
                scale = getattr(step, "scale_", None)
                if mean is not None and len(mean) == len(columns):
                    for k, column in enumerate(columns):
                        if column in numeric:
                            centre[list(numeric).index(column)] = float(mean[k])
                            if scale is not None and scale[k] > 0:
                                spread[list(numeric).index(column)] = float(1.0 / scale[k])
                for k, cats in enumerate(getattr(step, "categories_", [])):
                    column = columns[k]
                    if column in known:
                        known[column] = [c for c in cats if isinstance(c, str)]
    num = centre + spread * rng.normal(size=(rows, len(numeric)))
    cat = np.empty((rows, len(categorical)), dtype=object)
    for j, name in enumerate(categorical):
        choices = [*known[name], "__unseen__"]
        cat[:, j] = [choices[int(k)] for k in rng.integers(0, len(choices), size=rows)]
    # Nulls in a quarter of the rows (imputed, or NaN-aware estimators).
    if len(numeric):
        mask = rng.random((rows, len(numeric))) < 0.1
        mask[: rows // 2] = False
        num[mask] = np.nan
    if len(categorical):
        cmask = rng.random((rows, len(categorical))) < 0.1
        cmask[: rows // 2] = False
        cat[cmask] = np.nan
    return num, cat


def verify(
    compiled: CompiledPredictor,
    reference: PipelinePredictor,
    numeric: np.ndarray,
    categorical: np.ndarray,
) -> bool:
    """True when the compiled twin agrees with the pipeline on every probe row it can score."""
    halves = [slice(0, len(numeric) // 2), slice(len(numeric) // 2, len(numeric))]
    checked = 0
    for part in halves:
        n, c = numeric[part], categorical[part]
        try:
            expected = reference.predict(n, c)
        except ValueError:
            continue  # e.g. NaN into an estimator without an imputer: the twin need not match
        got = compiled.predict(n, c)
        checked += 1
        if expected.labels.shape != got.labels.shape:
            return False
        if compiled.classes is not None:
            if not np.array_equal(expected.labels, got.labels):
                return False
        elif not np.allclose(expected.labels, got.labels, rtol=1e-9, atol=1e-9):
            return False
        if (expected.proba is None) != (got.proba is None):
            return False
        if (
            expected.proba is not None
            and got.proba is not None
            and not np.allclose(expected.proba, got.proba, rtol=1e-9, atol=1e-12)
        ):
            return False
    return checked > 0


def build_predictor(
    pipeline: Any, numeric: Sequence[str], categorical: Sequence[str], order: Sequence[str]
) -> PipelinePredictor | CompiledPredictor:
    reference = PipelinePredictor(pipeline, ModelInput(numeric, categorical, order))
    compiled = compile_pipeline(pipeline, numeric, categorical)
    if compiled is None:
        return reference
    num, cat = probe_inputs(compiled, pipeline, numeric, categorical)
    return compiled if verify(compiled, reference, num, cat) else reference

"""HistGradientBoosting's prediction as one vectorised walk over all of its trees.

scikit-learn predicts with one Cython call per tree, and for the handful of rows a serving
micro-batch holds, those calls (100 per prediction for 100 trees) cost about a millisecond
whatever the row count. Here every tree's nodes sit in one set of arrays and all rows walk all
trees at once, one numpy step per tree level. Large batches still go to scikit-learn, which
is faster there. From PARALLEL_ROWS rows on, the rows are split in one chunk per CPU, each
predicted single-threaded in its own thread (scikit-learn releases the GIL while it walks a
tree). Not OpenMP threads: they meet at a barrier after each of the 100 trees, and on a busy
machine one descheduled thread stalls every barrier (measured: 10,000 rows took 150-1,700 ms
instead of 20-35 ms); split rows meet once, at the end. The sums follow scikit-learn's order (baseline, then tree by tree), and
`fast_predict.verify` compares the result with the real model before it is used.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Above this many rows scikit-learn's per-tree loop wins.
MAX_ROWS = 48
# From this many rows scikit-learn predicts with one OpenMP thread per CPU.
PARALLEL_ROWS = 2_000


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class HistGradientBoostingKernel:
    def __init__(self, estimator: Any):
        self.estimator = estimator
        trees = [tree for iteration in estimator._predictors for tree in iteration]
        per_iteration = int(estimator.n_trees_per_iteration_)
        sizes = [len(tree.nodes) for tree in trees]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([tree.nodes for tree in trees])
        if nodes["is_categorical"].any():
            raise ValueError("native categorical splits are not compiled")
        owner = np.repeat(offsets, sizes)
        self.feature = nodes["feature_idx"].astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.leaf = nodes["is_leaf"].astype(bool)
        self.left = nodes["left"].astype(np.intp) + owner
        self.right = nodes["right"].astype(np.intp) + owner
        self.value = nodes["value"].astype(np.float64)
        self.roots = offsets
        # Tree t adds to output column t % per_iteration, as in scikit-learn's loop.
        self.columns = [np.arange(k, len(trees), per_iteration) for k in range(per_iteration)]
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
        self.loss = estimator._loss
        self.threads = _cpus()
        self._pool: ThreadPoolExecutor | None = None
        self.has_proba = hasattr(estimator, "predict_proba")
        if self.has_proba:
            self.classes_ = estimator.classes_

    def raw(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        inner = ~self.leaf[node]
        while inner.any():
            at = node[inner]
            values = x[np.broadcast_to(rows, node.shape)[inner], self.feature[at]]
            go_left = np.where(
                np.isnan(values), self.missing_left[at], values <= self.threshold[at]
            )
            node[inner] = np.where(go_left, self.left[at], self.right[at])
            inner = ~self.leaf[node]
        leaves = self.value[node]
        out = np.empty((len(x), len(self.columns)), dtype=np.float64)
        for k, trees in enumerate(self.columns):
            terms = np.concatenate(
                [np.full((len(x), 1), self.baseline[k]), leaves[:, trees]], axis=1
            )
            out[:, k] = np.cumsum(terms, axis=1)[:, -1]  # sequential, like `raw += tree(x)`
        return out

    def raw_predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) <= MAX_ROWS:
            return self.raw(x)
        # What the estimator's own predict/predict_proba call; rows are independent, so
        # chunks of rows give the same sums as the whole.
        if len(x) < PARALLEL_ROWS or self.threads < 2:
            return np.asarray(self.estimator._raw_predict(x, n_threads=1))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="predict")
        chunks = np.array_split(x, self.threads)
        parts = self._pool.map(
            lambda chunk: self.estimator._raw_predict(chunk, n_threads=1), chunks
        )
        return np.concatenate(list(parts))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.loss.predict_proba(self.raw_predict(x)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.has_proba:
            return np.asarray(self.classes_[np.argmax(self.predict_proba(x), axis=1)])
        return np.asarray(self.loss.link.inverse(self.raw_predict(x).ravel()))


def compile_estimator(estimator: Any) -> Any:
    """The vectorised kernel for a fitted HistGradientBoosting model, else the estimator."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if not isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return estimator
    try:
        return HistGradientBoostingKernel(estimator)
    except (AttributeError, KeyError, ValueError):  # another sklearn layout: keep the real one
        return estimator

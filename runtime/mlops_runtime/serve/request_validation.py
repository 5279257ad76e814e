"""The old name of record_validation.py, kept only for benchmarks/serve_speed.py, which imports
`Door` and `Rows` from here; remove once it imports them from their own modules."""

from mlops_runtime.serve.record_validation import Door
from mlops_runtime.serve.rows import Rows

__all__ = ["Door", "Rows"]

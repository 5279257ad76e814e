"""`mlops init`: a starter spec whose data contract is inferred from a CSV or Parquet file."""

from mlops_compiler.init.starter import init_spec

__all__ = ["init_spec"]

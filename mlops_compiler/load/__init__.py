"""Stage 1: read a spec file into plain data plus the position of every key and value."""

from mlops_compiler.load.yaml_positions import LoadedSpec, load_spec

__all__ = ["LoadedSpec", "load_spec"]

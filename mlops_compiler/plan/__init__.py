"""Stage 3: decide, from a validated spec, the immutable list of files to emit."""

from mlops_compiler.plan.artifacts import Artifact, Plan
from mlops_compiler.plan.build import make_plan

__all__ = ["Artifact", "Plan", "make_plan"]

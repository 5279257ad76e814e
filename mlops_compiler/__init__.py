"""mlops-compiler: one declarative mlops.yaml in, a standalone MLOps project out."""

__version__ = "0.2.0"

"""Static modules of a generated project's training pipeline.

`config.py` (CONFIG) and `contract.py` (CONTRACT) are rendered per spec beside these modules;
every function here takes them as arguments, so the modules are importable and testable on
their own.
"""

"""The `mlops` command line."""

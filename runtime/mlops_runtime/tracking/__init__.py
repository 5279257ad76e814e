"""MLflow tracking and registry: the store, the tracking worker process, registry aliases, lineage."""

"""The interpreter of a project with a feature store: this environment plus Feast.

Feast pins pandas < 3 (and an older prometheus-client), which would downgrade the environment
the rest of the suite runs in. So the feature-store tests run the generated projects' stages
in a virtualenv of their own that sees this environment's packages (the runtime, MLflow,
scikit-learn, ...) and shadows only what Feast needs, as a project's own `pip install -r
requirements.txt` would resolve it. It is made once under $MLOPS_TEST_CACHE (or at
$MLOPS_FEAST_VENV), cached, and shared by xdist workers (tests/cache.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.cache import cached_venv

FEAST_VERSION = "0.67.0"


def feast_python() -> Path:
    return cached_venv(
        f"feast-{FEAST_VERSION}",
        override="MLOPS_FEAST_VENV",
        requirement=f"feast=={FEAST_VERSION}",
        probe="import feast, mlops_runtime, mlflow; print(feast.__version__)",
        expected=FEAST_VERSION,
        sees_running_env=True,
    )

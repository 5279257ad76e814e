"""The feature-store benchmarks' project: the churn spec over simulated tables, its stages run
with the Feast virtualenv's interpreter.

Feast pins pandas < 3, so a project with a feature store runs its stages in the virtualenv the
feature-store tests use (tests/feature_store/feast_env.py: made once, cached, it sees this
environment's packages and shadows only what Feast needs)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .proc import PYTHON, ROOT, BenchError, child_env, run_checked


def feast_python() -> Path:
    """The Feast virtualenv's interpreter (made and cached on first use; needs PyPI then)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # Imported by name: the tests package is not on mypy's path for the benchmarks.
    module = importlib.import_module("tests.feature_store.feast_env")
    return Path(module.feast_python())


def make_datasets() -> ModuleType:
    """scripts/make_datasets.py as a module (its `churn_tables` simulates the churn data)."""
    spec = importlib.util.spec_from_file_location(
        "make_datasets", ROOT / "scripts" / "make_datasets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_datasets", module)
    spec.loader.exec_module(module)
    return module


def store_env(runtime: Path | None = None) -> dict[str, str]:
    """A stage's environment: the installed runtime, or `runtime` (a checkout's runtime/
    folder) first on PYTHONPATH."""
    return child_env() if runtime is None else child_env(PYTHONPATH=str(runtime.resolve()))


def build_churn(work: Path, variant: str, source: str, out: str, train: str | None = None) -> Path:
    """specs/churn.mlops.yaml built by this checkout's compiler beside work/specs/ (a copy of
    specs/ made by the caller), its activity view reading `source` and, given `train`, its
    entity rows read from there (both relative to specs/): work/specs/churn-VARIANT.mlops.yaml
    into work/OUT/churn/."""
    text = (ROOT / "specs" / "churn.mlops.yaml").read_text()
    edits = {"source: data/churn_activity.csv": f"source: {source}"}
    if train is not None:
        edits["train: data/churn_labels.csv"] = f"train: {train}"
    for old, new in edits.items():
        if old not in text:
            raise BenchError(f"specs/churn.mlops.yaml has no `{old}` line to point elsewhere")
        text = text.replace(old, new)
    spec = work / "specs" / f"churn-{variant}.mlops.yaml"
    spec.write_text(text)
    run_checked(
        [PYTHON, "-m", "mlops_compiler", "build", f"specs/{spec.name}", "--out", out],
        cwd=work,
        env=child_env(PYTHONPATH=str(ROOT)),
    )
    return work / out / "churn"

"""A churn project with a feature store, built, applied, materialised and trained on data
simulated up to now, so its online values are fresh."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.feature_store.feast_env import feast_python
from tests.runtime.serving_fixtures import REPO, Server, build_project, run_stage, start_server


def _datasets() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_datasets", REPO / "scripts" / "make_datasets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_datasets", module)
    spec.loader.exec_module(module)
    return module


DATASETS = _datasets()


@dataclass
class StoreProject:
    path: Path
    python: str
    activity: pd.DataFrame
    labels: pd.DataFrame

    def stage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_stage(self.path, *args, python=self.python, **env)

    def ok(self, *args: str, **env: str) -> str:
        result = run_stage(self.path, *args, python=self.python, **env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def write_churn_data(specs: Path, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulated tables, written the way scripts/make_datasets.py writes the committed ones."""
    activity, labels = DATASETS.churn_tables(end=end)
    for name, frame in (("churn_activity", activity), ("churn_labels", labels)):
        text = DATASETS.to_csv_bytes(DATASETS.iso_utc(frame))
        (specs / "data" / f"{name}.csv").write_bytes(text)
    return activity, labels


def make_store_project(
    root: Path, *, end: pd.Timestamp | None = None, text: str | None = None
) -> StoreProject:
    """Build specs/churn.mlops.yaml into `root` over data simulated up to `end` (default: an
    hour ago), then apply the store; not yet materialised or trained."""
    moment = (
        end if end is not None else pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    )
    project = build_project(root, "churn", text)
    activity, labels = write_churn_data(root / "specs", moment)
    store = StoreProject(project, str(feast_python()), activity, labels)
    store.ok("features-apply")
    return store


@pytest.fixture(scope="session")
def feast_interpreter() -> str:
    return str(feast_python())


@pytest.fixture(scope="session")
def churn(tmp_path_factory: pytest.TempPathFactory, feast_interpreter: str) -> StoreProject:
    """Applied, materialised over the whole simulated year, trained: one per test process,
    shared by every module, so no test may change what another reads (its online values,
    its newest event time) or count on the prediction log being empty."""
    store = make_store_project(tmp_path_factory.mktemp("churn"))
    start = (store.activity["event_timestamp"].min() - pd.Timedelta(days=1)).isoformat()
    store.ok("features-materialize", "--start", start)
    store.ok("train")
    return store


@pytest.fixture(scope="session")
def churn_server(churn: StoreProject) -> Iterator[Server]:
    server = start_server(churn.path, python=churn.python, MLOPS_RELOAD_INTERVAL_S="1")
    yield server
    server.stop()

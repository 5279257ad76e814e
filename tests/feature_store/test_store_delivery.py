"""The deployed store's loading job, run for real: the command and environment the compose
stack's `features` service and the Kubernetes CronJob give the container, run in a folder laid
out as the image is (only what the Dockerfile copies, the sources where the volumes put them),
fill the online store the server then reads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.compiler.test_delivery_feature_store import store_spec
from tests.feature_store.conftest import write_churn_data
from tests.runtime.serving_fixtures import build_project, run_stage

pytestmark = pytest.mark.slow
APP = "/app"


def image_folder(project: Path, root: Path) -> Path:
    """What the Dockerfile puts in /app: its COPY lines (into folders), the folders it makes."""
    app = root / "app"
    dockerfile = (project / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, target = line.split()[1:]
            assert target.endswith("/"), line
            (app / target).mkdir(parents=True, exist_ok=True)
            for source in sources:
                shutil.copy(project / source, app / target / Path(source).name)
    for folders in re.findall(r"RUN mkdir ([\w/ ]+?) &&", dockerfile):
        for name in folders.split():
            (app / name).mkdir(parents=True)
    return app


def on_host(value: str, app: Path) -> str:
    return str(app) + value[len(APP) :] if value.startswith(APP + "/") else value


def loaded_views(app: Path) -> int:
    from mlops_runtime.features.store.freshness import newest_values

    _, newest = newest_values(json.loads((app / "config.json").read_text()), app)
    return sum(1 for n in newest if n.materialized)


@pytest.mark.parametrize("target", ["compose", "kubernetes"])
def test_the_deployed_job_fills_the_store_the_server_reads(
    target: str, tmp_path: Path, feast_interpreter: str
) -> None:
    deploy = "  target: compose\n" if target == "compose" else "  target: kubernetes\n"
    project = build_project(tmp_path, "churn", store_spec(deploy, 2))
    write_churn_data(
        tmp_path / "specs", pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    )
    app = image_folder(project, tmp_path)
    assert sorted(p.name for p in app.iterdir()) == [
        "config.json", "contract.json", "feature_repo", "prediction_log", "reports",
    ]  # fmt: skip
    config = json.loads((app / "config.json").read_text())
    (view,) = config["feature_store"]["views"]
    assert not (app / view["source"]).exists()  # the spec's path: not in the image

    env: dict[str, str] = {}
    if target == "compose":
        service: dict[str, Any] = yaml.safe_load(
            (project / "deploy/compose/compose.yaml").read_text()
        )["services"]["features"]
        command = service["command"]
        for entry in service["environment"]:
            name, _, value = entry.partition("=")
            if value:
                env[name] = on_host(value, app)
        for volume in service["volumes"]:
            if isinstance(volume, dict):  # the view sources, bound read-only
                source = (project / "deploy/compose" / volume["source"]).resolve()
                (app / volume["target"][len(APP) + 1 :]).parent.mkdir(parents=True, exist_ok=True)
                (app / volume["target"][len(APP) + 1 :]).symlink_to(source)
    else:
        folder = project / "deploy/kubernetes"
        job = yaml.safe_load((folder / "features-cronjob.yaml").read_text())
        (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        data = yaml.safe_load((folder / "configmap.yaml").read_text())["data"]
        env = {k: on_host(v, app) for k, v in data.items() if k.startswith("MLOPS_FEATURE_")}
        # The `data` volume, holding the view source where the ConfigMap says it is.
        target = Path(env["MLOPS_FEATURE_SOURCE_ACTIVITY"])
        target.parent.mkdir(parents=True)
        shutil.copy(tmp_path / "specs/data" / target.name, target)
    assert command[:3] == ["python", "-m", "mlops_runtime"]
    assert env.get("MLOPS_FEATURE_SOURCE_ACTIVITY"), env

    assert loaded_views(app) == 0
    result = run_stage(app, *command[3:], python=feast_interpreter, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert loaded_views(app) == 1

    # The server's read path, in the same folder, finds what the job loaded (no Feast).
    from mlops_runtime.features.store.online import OnlineFeatures

    online = OnlineFeatures(config, app)
    assert online.sqlite is not None
    (found,) = online.assemble([{"customer_id": 1020, "contract": "one-year", "tenure_months": 9}])
    assert found.missing is None and found.missing_key is None
    assert found.row["monthly_charges"] is not None and found.row["charges_per_month"] is not None

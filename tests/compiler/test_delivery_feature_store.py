"""A spec with a feature store and a deployment: the store's files get a volume every workload
mounts, a scheduled job loads the online store from the view sources, and the manifests stay
valid (kubernetes-validate, the compose-spec schema, docker-compose)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compiler.conftest import REPO, SPECS, run_mlops
from tests.compiler.test_delivery_kubernetes import validate
from tests.system_programs import require

STORE_DIR = "/app/feature_repo/data"
SOURCE_ENV = "MLOPS_FEATURE_SOURCE_ACTIVITY"


def store_spec(deploy: str, level: int, schedule: str | None = None) -> str:
    text = (SPECS / "churn.mlops.yaml").read_text(encoding="utf-8")
    assert "\nlevel: 2\n" in text and "\ndeploy:" not in text
    text = text.replace("\nlevel: 2\n", f"\nlevel: {level}\n")
    if schedule is not None:
        text = text.replace("\n  store:\n", f"\n  store:\n    materialize_schedule: '{schedule}'\n")
    return text + f"\ndeploy:\n{deploy}"


def build(root: Path, text: str) -> Path:
    shutil.copytree(SPECS, root / "specs")
    (root / "specs" / "churn.mlops.yaml").write_text(text, encoding="utf-8")
    result = run_mlops("build", "specs/churn.mlops.yaml", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "generated" / "churn"


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = store_spec("  target: kubernetes\n  secrets: [MLFLOW_TRACKING_URI]\n", 3, "*/20 * * * *")
    return build(tmp_path_factory.mktemp("store-k8s"), text)


@pytest.fixture(scope="module")
def compose_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("store-compose"), store_spec("  target: compose\n", 2))


def documents(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))}


def pods(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod spec of each workload, by file name."""
    out = {}
    for name, doc in docs.items():
        spec = doc.get("spec") or {}
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            out[name] = spec["template"]["spec"]
    return out


def test_the_kubernetes_base_loads_the_store_on_its_schedule(kubernetes: Path) -> None:
    folder = kubernetes / "deploy/kubernetes"
    validate(*(p for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml"))
    docs = documents(folder)
    assert "features-cronjob.yaml" in docs["kustomization.yaml"]["resources"]

    job = docs["features-cronjob.yaml"]
    assert job["kind"] == "CronJob" and job["spec"]["schedule"] == "*/20 * * * *"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pods(docs)["features-cronjob.yaml"]["containers"]
    assert container["command"] == ["python", "-m", "mlops_runtime", "features-materialize"]

    # Every workload mounts the store: written by the CronJob and train, read by the server
    # and the monitor. The batch pods read the view sources from the data volume.
    for name, pod in pods(docs).items():
        (c,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        assert mounts.get(STORE_DIR) == "feature-store", name
        assert {"name": "feature-store", "emptyDir": {}} in pod["volumes"], name
    data = docs["configmap.yaml"]["data"]
    assert data[SOURCE_ENV] == "/app/data/churn_activity.csv"
    for name in ("features-cronjob.yaml", "train-job.yaml"):
        (c,) = pods(docs)[name]["containers"]
        assert {"name": "data", "mountPath": "/app/data", "readOnly": True} in c["volumeMounts"]

    readme = (kubernetes / "README.md").read_text()
    assert "another running `features-materialize` at `*/20 * * * *`" in readme
    assert "`feature-store` (the online store" in readme
    assert "create job --from=cronjob/churn-features churn-features-first" in readme


def test_only_a_deployment_with_a_store_gets_the_store_job() -> None:
    assert not (REPO / "generated/churn/deploy").exists()  # a store, no deployment
    k8s = REPO / "generated/breast-cancer/deploy/kubernetes"  # a deployment, no store
    assert not (k8s / "features-cronjob.yaml").exists()
    assert "feature-store" not in (k8s / "deployment.yaml").read_text()
    assert "MLOPS_FEATURE_SOURCE" not in (k8s / "configmap.yaml").read_text()


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is a test dependency (pyproject, [test])"
    return found


def test_the_compose_stack_loads_the_store_before_serving(compose_project: Path) -> None:
    folder = compose_project / "deploy/compose"
    schema = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert schema.returncode == 0, schema.stdout + schema.stderr
    checked = subprocess.run(
        [require("docker-compose"), "-f", "compose.yaml", "config", "-q"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr

    stack = yaml.safe_load((folder / "compose.yaml").read_text())
    services = stack["services"]
    features = services["features"]
    assert features["command"] == ["python", "-m", "mlops_runtime", "features-materialize"]
    assert "profiles" not in features  # `up` runs it
    binds = [v for v in features["volumes"] if isinstance(v, dict)]
    (bind,) = binds
    assert bind["read_only"] and bind["target"] == "/app/feature-sources/activity"
    # The bound folder is the spec's data folder, seen from deploy/compose/.
    assert (folder / bind["source"]).resolve() == (compose_project / "../../specs/data").resolve()
    assert (
        f"{SOURCE_ENV}=/app/feature-sources/activity/churn_activity.csv" in features["environment"]
    )
    for name in ("serve", "monitor", "features", "chown-volumes"):
        assert f"feature-store:{STORE_DIR}" in services[name]["volumes"], name
    assert STORE_DIR in services["chown-volumes"]["command"]
    assert "feature-store" in stack["volumes"]
    readme = (compose_project / "README.md").read_text()
    assert "docker-compose run --rm features" in readme

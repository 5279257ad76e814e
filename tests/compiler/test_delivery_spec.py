"""The delivery sections of the spec: what they require, what a level emits, and that no
secret value ever reaches a generated file."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import yaml

from mlops_runtime.container.image import default_tag
from tests.compiler.conftest import MINIMAL, REPO, run_mlops

SPECS = sorted((REPO / "specs").glob("*.mlops.yaml"))


def write(tmp_path: Path, extra: str, level: int = 2) -> Path:
    (tmp_path / "churn.csv").write_text("tenure,plan,churned\n1,basic,true\n")
    spec = tmp_path / "mlops.yaml"
    spec.write_text(MINIMAL + f"level: {level}\n" + extra)
    return spec


def test_cluster_features_need_the_kubernetes_target(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "deploy:\n  target: compose\n  kserve: true\n  pipeline: kubeflow\n"
        "  autoscale: {min: 1, max: 3}\n  secrets: [A_TOKEN, A_TOKEN]\n",
    )
    result = run_mlops("build", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    for field in ("deploy.kserve", "deploy.pipeline", "deploy.autoscale"):
        assert f"{field}: needs target: kubernetes (target is compose)" in result.stderr
    assert "deploy.secrets[1]: A_TOKEN is listed twice" in result.stderr
    assert not (tmp_path / "out").exists(), "no file is written for an invalid spec"


def test_delivery_is_emitted_from_level_2_and_warned_about_below(tmp_path: Path) -> None:
    spec = write(tmp_path, "deploy: {target: kubernetes}\nci: {provider: gitlab}\n", level=1)
    low = run_mlops("build", str(spec), "--out", str(tmp_path / "one"), cwd=tmp_path)
    assert low.returncode == 0, low.stderr
    assert "deploy: warning: declared, but level 1 does not emit it (kubernetes" in low.stderr
    assert not (tmp_path / "one/churn/deploy").exists()
    spec = write(tmp_path, "deploy: {target: kubernetes}\n", level=2)
    two = run_mlops("build", str(spec), "--out", str(tmp_path / "two"), cwd=tmp_path)
    assert two.returncode == 0 and "deploy" not in two.stderr, two.stderr
    project = tmp_path / "two/churn"
    assert (project / "deploy/kubernetes/deployment.yaml").is_file()
    assert not (project / "deploy/kubernetes/hpa.yaml").exists(), "no autoscale declared"
    assert not (project / "deploy/kserve").exists() and not (project / "pipelines").exists()
    manifest = json.loads((project / "mlops-manifest.json").read_text())
    assert manifest["files"]["deploy/kubernetes/deployment.yaml"]["component"] == "kubernetes"


def test_the_image_is_tagged_with_the_model_version(tmp_path: Path) -> None:
    spec = write(tmp_path, "deploy: {target: compose, image: ghcr.io/acme/churn}\n")
    assert (
        run_mlops("build", str(spec), "--out", str(tmp_path / "out"), cwd=tmp_path).returncode == 0
    )
    config = json.loads((tmp_path / "out/churn/config.json").read_text())
    assert config["image"] == {
        "repository": "ghcr.io/acme/churn",
        "engine": "auto",
        "base_image": "python:3.11.11-slim-bookworm",
    }
    assert default_tag(config, "7") == "ghcr.io/acme/churn:v7"
    assert default_tag(config) == f"ghcr.io/acme/churn:{config['spec_sha256'][:12]}"
    spec = write(tmp_path, "")
    assert (
        run_mlops("build", str(spec), "--out", str(tmp_path / "plain"), cwd=tmp_path).returncode
        == 0
    )
    plain = json.loads((tmp_path / "plain/churn/config.json").read_text())
    assert plain["image"]["repository"] == "localhost:5000/churn"


def secret_names(spec: dict[str, object]) -> set[str]:
    names = {str(a["url_env"]) for a in spec.get("alerts") or []}  # type: ignore[attr-defined, index]
    for section in ("ci", "deploy"):
        names |= set((spec.get(section) or {}).get("secrets") or [])  # type: ignore[attr-defined]
    return names


def test_no_generated_file_holds_a_secret_value(tmp_path: Path) -> None:
    """Every variable the examples name as a secret is set to a random value while they are
    built; no file of the output may contain it."""
    names = set().union(*(secret_names(yaml.safe_load(p.read_text())) for p in SPECS))
    assert {"ALERT_WEBHOOK_URL", "MLFLOW_TRACKING_URI"} <= names, names
    values = {name: f"s3cr3t-{secrets.token_hex(8)}" for name in names}
    out = tmp_path / "out"
    result = run_mlops("build", *map(str, SPECS), "--out", str(out), cwd=REPO, env=values)
    assert result.returncode == 0, result.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 40
    for path in files:
        text = path.read_text(errors="replace")
        for name, value in values.items():
            assert value not in text, f"{path} holds the value of {name}"

"""deploy/kubernetes/: every manifest passes `kubernetes-validate --strict` for the pinned
Kubernetes version, every pod meets Pod Security "restricted" with a read-only root, and the
folder is a kustomize base whose image and volumes an overlay changes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compiler.conftest import REPO, run_mlops
from tests.system_programs import require

KUBERNETES_VERSION = "1.37"
# The kinds kubernetes-validate has a schema for here (it only warns on any other kind).
VALIDATED = {
    "ConfigMap",
    "CronJob",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Job",
    "PodDisruptionBudget",
    "Service",
}
PROJECT = REPO / "generated/breast-cancer"
BASE = PROJECT / "deploy/kubernetes"
SPEC = REPO / "specs/breast-cancer.mlops.yaml"


def validate(*paths: Path) -> None:
    executable = shutil.which("kubernetes-validate")
    assert executable, "kubernetes-validate is a test dependency (pyproject, [test])"
    result = subprocess.run(
        [executable, "--strict", "--quiet", "-k", KUBERNETES_VERSION, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip(), "no warning either (unknown kind)"


def manifests(folder: Path) -> dict[str, dict[str, Any]]:
    """The one document of each file but kustomization.yaml, by file name."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            (doc,) = yaml.safe_load_all(path.read_text())
            out[path.name] = doc
    return out


def pod_templates(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each workload's pod template, by the stage it runs (its component label)."""
    out = {}
    for doc in docs.values():
        spec = doc.get("spec") or {}
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if "template" in spec:
            out[spec["template"]["metadata"]["labels"]["app.kubernetes.io/component"]] = spec[
                "template"
            ]
    return out


def built(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The example spec with each (text, replacement) of `edits` made, built."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    path = tmp_path / "specs" / SPEC.name
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)
    result = run_mlops("build", f"specs/{SPEC.name}", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "out/breast-cancer/deploy/kubernetes"


def test_every_manifest_passes_the_strict_schema_of_the_pinned_version() -> None:
    docs = manifests(BASE)
    assert {d["kind"] for d in docs.values()} == VALIDATED
    validate(*(BASE / name for name in docs))


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The check above is real: strict mode refuses what Kubernetes would drop."""
    text = (BASE / "deployment.yaml").read_text()
    (tmp_path / "deployment.yaml").write_text(text.replace("periodSeconds: 10", "period: 10"))
    with pytest.raises(AssertionError, match="'period' was unexpected"):
        validate(tmp_path / "deployment.yaml")


def test_pods_meet_pod_security_restricted_with_a_read_only_root() -> None:
    config = json.loads((PROJECT / "config.json").read_text())
    templates = pod_templates(manifests(BASE))
    assert set(templates) == {"serve", "train", "monitor", "score"}
    for kind, template in templates.items():
        pod = template["spec"]
        pod_context = pod["securityContext"]
        assert pod["automountServiceAccountToken"] is False, kind
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = {**pod_context, **container["securityContext"]}
            assert context["runAsNonRoot"] is True, kind
            assert context["runAsUser"] > 0 and context.get("runAsGroup", 1) > 0, kind
            assert context["allowPrivilegeEscalation"] is False, kind
            assert context["capabilities"] == {"drop": ["ALL"]}, kind
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, kind
            assert context["readOnlyRootFilesystem"] is True, kind
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert {"/tmp", "/app/prediction_log", "/app/reports"} <= set(mounts), kind
            for name in mounts.values():
                assert volumes[name] == {"name": name, "emptyDir": {}}, (kind, name)
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
            assert container["image"] == "ghcr.io/acme/breast-cancer:latest", kind
            assert container["envFrom"] == [{"configMapRef": {"name": "breast-cancer-env"}}]
    # The serving app writes its log where the monitor reads it: the mounted folder.
    assert f"/app/{config['serving']['prediction_log']['dir']}" == "/app/prediction_log"


def test_probes_service_and_selectors_meet_on_the_serving_port() -> None:
    docs = manifests(BASE)
    deployment, service = docs["deployment.yaml"], docs["service.yaml"]
    port = json.loads((PROJECT / "config.json").read_text())["serving"]["port"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    # /ping answers 503 until a model is loaded: alive is /health.
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert service["spec"]["selector"] == selector
    assert docs["pdb.yaml"]["spec"]["selector"]["matchLabels"] == selector
    for name in ("train-job.yaml", "monitor-cronjob.yaml", "score-cronjob.yaml"):
        batch = docs[name]["spec"]
        template = (batch.get("jobTemplate") or {}).get("spec", batch)["template"]
        assert not selector.items() <= template["metadata"]["labels"].items(), name
    hpa = docs["hpa.yaml"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"


def test_containers_run_the_manifests_stage_commands() -> None:
    commands = json.loads((PROJECT / "mlops-manifest.json").read_text())["commands"]
    docs = manifests(BASE)
    cmd = re.search(r"^CMD (.+)$", (PROJECT / "Dockerfile").read_text(), re.M)
    assert cmd is not None and json.loads(cmd.group(1)) == commands["serve"]
    for stage, template in pod_templates(docs).items():
        (container,) = template["spec"]["containers"]
        assert container["command"] == commands[stage], stage
    cron = docs["monitor-cronjob.yaml"]["spec"]
    assert cron["schedule"] == yaml.safe_load(SPEC.read_text())["monitors"]["schedule"]
    (monitor,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert monitor["args"] == ["--labels", "/app/data/breast_cancer_labels.csv"]
    config = docs["configmap.yaml"]["data"]
    assert config["MLOPS_TRAIN_DATA"] == "/app/data/breast_cancer.csv"
    assert config["MLOPS_PREDICTION_LOG_DIR"] == "/app/prediction_log"
    assert all(isinstance(v, str) for v in config.values())


def test_secrets_are_referenced_by_name_never_valued() -> None:
    for kind, template in pod_templates(manifests(BASE)).items():
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == {
            "name": "MLFLOW_TRACKING_URI",
            "valueFrom": {
                "secretKeyRef": {"name": "breast-cancer-secrets", "key": "MLFLOW_TRACKING_URI"}
            },
        }
        assert all("value" not in e for e in env.values()), kind
        # Only the monitor sends the alerts: their URL is taken from the Secret if it is there.
        if kind == "monitor":
            assert env["ALERT_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "breast-cancer-secrets",
                "key": "ALERT_WEBHOOK_URL",
                "optional": True,
            }
        else:
            assert "ALERT_WEBHOOK_URL" not in env, kind


def test_kustomization_lists_the_files_and_names_the_image() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests(BASE))
    assert kustomization["namespace"] == "breast-cancer"
    assert kustomization["images"] == [{"name": "ghcr.io/acme/breast-cancer", "newTag": "latest"}]
    deployment = manifests(BASE)["deployment.yaml"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.rpartition(":")[0] == kustomization["images"][0]["name"]


def test_without_autoscale_and_with_a_secret(tmp_path: Path) -> None:
    folder = built(
        tmp_path,
        ("  autoscale: {min: 2, max: 10, cpu_percent: 70}\n", ""),
        ("secrets: [MLFLOW_TRACKING_URI]", "secrets: [A_TOKEN]"),
        ("alerts:\n  - {kind: webhook, url_env: ALERT_WEBHOOK_URL}\n", ""),
    )
    docs = manifests(folder)
    assert "hpa.yaml" not in docs
    assert sorted(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]) == (
        sorted(docs)
    )
    assert docs["deployment.yaml"]["spec"]["replicas"] == 2
    validate(*(folder / name for name in docs))
    ref = {"name": "breast-cancer-secrets", "key": "A_TOKEN"}
    for kind, template in pod_templates(docs).items():
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["A_TOKEN"] == {"name": "A_TOKEN", "valueFrom": {"secretKeyRef": ref}}, kind
        # Not declared a secret: taken from the Secret where present, else from the spec.
        tracking = env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]
        assert tracking["optional"] is True, kind
        assert set(env) == {"A_TOKEN", "MLFLOW_TRACKING_URI"}, kind
    assert "A_TOKEN" not in (folder / "configmap.yaml").read_text()


def test_an_overlay_pins_the_tag_and_makes_a_volume_a_claim(tmp_path: Path) -> None:
    """What the README says to do, done: the base from elsewhere, the tag CI pins, a patch."""
    kubectl = require("kubectl")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    claim = "{name: reports, emptyDir: null, persistentVolumeClaim: {claimName: shared}}"
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(BASE, overlay)}]\n"
        "images: [{name: ghcr.io/acme/breast-cancer, newTag: v7}]\n"
        "patches:\n"
        "  - patch: |\n"
        "      {apiVersion: apps/v1, kind: Deployment, metadata: {name: breast-cancer},\n"
        f"       spec: {{template: {{spec: {{volumes: [{claim}]}}}}}}}}\n"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "built.yaml").write_text(result.stdout)
    validate(tmp_path / "built.yaml")
    docs = list(yaml.safe_load_all(result.stdout))
    assert len(docs) == len(manifests(BASE))
    for doc in docs:
        assert doc["metadata"]["namespace"] == "breast-cancer"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "breast-cancer"
    templates = pod_templates({d["metadata"]["name"]: d for d in docs})
    for kind, template in templates.items():
        assert template["spec"]["containers"][0]["image"] == "ghcr.io/acme/breast-cancer:v7"
        reports = next(v for v in template["spec"]["volumes"] if v["name"] == "reports")
        expected = {"persistentVolumeClaim": {"claimName": "shared"}}
        assert {k: v for k, v in reports.items() if k != "name"} == (
            expected if kind == "serve" else {"emptyDir": {}}
        ), kind

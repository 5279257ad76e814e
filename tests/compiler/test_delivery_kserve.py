"""The KServe InferenceService (deploy/kserve/) passes a strict schema of KServe's CRD, and
serves what the Deployment and the Dockerfile serve.

kubernetes-validate skips custom resources, so the InferenceService is checked with
`check-jsonschema --schemafile tests/schemas/kserve-inferenceservice-v1beta1.schema.json`: a
schema written for the fields the template emits, with their names, types and required keys
as in KServe v0.20.0's CRD (config/crd/full/serving.kserve.io_inferenceservices.yaml, the
`openAPIV3Schema` of serving.kserve.io/v1beta1) and `additionalProperties: false` at every
level, so a misspelt or unexpected field fails as it would against the cluster's CRD with
field validation on.
"""

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

from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import make_plan
from mlops_compiler.render.render import render_plan
from mlops_compiler.spec.validate import validate
from tests.compiler.conftest import REPO
from tests.system_programs import require

PROJECT = REPO / "generated" / "breast-cancer"
KSERVE = PROJECT / "deploy" / "kserve"
ISVC = KSERVE / "inferenceservice.yaml"
SCHEMA = REPO / "tests" / "schemas" / "kserve-inferenceservice-v1beta1.schema.json"


def check_jsonschema(schema: Path, *instances: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is a test dependency (pip install -e '.[test]')"
    return subprocess.run(
        [tool, "--schemafile", str(schema), *map(str, instances)],
        capture_output=True,
        text=True,
        check=False,
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def predictor_container(isvc: dict[str, Any]) -> dict[str, Any]:
    containers = isvc["spec"]["predictor"]["containers"]
    assert [c["name"] for c in containers] == ["kserve-container"]
    return dict(containers[0])


def test_inferenceservice_passes_the_kserve_schema() -> None:
    result = check_jsonschema(SCHEMA, ISVC)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_is_valid_draft_7() -> None:
    tool = shutil.which("check-jsonschema")
    assert tool
    result = subprocess.run(
        [tool, "--check-metaschema", str(SCHEMA)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_rejects_misspelt_fields_and_wrong_types(tmp_path: Path) -> None:
    good = load(ISVC)

    def broken(name: str, change: Any) -> Path:
        doc = json.loads(json.dumps(good))
        change(doc)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def predictor(doc: dict[str, Any]) -> dict[str, Any]:
        return doc["spec"]["predictor"]  # type: ignore[no-any-return]

    def container(doc: dict[str, Any]) -> dict[str, Any]:
        return predictor(doc)["containers"][0]  # type: ignore[no-any-return]

    cases = [
        broken("typo-predictor", lambda d: predictor(d).update(canaryTrafficPercnt=10)),
        broken("typo-deep", lambda d: container(d)["securityContext"].update(runAsNonroot=True)),
        broken("string-percent", lambda d: predictor(d).update(canaryTrafficPercent="10")),
        broken("percent-over-100", lambda d: predictor(d).update(canaryTrafficPercent=110)),
        broken("bad-quantity", lambda d: container(d)["resources"]["limits"].update(cpu="one")),
        broken("wrong-kind", lambda d: d.update(kind="InferenceServices")),
        broken("no-predictor", lambda d: d["spec"].pop("predictor")),
    ]
    result = check_jsonschema(SCHEMA, *cases)
    assert result.returncode == 1, result.stdout + result.stderr
    for case in cases:
        assert str(case) in result.stdout, (case.name, result.stdout)


def test_inferenceservice_serves_the_deployment_image_and_command() -> None:
    isvc = load(ISVC)
    served = predictor_container(isvc)
    deployment = load(PROJECT / "deploy" / "kubernetes" / "deployment.yaml")
    [pod_container] = deployment["spec"]["template"]["spec"]["containers"]
    assert served["image"] == pod_container["image"]
    assert served["command"] == pod_container["command"]
    cmd = re.search(r"^CMD (\[.*\])$", (PROJECT / "Dockerfile").read_text(), re.M)
    assert cmd, "the Dockerfile names its command in exec form"
    assert served["command"] == json.loads(cmd.group(1))
    manifest = json.loads((PROJECT / "mlops-manifest.json").read_text())
    assert served["command"] == manifest["commands"]["serve"]
    port = json.loads((PROJECT / "config.json").read_text())["serving"]["port"]
    assert served["ports"] == [{"containerPort": port, "protocol": "TCP"}]
    # The probes are the Deployment's, on the container port (Knative takes no named port).
    for probe in ("livenessProbe", "readinessProbe"):
        assert served[probe]["httpGet"]["path"] == pod_container[probe]["httpGet"]["path"]
        assert served[probe]["httpGet"]["port"] == port
    assert served["resources"] == pod_container["resources"]


def test_inferenceservice_is_restricted_with_a_volume_per_written_dir() -> None:
    isvc = load(ISVC)
    served = predictor_container(isvc)
    assert served["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = {m["mountPath"]: m["name"] for m in served["volumeMounts"]}
    assert set(mounts) == {"/tmp", "/app/prediction_log", "/app/reports"}
    volumes = isvc["spec"]["predictor"]["volumes"]
    assert {v["name"]: v["emptyDir"] for v in volumes} == {n: {} for n in mounts.values()}
    assert isvc["spec"]["predictor"]["automountServiceAccountToken"] is False


def test_secrets_come_by_name_from_the_secret() -> None:
    spec = load(REPO / "specs" / "breast-cancer.mlops.yaml")
    env = predictor_container(load(ISVC))["env"]
    assert [e["name"] for e in env] == spec["deploy"]["secrets"]
    for entry in env:
        assert set(entry) == {"name", "valueFrom"}, "a name and a reference, never a value"
        ref = entry["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "breast-cancer-secrets" and ref["key"] == entry["name"]


def test_ab_split_is_the_canary_share_in_knative_mode() -> None:
    isvc = load(ISVC)
    weight = load(REPO / "specs" / "breast-cancer.mlops.yaml")["serving"]["ab_test"]
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == round(
        weight["challenger_weight"] * 100
    )
    # canaryTrafficPercent only acts in Knative mode ("Serverless", its name KServe
    # releases before and after the rename all accept).
    assert isvc["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Serverless"}
    assert isvc["metadata"]["name"] == "breast-cancer-kserve"


def test_kustomization_names_the_namespace_and_every_file() -> None:
    kustomization = load(KSERVE / "kustomization.yaml")
    assert kustomization["namespace"] == "breast-cancer"
    assert kustomization["resources"] == ["inferenceservice.yaml"]
    # No `images:` of its own: an overlay's tag (or a JSON patch of the image) is the last word.
    assert "images" not in kustomization
    assert {p.name for p in KSERVE.iterdir()} == {"kustomization.yaml", "inferenceservice.yaml"}


def rendered_isvc(workspace: Path, *edits: tuple[str, str]) -> dict[str, Any]:
    """The InferenceService of the golden spec with its lines edited (text, as YAML 1.1
    would read `on:` back as true), after it passed the schema."""
    text = (workspace / "specs" / "breast-cancer.mlops.yaml").read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    variant = workspace / "specs" / "variant.mlops.yaml"
    variant.write_text(text)
    loaded = load_spec(variant)
    files = render_plan(make_plan(validate(loaded), loaded, workspace / "out"))
    out = workspace / "variant-isvc.yaml"
    out.write_bytes(files["deploy/kserve/inferenceservice.yaml"])
    result = check_jsonschema(SCHEMA, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(load(out))


AB_TEST = "  ab_test: {challenger_weight: 0.1, sticky_key: patient_id}\n"


def test_without_an_ab_split_there_is_no_canary(workspace: Path) -> None:
    isvc = rendered_isvc(
        workspace,
        (AB_TEST, ""),
        ("  autoscale: {min: 2, max: 10, cpu_percent: 70}\n", ""),
        ("  secrets: [MLFLOW_TRACKING_URI]", "  secrets: []"),
    )
    predictor = isvc["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["minReplicas"] == predictor["maxReplicas"] == 2
    assert "scaleMetric" not in predictor
    # The tracking server's URI is still taken from the Secret when it holds one.
    [env] = predictor_container(isvc)["env"]
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": "breast-cancer-secrets",
        "key": "MLFLOW_TRACKING_URI",
        "optional": True,
    }


def test_a_tiny_challenger_share_still_gets_a_canary_percent(workspace: Path) -> None:
    isvc = rendered_isvc(workspace, (AB_TEST, AB_TEST.replace("0.1", "0.001")))
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 1


PIN_PATCH = json.dumps(
    [
        {
            "op": "replace",
            "path": "/spec/predictor/containers/0/image",
            "value": "ghcr.io/acme/breast-cancer:v7",
        }
    ]
)


@pytest.mark.parametrize(
    "pin",
    [
        # What `kustomize edit set image ghcr.io/acme/breast-cancer:v7` writes...
        "images: [{name: ghcr.io/acme/breast-cancer, newTag: v7}]\n",
        # ...or `kustomize edit add patch --kind InferenceService --patch '<JSON patch>'`.
        f"patches: [{{target: {{kind: InferenceService}}, patch: '{PIN_PATCH}'}}]\n",
    ],
    ids=["images", "json-patch"],
)
def test_an_overlay_pins_the_tag_of_the_predictor(tmp_path: Path, pin: str) -> None:
    """An overlay pins the image CI deployed, and the result still passes the schema."""
    kubectl = require("kubectl")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(KSERVE, overlay)}]\n{pin}"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    [isvc] = list(yaml.safe_load_all(result.stdout))
    assert predictor_container(isvc)["image"] == "ghcr.io/acme/breast-cancer:v7"
    assert isvc["metadata"]["namespace"] == "breast-cancer"
    assert isvc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "breast-cancer"
    built = tmp_path / "built.yaml"
    built.write_text(result.stdout)
    checked = check_jsonschema(SCHEMA, built)
    assert checked.returncode == 0, checked.stdout + checked.stderr

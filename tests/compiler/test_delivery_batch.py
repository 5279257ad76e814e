"""The spec's `batch:` section from level 2: a CronJob running the score stage in the
project's image (from the `data` volume to the `scored` volume), the compose stack's score
service, and the GitHub/GitLab job that runs it on dispatch; below level 2 a warning.

The validators of the other manifests run over these files where they run over the others:
kubernetes-validate (every deploy/kubernetes/ file, test_delivery_kubernetes.py),
check-jsonschema and docker-compose (the level-3 compose variant, test_delivery_compose.py),
actionlint, the workflow schema and shellcheck (test_delivery_github.py) and the GitLab CI
schema (the level-3 variant, test_delivery_gitlab.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.compiler.conftest import REPO, SPECS, run_mlops
from tests.compiler.test_delivery_compose import compose, level3_compose_spec, mounts
from tests.compiler.test_delivery_github import bash, load, workflows
from tests.compiler.test_delivery_kubernetes import manifests, validate

PROJECT = REPO / "generated/breast-cancer"
SPEC = SPECS / "breast-cancer.mlops.yaml"


def spec_text() -> str:
    return SPEC.read_text(encoding="utf-8")


def batch_line() -> str:
    (line,) = [ln for ln in spec_text().splitlines() if ln.startswith("batch:")]
    return line


def build(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    shutil.copytree(SPECS, tmp_path / "specs")
    (tmp_path / "specs" / SPEC.name).write_text(text, encoding="utf-8")
    return run_mlops("build", f"specs/{SPEC.name}", "--out", "out", cwd=tmp_path)


def score_pod(cron: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def test_the_cronjob_scores_the_data_volumes_input_into_the_scored_volume() -> None:
    batch = yaml.safe_load(spec_text())["batch"]
    commands = json.loads((PROJECT / "mlops-manifest.json").read_text())["commands"]
    cron = manifests(PROJECT / "deploy/kubernetes")["score-cronjob.yaml"]
    assert cron["metadata"]["name"] == "breast-cancer-score"
    spec = cron["spec"]
    assert (spec["schedule"], spec["timeZone"]) == (batch["schedule"], "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid"
    job = spec["jobTemplate"]["spec"]
    # Rejected rows (1), bad input (2), no model (3): answers, not retried.
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule == {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 2, 3]}}
    pod = score_pod(cron)
    (container,) = pod["containers"]
    assert container["command"] == commands["score"]
    assert container["args"] == [
        "--input", f"/app/data/{batch['input']}",
        "--output", f"/app/scored/{batch['output']}",
        "--model", "champion",
        "--format", "parquet",
    ]  # fmt: skip
    mounts_ = {m["mountPath"]: m for m in container["volumeMounts"]}
    # Its output on a volume of its own, writable (the root is read-only); its input read-only.
    assert mounts_["/app/scored"] == {"name": "scored", "mountPath": "/app/scored"}
    assert mounts_["/app/data"]["readOnly"] is True
    assert {"/app/prediction_log", "/app/reports", "/tmp"} <= set(mounts_)
    assert {"name": "scored", "emptyDir": {}} in pod["volumes"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The serving pods have no `scored` volume; only the score pod writes there.
    deployment = manifests(PROJECT / "deploy/kubernetes")["deployment.yaml"]
    (serve,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "/app/scored" not in {m["mountPath"] for m in serve["volumeMounts"]}
    kustomization = yaml.safe_load((PROJECT / "deploy/kubernetes/kustomization.yaml").read_text())
    assert "score-cronjob.yaml" in kustomization["resources"]
    # The image owns the mount point to the app user, as it does prediction_log and reports.
    assert "RUN mkdir scored && chown app:app scored\n" in (PROJECT / "Dockerfile").read_text()


def test_every_option_reaches_the_arguments(tmp_path: Path) -> None:
    line = batch_line()
    options = (
        "batch: {input: exports/2026, output: 'nightly/{date}', schedule: '@daily',"
        " model: challenger, format: csv, key: mean_radius}"
    )
    result = build(tmp_path, spec_text().replace(line, options))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out/breast-cancer/deploy/kubernetes"
    validate(folder / "score-cronjob.yaml")
    cron = manifests(folder)["score-cronjob.yaml"]
    assert cron["spec"]["schedule"] == "@daily"
    (container,) = score_pod(cron)["containers"]
    assert container["args"] == [
        "--input", "/app/data/exports/2026",
        "--output", "/app/scored/nightly/{date}",
        "--model", "challenger",
        "--format", "csv",
        "--key", "mean_radius",
    ]  # fmt: skip


def test_without_batch_nothing_of_it_is_emitted(tmp_path: Path) -> None:
    result = build(tmp_path, spec_text().replace(batch_line() + "\n", ""))
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out/breast-cancer"
    assert not (project / "deploy/kubernetes/score-cronjob.yaml").exists()
    assert "score-cronjob" not in (project / "deploy/kubernetes/kustomization.yaml").read_text()
    assert "scored" not in (project / "Dockerfile").read_text()
    assert not (tmp_path / ".github/workflows/mlops-breast-cancer-score.yml").exists()


def test_below_level_2_it_is_a_warning_and_nothing_is_emitted(tmp_path: Path) -> None:
    result = build(tmp_path, spec_text().replace("\nlevel: 3\n", "\nlevel: 1\n"))
    assert result.returncode == 0, result.stderr
    line = spec_text().splitlines().index(batch_line()) + 1
    assert (
        f"specs/{SPEC.name}:{line}:1: batch: warning: declared, but level 1 does not emit it "
        "(batch-scoring: levels 2-3)"
    ) in result.stderr
    assert not (tmp_path / "out/breast-cancer/deploy").exists()


def test_a_feature_store_project_is_refused(tmp_path: Path) -> None:
    """score reads every feature from its input; a store's rows are the server's to complete."""
    text = (SPECS / "churn.mlops.yaml").read_text()
    if "store:" not in text:
        return  # the example with a feature store is elsewhere; the rule is in batch_rules
    shutil.copytree(SPECS, tmp_path / "specs")
    (tmp_path / "specs/churn.mlops.yaml").write_text(
        text + 'batch: {input: rows.parquet, schedule: "0 3 * * *"}\n'
    )
    result = run_mlops("validate", "specs/churn.mlops.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "batch: not with features.store: score reads every feature from its input" in (
        result.stderr
    )


def test_the_compose_stack_runs_it_as_a_one_off_service(tmp_path: Path) -> None:
    result = build(tmp_path, level3_compose_spec())
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out/breast-cancer"
    stack = compose(project)
    score = stack["services"]["score"]
    assert score["profiles"] == ["score"], "not started by `up`: the host's cron runs it"
    commands = json.loads((project / "mlops-manifest.json").read_text())["commands"]
    assert score["command"][:4] == commands["score"]
    args = score["command"][4:]
    assert args[:4] == ["--input", "/app/data/to_score", "--output", "/app/scored/{date}-{time}"]
    assert "scored:/app/scored" in score["volumes"]
    # The input: the training data's folder, bound read-only at /app/data.
    folder = project / "deploy/compose"
    assert (folder / mounts(score)["/app/data"]).resolve() == (tmp_path / "specs/data").resolve()
    assert score["read_only"] is True and score["cap_drop"] == ["ALL"]
    assert "/app/scored" in stack["services"]["chown-volumes"]["command"]
    assert "scored" in stack["volumes"]
    assert (
        "serve" in stack["services"]
        and "scored:/app/scored" not in (stack["services"]["serve"]["volumes"])
    )


def test_the_github_workflow_runs_the_cronjob_on_dispatch(tmp_path: Path) -> None:
    doc = load(workflows(REPO)["score"])
    assert doc["on"] == {"workflow_dispatch": None}
    job = doc["jobs"]["score"]
    assert job["environment"] == "production"
    (step,) = job["steps"]
    assert step["env"]["CRONJOB"] == "breast-cancer-score"
    assert step["env"]["NAMESPACE"] == "breast-cancer"
    env = {**step["env"], "KUBE_CONFIG": "k", "GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1"}
    for state, expected in (("Complete", 0), ("FailureTarget Failed", 1)):
        kubectl = (
            'printf "%s\\n" "$*" >> "$RUNNER_TEMP/kubectl"\n'
            f'if [ "$3" = get ]; then printf "SuccessCriteriaMet {state}"; fi'
        )
        result = bash(step["run"], tmp_path, {"kubectl": kubectl, "sleep": ""}, **env)
        assert result.returncode == expected, result.stdout + result.stderr
    calls = (tmp_path / "kubectl").read_text().splitlines()
    assert calls[0] == (
        "-n breast-cancer create job breast-cancer-score-7-1 --from=cronjob/breast-cancer-score"
    )
    assert "-n breast-cancer logs job/breast-cancer-score-7-1" in calls


def test_the_gitlab_job_runs_it_by_hand(tmp_path: Path) -> None:
    text = spec_text().replace("\nci: {provider: github}\n", "\nci: {provider: gitlab}\n")
    shutil.copytree(SPECS, tmp_path / "specs")
    (tmp_path / "specs" / SPEC.name).write_text(text)
    result = run_mlops("build", f"specs/{SPEC.name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load((tmp_path / ".gitlab/mlops-breast-cancer.gitlab-ci.yml").read_text())
    job = doc["breast-cancer:score"]
    assert job["rules"][0]["when"] == "manual" and job["needs"] == []
    assert job["variables"] == {
        "MLOPS_CRONJOB": "breast-cancer-score",
        "MLOPS_NAMESPACE": "breast-cancer",
    }
    script = "\n".join(job["script"])
    assert 'create job "$job" --from="cronjob/$MLOPS_CRONJOB"' in script
    # The script as the runner's shell runs it, against a stand-in kubectl: the Job's end.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for state, expected in (("Complete", 0), ("FailureTarget Failed", 1)):
        (bin_dir / "kubectl").write_text(
            f'#!/bin/sh\nif [ "$3" = get ]; then printf "SuccessCriteriaMet {state}"; fi\n'
        )
        (bin_dir / "kubectl").chmod(0o755)
        done = subprocess.run(
            ["sh", "-ec", script],
            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **job["variables"]},
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == expected, done.stdout + done.stderr

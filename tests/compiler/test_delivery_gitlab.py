"""The GitLab CI file, `.gitlab/mlops-<name>.gitlab-ci.yml` at the repository's top: it passes
check-jsonschema's GitLab CI schema, and its jobs do what the level promises.

The golden penguins file (level 2, compose) is the one `scripts/regenerate.py` writes into this
repository; a level-3 variant of breast-cancer (`ci: {provider: gitlab}`, Kubernetes with KServe)
exercises the scheduled monitor, the manual rollback and the cluster deploy.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.compiler.conftest import REPO, SPECS, run_mlops

GOLDEN = REPO / ".gitlab" / "mlops-penguins.gitlab-ci.yml"
SECRET_VALUES = {
    "A_TOKEN": "s3cr3t-value",
    "MLFLOW_TRACKING_URI": "s3cr3t-tracking-uri",
    "ALERT_WEBHOOK_URL": "s3cr3t-webhook-url",
}
SCHEDULED = '$CI_PIPELINE_SOURCE == "schedule"'
INCLUDE = re.compile(r"`(include: \[\{local: [^`]+\}\])`")


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    )
    assert found, "check-jsonschema is a test dependency (pyproject, [test])"
    return subprocess.run(
        [found, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def built(root: Path, spec: str, text: str) -> Path:
    """specs/<spec>.mlops.yaml replaced by `text`, built in root (a repository without .git:
    its top is root, so the CI file goes to root/.gitlab/)."""
    shutil.copytree(SPECS, root / "specs")
    (root / "specs" / f"{spec}.mlops.yaml").write_text(text, encoding="utf-8")
    result = run_mlops("build", f"specs/{spec}.mlops.yaml", cwd=root, env=SECRET_VALUES)
    assert result.returncode == 0, result.stderr
    return root


def level3_text() -> str:
    text = (SPECS / "breast-cancer.mlops.yaml").read_text(encoding="utf-8")
    assert text.count("\nci: {provider: github}\n") == 1
    return text.replace(
        "\nci: {provider: github}\n", "\nci: {provider: gitlab, secrets: [A_TOKEN]}\n"
    )


@pytest.fixture(scope="module")
def level3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(tmp_path_factory.mktemp("gitlab-level3"), "breast-cancer", level3_text())


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """GitLab's `extends`: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(out.get(key), dict) and isinstance(value, dict)
        out[key] = merged(out[key], value) if both else value
    return out


def job(doc: dict[str, Any], name: str) -> dict[str, Any]:
    own = doc[name]
    parents = own.get("extends", [])
    out: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        out = merged(out, job(doc, parent))
    return merged(out, {k: v for k, v in own.items() if k != "extends"})


def jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The runnable jobs (not `workflow`, not the hidden `.name` templates), resolved."""
    return {k: job(doc, k) for k in doc if k != "workflow" and not k.startswith(".")}


def script(j: dict[str, Any]) -> str:
    return "\n".join(j["script"])


def rules(j: dict[str, Any]) -> list[dict[str, Any]]:
    return list(j.get("rules", []))


@pytest.mark.parametrize("variant", ["penguins", "level3"])
def test_the_file_passes_the_gitlab_ci_schema(variant: str, request: pytest.FixtureRequest) -> None:
    path = (
        GOLDEN
        if variant == "penguins"
        else request.getfixturevalue("level3") / ".gitlab/mlops-breast-cancer.gitlab-ci.yml"
    )
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The level-3 variant also has the manual score job of its `batch:` section.
    assert len(path.read_text().splitlines()) <= 190


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gitlab-ci.yml"
    broken.write_text(GOLDEN.read_text().replace("when: manual", "when: by-hand"))
    assert check_jsonschema(broken).returncode != 0


def test_the_file_is_the_projects_and_written_at_the_repository_top() -> None:
    manifest = json.loads((REPO / "generated/penguins/mlops-manifest.json").read_text())
    entry = manifest["files"]["../../.gitlab/mlops-penguins.gitlab-ci.yml"]
    assert entry["component"] == "gitlab-ci", "so `mlops build --check` covers it"


def test_merge_requests_check_the_spec_the_build_the_data_and_the_tests() -> None:
    doc = load(GOLDEN)
    mr = {
        n: j
        for n, j in jobs(doc).items()
        if any("merge_request_event" in r["if"] for r in rules(j))
    }
    assert set(mr) == {"penguins:spec", "penguins:check-data", "penguins:tests"}
    for j in mr.values():
        assert all(r["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"' for r in rules(j))
        assert j["image"] == "python:3.11-slim"
        assert "specs/**" in rules(j)[0]["changes"]
    variables = mr["penguins:spec"]["variables"]
    assert (REPO / variables["MLOPS_CI_SPEC"]).is_file()
    assert (REPO / variables["MLOPS_CI_PROJECT"] / "config.json").is_file()
    assert variables["MLOPS_CI_COMPILER"].startswith("mlops-compiler==")
    spec = script(mr["penguins:spec"])
    assert 'mlops validate "$MLOPS_CI_SPEC"' in spec
    assert 'mlops build --check "$MLOPS_CI_SPEC" --out "$MLOPS_CI_OUT"' in spec
    assert mr["penguins:check-data"]["script"][-2:] == [
        'cd "$MLOPS_CI_PROJECT"',
        "python -m mlops_runtime check-data",
    ]
    assert rules(mr["penguins:tests"])[0]["exists"] == ["tests/**/*.py"]
    assert "python -m pytest" in script(mr["penguins:tests"])
    workflow = [r["if"] for r in doc["workflow"]["rules"]]
    assert '$CI_PIPELINE_SOURCE == "schedule"' in workflow
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in workflow


def test_the_default_branch_trains_pushes_and_deploys_production_by_hand(tmp_path: Path) -> None:
    from mlops_runtime.container.image import default_tag
    from mlops_runtime.train.stage import TrainResult, summary

    all_jobs = jobs(load(GOLDEN))
    train, image = all_jobs["penguins:train"], all_jobs["penguins:image"]
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rules(train)[0]["if"]
    assert train["artifacts"]["reports"]["dotenv"] == "generated/penguins/model.env"
    # The version the train stage prints reaches model.env.
    config = json.loads((REPO / "generated/penguins/config.json").read_text())
    printed = summary(TrainResult(0, {"accuracy": 0.97}, "run1", "7", "challenger"), config)
    (tmp_path / "train.log").write_text(printed + "\n")
    lines = [line for line in train["script"] if "model.env" in line]
    subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=tmp_path, check=True)
    env = (tmp_path / "model.env").read_text().split()
    assert env == ["MODEL_VERSION=7", "MODEL_ALIAS=challenger"]
    # The image: pinned docker images, tagged as the image stage tags it.
    assert image["needs"] == ["penguins:train"]
    assert re.fullmatch(r"docker:\d+\.\d+\.\d+-cli", image["image"])
    assert all(re.fullmatch(r"docker:\d+\.\d+\.\d+-dind", s) for s in image["services"])
    tag = image["variables"]["MLOPS_CI_IMAGE"] + ":v7"
    assert tag == default_tag(config, "7")
    assert 'docker push "$MLOPS_CI_IMAGE:v$MODEL_VERSION"' in script(image)
    staging = all_jobs["penguins:deploy-staging"]
    production = all_jobs["penguins:deploy-production"]
    assert staging["environment"] == {"name": "staging"}
    assert "penguins:image" in staging["needs"] and "penguins:train" in staging["needs"]
    assert production["environment"] == {"name": "production"}
    assert [r.get("when") for r in rules(production)] == ["manual"]
    assert "penguins:deploy-staging" in production["needs"]
    assert all(r.get("when") != "manual" for r in rules(staging))


def secret_names(text: str) -> set[str]:
    """The names the header lists under "CI/CD variables"."""
    header = text.split("\nworkflow:", 1)[0].split("# CI/CD variables", 1)[1]
    listed = [line for line in header.splitlines() if line.startswith("#   ")]
    return {
        name for line in listed for name in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", line)
    }


@pytest.mark.parametrize("variant", ["penguins", "level3"])
def test_no_variable_holds_a_secret_value(variant: str, request: pytest.FixtureRequest) -> None:
    path = (
        GOLDEN
        if variant == "penguins"
        else request.getfixturevalue("level3") / ".gitlab/mlops-breast-cancer.gitlab-ci.yml"
    )
    text = path.read_text()
    doc = load(path)
    names = secret_names(text)
    assert "MLFLOW_TRACKING_URI" in names
    if variant == "level3":
        assert {"A_TOKEN", "ALERT_WEBHOOK_URL"} <= names, "the header names every secret"
        for value in SECRET_VALUES.values():
            assert value not in text, "built with the secrets set: none reaches the file"
    for name, raw in [("", doc)] + [(k, v) for k, v in doc.items() if isinstance(v, dict)]:
        for key, value in (raw.get("variables") or {}).items():
            secretish = key in names or re.search(r"PASSWORD|TOKEN|SECRET|_URI$|_URL$", key)
            if secretish:
                assert re.fullmatch(r"\$[A-Z_][A-Z0-9_]*", str(value)), (name, key, value)


def test_level3_has_the_scheduled_monitor_and_the_manual_rollback(level3: Path) -> None:
    text = (level3 / ".gitlab/mlops-breast-cancer.gitlab-ci.yml").read_text()
    all_jobs = jobs(yaml.safe_load(text))
    monitor = all_jobs["breast-cancer:monitor"]
    assert rules(monitor) == [{"if": SCHEDULED}]
    assert monitor["script"][-2:] == ['cd "$MLOPS_CI_PROJECT"', "python -m mlops_runtime monitor"]
    assert monitor["artifacts"]["paths"] == ["generated/breast-cancer/reports/monitor/"]
    assert monitor["artifacts"]["when"] == "always"
    assert monitor["allow_failure"] == {"exit_codes": [1]}, "a warning passes, an alert fails"
    assert monitor["cache"]["paths"] == monitor["artifacts"]["paths"], "the next run's state"
    assert 'cron "0 * * * *"' in text, "the spec's monitors.schedule, for the pipeline schedule"
    scheduled = [n for n, j in all_jobs.items() if any(SCHEDULED in r["if"] for r in rules(j))]
    assert scheduled == ["breast-cancer:monitor"], "a schedule runs the monitor alone"
    rollback = all_jobs["breast-cancer:rollback"]
    assert [r.get("when") for r in rules(rollback)] == ["manual"]
    assert rollback["environment"] == {"name": "production"}
    assert rollback["allow_failure"] is True, "a manual job that does not block the pipeline"
    golden = jobs(load(GOLDEN))
    assert "penguins:monitor" not in golden and "penguins:rollback" not in golden
    assert not any(SCHEDULED in r["if"] for j in golden.values() for r in rules(j))


def test_the_rollback_job_quotes_its_variables(level3: Path, tmp_path: Path) -> None:
    doc = load(level3 / ".gitlab/mlops-breast-cancer.gitlab-ci.yml")
    rollback = jobs(doc)["breast-cancer:rollback"]
    assert rollback["variables"]["ROLLBACK_TO"] == "" == rollback["variables"]["ROLLBACK_REASON"]
    block = rollback["script"][-1]
    assert '--to "$ROLLBACK_TO"' in block and '--reason "$ROLLBACK_REASON"' in block
    assert "ROLLBACK_" not in re.sub(r'"[^"]*"', "", block), "every use inside double quotes"
    # Run with hostile values: each reaches the stage as one argument, and nothing else runs.
    stub = 'python() { printf "%s\\n" "$@" > args; }\n'
    hostile = {"ROLLBACK_TO": '7"; touch owned; echo "', "ROLLBACK_REASON": "$(touch owned) `id`"}
    for env, expected in [
        (hostile, ["--to", hostile["ROLLBACK_TO"], "--reason", hostile["ROLLBACK_REASON"]]),
        ({"ROLLBACK_TO": "", "ROLLBACK_REASON": "drift"}, ["--reason", "drift"]),
    ]:
        run_env = {"PATH": os.environ["PATH"], **env}
        subprocess.run(["bash", "-ec", stub + block], cwd=tmp_path, env=run_env, check=True)
        args = (tmp_path / "args").read_text().splitlines()
        assert args == ["-m", "mlops_runtime", "rollback", *expected]
        assert not (tmp_path / "owned").exists()


def test_each_target_deploys_its_own_way(level3: Path) -> None:
    cluster = jobs(load(level3 / ".gitlab/mlops-breast-cancer.gitlab-ci.yml"))
    deploy = script(cluster["breast-cancer:deploy-production"])
    assert 'kustomize edit set image "$MLOPS_CI_IMAGE:v$MODEL_VERSION"' in deploy
    assert "kubectl apply -k ." in deploy and "docker-compose" not in deploy
    assert "InferenceService" in deploy, "deploy.kserve: the InferenceService's image is pinned"
    job_ = cluster["breast-cancer:deploy-staging"]
    assert re.fullmatch(r"alpine/k8s:\d+\.\d+\.\d+", job_["image"]["name"])
    base = level3 / job_["variables"]["MLOPS_KUSTOMIZE_DIR"]
    assert (base / "kustomization.yaml").is_file()
    # The train Job is left out by its label (CI trained already; its template is immutable).
    assert "--selector 'app.kubernetes.io/component!=train'" in deploy
    (train_job,) = yaml.safe_load_all((base / "train-job.yaml").read_text())
    assert train_job["metadata"]["labels"]["app.kubernetes.io/component"] == "train"
    one_machine = jobs(load(GOLDEN))
    for environment in ("staging", "production"):
        j = one_machine[f"penguins:deploy-{environment}"]
        assert j["tags"] == [f"penguins-{environment}"], "a runner on that host"
        assert "docker-compose -f deploy/compose/compose.yaml up -d" in script(j)
        assert "kubectl" not in script(j)
    assert (REPO / "generated/penguins/deploy/compose/compose.yaml").is_file()


@pytest.mark.parametrize("variant", ["penguins", "level3"])
def test_the_readme_include_line_includes_the_file(
    variant: str, request: pytest.FixtureRequest
) -> None:
    root, name = (
        (REPO, "penguins")
        if variant == "penguins"
        else (request.getfixturevalue(variant), "breast-cancer")
    )
    readme = (root / "generated" / name / "README.md").read_text()
    (line,) = INCLUDE.findall(readme)
    (entry,) = yaml.safe_load(line)["include"]
    pattern = entry["local"]
    path = f".gitlab/mlops-{name}.gitlab-ci.yml"
    assert (root / path).is_file()
    assert fnmatch.fnmatchcase(path, pattern)
    assert len(PurePosixPath(pattern).parts) == len(PurePosixPath(path).parts), (
        "* stays in .gitlab/"
    )
    assert not fnmatch.fnmatchcase(".gitlab/other.yml", pattern)
    assert ("monitors.schedule" in readme) == (variant == "level3")


def test_without_a_deploy_section_nothing_is_deployed(tmp_path: Path) -> None:
    text = (SPECS / "penguins.mlops.yaml").read_text(encoding="utf-8")
    assert text.count("\ndeploy: {target: compose, replicas: 1}\n") == 1
    root = built(
        tmp_path, "penguins", text.replace("\ndeploy: {target: compose, replicas: 1}\n", "\n")
    )
    path = root / ".gitlab/mlops-penguins.gitlab-ci.yml"
    assert check_jsonschema(path).returncode == 0
    names = set(jobs(load(path)))
    assert "penguins:image" in names and not any("deploy" in n for n in names)

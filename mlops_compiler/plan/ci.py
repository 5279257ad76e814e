"""What the CI templates print (templates/ci/): where things are from the repository's top,
what to install, which stages to run, and the names (never the values) of the secrets.

Workflows run from the repository root: the spec, the output root and the project folder
are given relative to it, and every job that runs a stage works in the project folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlops_compiler import __version__
from mlops_compiler.load.yaml_positions import LoadedSpec
from mlops_compiler.plan.deploy import image_repository
from mlops_compiler.spec.model import Spec

# The tracking store CI jobs use; a CI secret of this name points them at a shared server.
TRACKING_SECRET = "MLFLOW_TRACKING_URI"
# Secrets the delivery jobs read besides the spec's: registry credentials (not for ghcr.io,
# where the job's own token pushes, nor for a registry on the runner's host), the kubeconfig
# of each environment's cluster, and Grafana's admin password on one machine (compose).
REGISTRY_SECRETS = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")
KUBE_CONFIG_SECRET = "KUBE_CONFIG_{environment}"
GRAFANA_SECRET = "GF_SECURITY_ADMIN_PASSWORD"
ENVIRONMENTS = ("staging", "production")


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root)).as_posix()


def registry_host(image: str) -> str:
    """The registry part of an image repository, the way docker reads it."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _delivery(spec: Spec, image: str) -> dict[str, Any]:
    """How the GitHub workflows log in, where their jobs run and which secrets they read."""
    host = registry_host(image)
    local = host.split(":")[0] in ("localhost", "127.0.0.1")
    login = "github" if host == "ghcr.io" else "none" if local else "secrets"
    compose = spec.deploy.target == "compose"
    kube = (
        {}
        if compose
        else {e: KUBE_CONFIG_SECRET.format(environment=e.upper()) for e in ENVIRONMENTS}
    )
    # What `docker-compose up` passes from its environment by name (deploy/compose/).
    deploy_env = sorted({TRACKING_SECRET, *spec.deploy.secrets, GRAFANA_SECRET}) if compose else []
    return {
        "registry_login": login,
        "registry_secrets": list(REGISTRY_SECRETS) if login == "secrets" else [],
        "kube_secrets": kube,
        "deploy_env": deploy_env,
        # A registry on localhost is the runner's own host; one machine deploys on itself.
        "image_runner": "self-hosted" if local else "ubuntu-latest",
        "target_runner": "self-hosted" if compose else "ubuntu-latest",
    }


def ci_context(
    spec: Spec,
    loaded: LoadedSpec,
    out_dir: Path,
    repo_root: Path,
    config: dict[str, Any],
    commands: dict[str, tuple[str, ...]],
) -> dict[str, Any]:
    ci = spec.ci
    project = _relative(out_dir, repo_root)
    secrets = sorted({*ci.secrets, *spec.deploy.secrets, *(a.url_env for a in spec.alerts)})
    delivery = _delivery(spec, image_repository(spec))
    return {
        "provider": ci.provider,
        "python": ci.python,
        "compiler": f"mlops-compiler=={__version__}",
        "spec": _relative(loaded.path, repo_root),
        "out_root": _relative(out_dir.parent, repo_root),
        "project": project,
        # What a change to should run the workflows: the spec (and its data folder) and the
        # generated project.
        "paths": [_relative(loaded.path.parent, repo_root) + "/**", project + "/**"],
        "data_path_env": config["data"].get("path_env"),
        "commands": {stage: list(argv) for stage, argv in commands.items()},
        "secrets": secrets,
        "tracking_secret": TRACKING_SECRET,
        "image": image_repository(spec),
        # The registry CI logs in to before it pushes: the image's host (Docker Hub if none).
        "registry": registry_host(image_repository(spec)),
        # A registry on the runner's own host (the default localhost:5000): no login.
        "registry_local": registry_host(image_repository(spec)).split(":")[0]
        in ("localhost", "127.0.0.1"),
        "deploy_target": spec.deploy.target,
        "kserve": spec.deploy.kserve,
        "monitor_schedule": spec.monitors.schedule,
        "environments": list(ENVIRONMENTS),
        **delivery,
        # The stage jobs get every CI secret, and the tracking store's; `repository_secrets` is
        # every name a workflow reads (the README lists them).
        "stage_secrets": sorted({*secrets, TRACKING_SECRET}),
        "repository_secrets": sorted(
            {
                *secrets,
                TRACKING_SECRET,
                *delivery["registry_secrets"],
                *delivery["kube_secrets"].values(),
                *delivery["deploy_env"],
            }
        ),
    }

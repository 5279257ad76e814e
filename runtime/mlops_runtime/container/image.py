"""`python -m mlops_runtime image [--version V] [TAG]`: build the serving container through a
Docker engine.

The tag is TAG if given, else `<image.repository>:v<V>` with the model version V the image is
released for (CI passes the version its train step registered), else the repository tagged
with the spec's digest.

Exit codes: 0 built; 2 the Docker SDK or the docker command is not installed; 3 no Docker
engine is reachable; 4 the build itself failed. The engine is found the way the docker CLI finds it (DOCKER_HOST,
else the local socket).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.project import Project

EXIT_OK = 0
EXIT_NO_SDK = 2
EXIT_NO_ENGINE = 3
EXIT_BUILD_FAILED = 4


def default_tag(config: Mapping[str, Any], version: str | None = None) -> str:
    repository = (config.get("image") or {}).get("repository") or str(config["name"])
    return f"{repository}:v{version}" if version else f"{repository}:{config['spec_sha256'][:12]}"


def build_image(tag: str, context: Path) -> int:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        print("the Docker SDK is not installed: pip install docker", file=sys.stderr)
        return EXIT_NO_SDK
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        print(
            "no Docker engine is reachable, so no image was built "
            f"(set DOCKER_HOST or start an engine): {exc}",
            file=sys.stderr,
        )
        return EXIT_NO_ENGINE
    # The Dockerfile mounts its build context (`RUN --mount`), which only BuildKit builds; the
    # Docker SDK drives the legacy builder, so the build itself goes through the docker CLI.
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        print("the docker command is not installed, so no image was built", file=sys.stderr)
        return EXIT_NO_SDK
    built = subprocess.run(
        [docker_cli, "build", "--tag", tag, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    if built.returncode != 0:
        print(f"docker build failed with exit code {built.returncode}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    print(f"built {tag}")
    return EXIT_OK


def main(argv: list[str], project: Project) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_runtime image")
    parser.add_argument("tag", nargs="?", help="the full image tag (default: see above)")
    parser.add_argument("--version", help="the model version the image is released for")
    args = parser.parse_args(argv)
    return build_image(args.tag or default_tag(project.config, args.version), project.root)

"""`python -m mlops_runtime image [TAG]`: build the serving container through a Docker engine.

Exit codes: 0 built; 2 the Docker SDK is not installed; 3 no Docker engine is reachable;
4 the build itself failed. The engine is found the way the docker CLI finds it (DOCKER_HOST,
else the local socket).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_runtime.project import Project

EXIT_OK = 0
EXIT_NO_SDK = 2
EXIT_NO_ENGINE = 3
EXIT_BUILD_FAILED = 4


def default_tag(config: Mapping[str, Any]) -> str:
    return f"{config['name']}:{config['spec_sha256'][:12]}"


def build_image(tag: str, context: Path) -> int:
    try:
        import docker
        from docker.errors import BuildError, DockerException
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
    try:
        image, logs = client.images.build(path=str(context), tag=tag, rm=True)
    except (BuildError, DockerException) as exc:
        print(f"docker build failed: {exc}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    for entry in logs:
        if "stream" in entry:
            print(entry["stream"], end="")
    print(f"built {tag} ({image.short_id})")
    return EXIT_OK


def main(argv: list[str], project: Project) -> int:
    tag = argv[0] if argv else default_tag(project.config)
    return build_image(tag, project.root)

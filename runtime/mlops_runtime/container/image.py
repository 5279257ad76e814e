"""`python -m mlops_runtime image [--version V] [--base-image NAME] [--engine E] [TAG]`: build the
serving container with docker or podman, with no network during the build.

The tag is TAG if given, else `<image.repository>:v<V>` with the model version V the image is
released for (CI passes the version its train step registered), else the repository tagged
with the spec's digest.

One code path for both engines: their command-line interface, which takes the same
arguments (podman answers the docker CLI's commands). The engine is `--engine`, else
MLOPS_CONTAINER_ENGINE, else config.json's `image.engine` (the spec's `deploy.engine`); `auto`
takes docker when its command is installed, else podman.

Before building, the stage prepares on the host every wheel the image installs, for the
base image's Python and platform (it asks the base image): the runtime itself, built from the
installed source when the runtime was installed from one (else downloaded by its pin), and
everything requirements.txt pins, at the versions installed on the host where the host has
them (so the image runs the libraries the model was trained and tested with: an MLflow
database written by one MLflow must be read by the same MLflow). The wheels are cached under
`${XDG_CACHE_HOME:-~/.cache}/mlops-runtime/wheels/`, keyed by what they were made for, and
the build runs with `--network=none` on a context holding only what .dockerignore lets in and
those wheels. The engine tags the image only when the build succeeds.

Exit codes: 0 built; 2 no engine command is installed (or the one asked for is not); 3 the
engine does not answer; 4 the build itself failed; 5 the base image is neither in the
engine's store nor pullable; 6 the wheels could not be prepared. Each failure is one line on
stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_runtime.project import Project

EXIT_OK = 0
EXIT_NO_ENGINE = 2
EXIT_ENGINE_DOWN = 3
EXIT_BUILD_FAILED = 4
EXIT_NO_BASE_IMAGE = 5
EXIT_NO_WHEELS = 6

ENGINES = ("docker", "podman")
ENGINE_VARIABLE = "MLOPS_CONTAINER_ENGINE"
DEFAULT_BASE_IMAGE = "python:3.11.11-slim-bookworm"
WHEELHOUSE = "wheelhouse"
ENGINE_TIMEOUT_S = 30
PULL_TIMEOUT_S = 600
PIP_TIMEOUT_S = 1800
BUILD_TIMEOUT_S = 3600
# What the base image says of itself: its Python, machine and C library (wheels must match).
PROBE = (
    "import json, platform, sys; "
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
    "'machine': platform.machine(), 'libc': platform.libc_ver()}))"
)


class ImageError(Exception):
    """A failure of the stage: its exit code and one line for stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Engine:
    name: str
    path: str

    def command(self, *args: str) -> list[str]:
        return [self.path, *args]

    def run(
        self, *args: str, timeout: float = ENGINE_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def default_tag(config: Mapping[str, Any], version: str | None = None) -> str:
    repository = (config.get("image") or {}).get("repository") or str(config["name"])
    return f"{repository}:v{version}" if version else f"{repository}:{config['spec_sha256'][:12]}"


def choose_engine(preference: str) -> Engine:
    """The engine `preference` names (docker, podman, or auto), answering, or ImageError."""
    if preference not in ("auto", *ENGINES):
        raise ImageError(
            EXIT_NO_ENGINE, f"unknown container engine {preference!r}: auto, docker or podman"
        )
    wanted = ENGINES if preference == "auto" else (preference,)
    found = [Engine(name, path) for name in wanted if (path := shutil.which(name))]
    if not found:
        if preference == "auto":
            message = "no container engine: neither docker nor podman is installed"
        else:
            message = f"the container engine {preference} is not installed"
        raise ImageError(
            EXIT_NO_ENGINE,
            f"{message}, so no image was built (install docker or podman, or set "
            f"{ENGINE_VARIABLE} to one that is)",
        )
    problems = []
    for engine in found:
        try:
            answered = engine.run("info", "--format", "{{json .}}")
        except subprocess.TimeoutExpired:
            problems.append(f"{engine.name} did not answer in {ENGINE_TIMEOUT_S} s")
            continue
        if answered.returncode == 0:
            return engine
        problems.append(f"{engine.name}: {last_line(answered.stderr)}")
    raise ImageError(
        EXIT_ENGINE_DOWN,
        "no container engine answers, so no image was built: " + "; ".join(problems),
    )


def ensure_base_image(engine: Engine, base: str) -> None:
    if engine.run("image", "inspect", base).returncode == 0:
        return
    try:
        pulled = engine.run("pull", base, timeout=PULL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pulled = subprocess.CompletedProcess([], 1, "", f"no answer in {PULL_TIMEOUT_S} s")
    if pulled.returncode != 0:
        raise ImageError(
            EXIT_NO_BASE_IMAGE,
            f"the base image {base} is not in {engine.name}'s store and cannot be pulled "
            f"({last_line(pulled.stderr)}), so no image was built (--base-image NAME)",
        )


def base_platform(engine: Engine, base: str) -> dict[str, Any]:
    """The base image's Python version, machine and C library, from python3 inside it."""
    probed = engine.run("run", "--rm", "--network=none", base, "python3", "-c", PROBE)
    if probed.returncode != 0:
        raise ImageError(
            EXIT_BUILD_FAILED,
            f"the base image {base} has no working python3 ({last_line(probed.stderr)}), "
            "so no image was built",
        )
    found: dict[str, Any] = json.loads(last_line(probed.stdout))
    libc, libc_version = found["libc"]
    if libc != "glibc" or not libc_version:
        raise ImageError(
            EXIT_BUILD_FAILED,
            f"the base image {base} has no glibc ({libc or 'none found'}): the image needs a "
            "Debian-like base (the official python image, or Debian with python3-venv)",
        )
    return found


def platform_tags(machine: str, glibc: str) -> list[str]:
    """pip's --platform values for wheels that run on `machine` with this glibc."""
    minor = int(glibc.split(".")[1])
    tags = [f"manylinux_2_{m}_{machine}" for m in range(minor, 16, -1)]
    return [*tags, f"manylinux2014_{machine}", f"linux_{machine}"]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (made if missing), held across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "mlops-runtime"


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=PIP_TIMEOUT_S,
    )


def runtime_source() -> Path | None:
    """The folder the installed runtime was built from, when it is installed from source."""
    import mlops_runtime

    root = Path(mlops_runtime.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "mlops-runtime"' in pyproject.read_text():
        return root
    return None


def source_digest(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", root / "README.md"]
    files += sorted(p for p in (root / "mlops_runtime").rglob("*") if p.is_file())
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def runtime_wheel(version: str) -> Path:
    """A folder holding the runtime's wheel at `version`: built from the installed source, or
    downloaded by its pin when the runtime was installed from an index."""
    source = runtime_source()
    key = f"source-{source_digest(source)[:16]}" if source else f"index-{version}"
    folder = cache_root() / "runtime" / key
    with locked(folder.with_name(folder.name + ".lock")):
        if any(folder.glob("mlops_runtime-*.whl")):
            return folder
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
        if source:
            made = pip("wheel", "--no-deps", "-w", str(partial), str(source))
        else:
            made = pip("download", "--no-deps", "-d", str(partial), f"mlops-runtime=={version}")
        if made.returncode != 0 or not any(partial.glob("mlops_runtime-*.whl")):
            shutil.rmtree(partial, ignore_errors=True)
            how = f"from {source}" if source else f"mlops-runtime=={version} from the index"
            raise ImageError(
                EXIT_NO_WHEELS,
                f"cannot make the runtime's wheel {how} ({last_line(made.stderr)}), "
                "so no image was built",
            )
        partial.rename(folder)
    return folder


def host_pins() -> list[str]:
    """`name==version` of every distribution installed here from an index. pip applies a pin
    only to what the requirements resolve to, so the others cost nothing."""
    from importlib import metadata

    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        # A path, VCS or URL install has no wheel on an index under its version.
        if not name or dist.read_text("direct_url.json") is not None:
            continue
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        # The first on the path is the one Python imports; a shadowed copy is not.
        if canonical not in ("mlops-runtime", "mlops-compiler"):
            pins.setdefault(canonical, f"{canonical}=={dist.version}")
    return sorted(pins.values())


def download_wheels(
    into: Path, requirements: Path, runtime: Path, python: str, tags: Sequence[str], pins: Path
) -> subprocess.CompletedProcess[str]:
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    return pip(
        "download",
        "--dest",
        str(into),
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
        *platforms,
        "--find-links",
        str(runtime),
        "-r",
        str(requirements),
        *(("-c", str(pins)) if pins.stat().st_size else ()),
    )


def wheelhouse(project: Path, target: Mapping[str, Any]) -> Path:
    """Every wheel requirements.txt needs for the base image's platform, cached by what they
    are for: the requirements, the runtime wheel and the target platform."""
    from mlops_runtime import __version__

    runtime = runtime_wheel(__version__)
    # Keyed by the requirements alone: the header comment names the spec, and projects with
    # the same requirements share one wheelhouse (and the engine's cached install layer).
    requirements = "\n".join(
        line.strip()
        for line in (project / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    (wheel,) = sorted(runtime.glob("mlops_runtime-*.whl"))
    tags = platform_tags(target["machine"], target["libc"][1])
    python = target["python"]
    pins = host_pins()
    key = hashlib.sha256(
        json.dumps([requirements, wheel.name, runtime.name, python, tags, pins]).encode()
    ).hexdigest()[:16]
    folder = cache_root() / "wheels" / key
    with locked(folder.with_name(folder.name + ".lock")):
        if (folder / "requirements.txt").is_file():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
        host = partial / "host-pins.txt"
        host.write_text("".join(f"{pin}\n" for pin in pins))
        got = download_wheels(partial, project / "requirements.txt", runtime, python, tags, host)
        if got.returncode != 0 and pins:
            # The host's versions may have no wheel for the image's Python or platform.
            print(
                "image: the host's library versions have no wheels for Python "
                f"{python} on {tags[0]} ({last_line(got.stderr)}); the image gets the newest "
                "versions requirements.txt allows",
                file=sys.stderr,
            )
            host.write_text("")
            got = download_wheels(
                partial, project / "requirements.txt", runtime, python, tags, host
            )
        host.unlink()
        if got.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise ImageError(
                EXIT_NO_WHEELS,
                f"cannot download the wheels of requirements.txt for Python {python} on "
                f"{tags[0]} ({last_line(got.stderr)}), so no image was built",
            )
        # Marks the folder complete; the image never reads it.
        (partial / "requirements.txt").write_text(requirements)
        partial.rename(folder)
    return folder


def allowed_files(project: Path) -> list[str]:
    """What .dockerignore lets into the build context (a `*` then `!path` lines)."""
    ignore = (project / ".dockerignore").read_text().splitlines()
    return [ln[1:].rstrip("/") for ln in ignore if ln.startswith("!") and ln[1:] != "wheelhouse/"]


def build_context(project: Path, wheels: Path, into: Path) -> None:
    """The project's files the image copies, its Dockerfile, and the wheels (linked)."""
    for name in ["Dockerfile", ".dockerignore", *allowed_files(project)]:
        source = project / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    (into / WHEELHOUSE).mkdir()
    for wheel in wheels.glob("*.whl"):
        try:
            os.link(wheel, into / WHEELHOUSE / wheel.name)
        except OSError:
            shutil.copy2(wheel, into / WHEELHOUSE / wheel.name)


def build_image(
    tag: str,
    project: Path,
    *,
    engine_preference: str = "auto",
    base_image: str = DEFAULT_BASE_IMAGE,
) -> int:
    try:
        started = time.monotonic()
        engine = choose_engine(engine_preference)
        print(f"image: building {tag} with {engine.name} ({engine.path}) FROM {base_image}")
        ensure_base_image(engine, base_image)
        wheels = wheelhouse(project, base_platform(engine, base_image))
        logs = cache_root() / "build-logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{tag.replace('/', '_').replace(':', '_')}.log"
        with tempfile.TemporaryDirectory(dir=cache_root(), prefix="context-") as context:
            build_context(project, wheels, Path(context))
            argv = engine.command(
                "build",
                # podman's default OCI format drops HEALTHCHECK; docker's keeps it.
                *(["--format", "docker"] if engine.name == "podman" else []),
                "--network=none",
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                # In the install step's cache key: new wheels, a new layer (engines do not
                # hash what a RUN --mount binds).
                "--build-arg",
                f"WHEELHOUSE_DIGEST={wheels.name}",
                "--tag",
                tag,
                "--file",
                str(Path(context) / "Dockerfile"),
                context,
            )
            with log.open("w") as out:
                try:
                    built = subprocess.run(
                        argv,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        check=False,
                        timeout=BUILD_TIMEOUT_S,
                        env={**os.environ, "DOCKER_BUILDKIT": "1"},
                    )
                except subprocess.TimeoutExpired as exc:
                    raise ImageError(
                        EXIT_BUILD_FAILED,
                        f"{engine.name} build took over {BUILD_TIMEOUT_S} s, no image tagged "
                        f"(log: {log})",
                    ) from exc
        if built.returncode != 0:
            raise ImageError(
                EXIT_BUILD_FAILED,
                f"{engine.name} build failed with exit code {built.returncode}, no image "
                f"tagged: {last_line(log.read_text())} (log: {log})",
            )
    except ImageError as exc:
        print(f"image: {exc}", file=sys.stderr)
        return exc.code
    seconds = time.monotonic() - started
    size = engine.run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
    megabytes = f", {int(size) / 1e6:.0f} MB" if size.isdigit() else ""
    print(f"built {tag} with {engine.name} in {seconds:.0f} s{megabytes}")
    return EXIT_OK


def main(argv: list[str], project: Project) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_runtime image")
    parser.add_argument("tag", nargs="?", help="the full image tag (default: see above)")
    parser.add_argument("--version", help="the model version the image is released for")
    parser.add_argument(
        "--base-image",
        metavar="NAME",
        help="the image to build FROM (default: config.json's image.base_image)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", *ENGINES),
        help=f"docker or podman (default: ${ENGINE_VARIABLE}, else config.json's image.engine)",
    )
    args = parser.parse_args(argv)
    image: Mapping[str, Any] = project.config.get("image") or {}
    return build_image(
        args.tag or default_tag(project.config, args.version),
        project.root,
        engine_preference=(
            args.engine or os.environ.get(ENGINE_VARIABLE) or image.get("engine") or "auto"
        ),
        base_image=args.base_image or image.get("base_image") or DEFAULT_BASE_IMAGE,
    )


__all__: Sequence[str] = ("build_image", "default_tag", "main")

"""What every benchmark script prints beside its figures: the machine, the load, the library
versions, the commit measured, and Markdown tables for docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The folders whose local changes make a measurement differ from its commit.
MEASURED = ("runtime", "templates", "mlops_compiler")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(packages: Iterable[str], *, wrk: bool = False) -> str:
    found = []
    for name in packages:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (missing)")
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
            found.append((out.stdout or out.stderr).split("[")[0].strip())
    return ", ".join(found)


def revision() -> str:
    """The commit measured, and whether the measured folders had local changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", *MEASURED], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    changed = (
        f" + local changes under {', '.join(m + '/' for m in MEASURED)}" if dirty.stdout else ""
    )
    return head.stdout.strip() + changed


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print(table(headers, rows))


# --- feature store benchmarks -----------------------------------------------------------------
# Feast pins pandas < 3, so a project with a feature store runs its stages in the Feast
# virtualenv the feature-store tests use (tests/feature_store/feast_env.py: made once, cached,
# it sees this environment's packages and shadows only what Feast needs).

STORE_QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "NO_COLOR": "1"}


class StoreBenchError(Exception):
    """A command failed or gave the wrong output: the script exits non-zero."""


def feast_python() -> Path:
    """The Feast virtualenv's interpreter (made and cached on first use; needs PyPI then)."""
    import sys

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.feature_store.feast_env import feast_python as find

    return Path(find())


def make_datasets() -> ModuleType:
    """scripts/make_datasets.py as a module (its `churn_tables` simulates the churn data)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "make_datasets", ROOT / "scripts" / "make_datasets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_datasets", module)
    spec.loader.exec_module(module)
    return module


def store_env(runtime: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a project's stage: no tracking or project overrides, no PYTHONPATH
    (the installed runtime), or `runtime` (a checkout's runtime/ folder) first on it."""
    drop = (
        "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLOPS_TRAIN_DATA", "MLOPS_PROJECT_DIR",
        "PYTHONPATH", "HOST", "PORT",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(STORE_QUIET)
    if runtime is not None:
        env["PYTHONPATH"] = str(runtime.resolve())
    env.update(extra)
    return env


def run_checked(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    import shlex

    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise StoreBenchError(f"`{shlex.join(cmd)}` exited {proc.returncode}:\n{tail}")
    return proc


def build_churn(work: Path, variant: str, source: str, out: str, train: str | None = None) -> Path:
    """specs/churn.mlops.yaml built by this checkout's compiler beside work/specs/ (a copy of
    specs/ made by the caller), its activity view reading `source` and, given `train`, its
    entity rows read from there (both relative to specs/): work/specs/churn-VARIANT.mlops.yaml
    into work/OUT/churn/."""
    text = (ROOT / "specs" / "churn.mlops.yaml").read_text()
    edits = {"source: data/churn_activity.csv": f"source: {source}"}
    if train is not None:
        edits["train: data/churn_labels.csv"] = f"train: {train}"
    for old, new in edits.items():
        if old not in text:
            raise StoreBenchError(f"specs/churn.mlops.yaml has no `{old}` line to point elsewhere")
        text = text.replace(old, new)
    spec = work / "specs" / f"churn-{variant}.mlops.yaml"
    spec.write_text(text)
    import sys

    run_checked(
        [sys.executable, "-m", "mlops_compiler", "build", f"specs/{spec.name}", "--out", out],
        cwd=work,
        env=store_env(PYTHONPATH=str(ROOT)),
    )
    return work / out / "churn"


def venv_versions(python: Path, packages: Iterable[str]) -> str:
    """`name version, ...` as the interpreter `python` sees them."""
    code = (
        "import importlib.metadata as m, sys\n"
        "out = []\n"
        "for n in sys.argv[1:]:\n"
        "    try: out.append(f'{n} {m.version(n)}')\n"
        "    except m.PackageNotFoundError: out.append(f'{n} (missing)')\n"
        "print(', '.join(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or proc.stderr.strip()[-200:]


def wait_quiet(limit: float, threshold: float = 1.0) -> None:
    """Wait up to `limit` seconds for the 1-minute load average to fall below `threshold`."""
    import time

    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: 1-min load {os.getloadavg()[0]:.2f}", flush=True)
        time.sleep(30)
    load = os.getloadavg()[0]
    print(
        f"  1-min load {load:.2f}: {'quiet' if load < threshold else 'still busy, running anyway'}"
    )


def wrk_summary(text: str) -> dict[str, Any] | None:
    """The `WRK_JSON {...}` line that benchmarks/wrk/*.lua print last, parsed; None if absent."""
    line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
    return None if line is None else dict(json.loads(line.removeprefix("WRK_JSON ")))


def wrk_figures(data: Mapping[str, Any]) -> dict[str, Any]:
    """A wrk summary (post_json*.lua) as requests, seconds, req/s, latencies in ms, errors."""
    lat, err = data["latency_us"], data["errors"]
    secs = data["duration_us"] / 1e6
    return {
        "requests": int(data["requests"]),
        "seconds": secs,
        "rps": data["requests"] / secs,
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000,
        "max_ms": lat["max"] / 1000,
        "non_2xx": int(err["status"]),
        "socket_errors": int(err["connect"] + err["read"] + err["write"] + err["timeout"]),
    }

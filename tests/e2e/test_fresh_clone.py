"""The README's two commands work from a clean clone: a `git clone` of HEAD, a new
virtualenv, an empty home (so an empty ~/.cache/mlops-compiler-tests), and the Quickstart's
commands as written: the demo whole, and the test command with its install part whole.

Its pytest part runs a selection, not the whole suite: the whole suite is what .ci/run runs
with that same command, and running it again inside itself would double CI's time. The
selection is one test of each kind that depends on the machine: a feature-store test (its Feast
virtualenv made afresh, seeing the new virtualenv's packages), a test that runs a system
program (promtool, which scripts/test-tools provides), and a compiler test over the committed
golden record. pip's own cache is the real one, so the installs take a minute or two, not the
downloads' time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_programs import PROGRAMS, require

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SELECTION = (
    "tests/feature_store/test_feast_repository.py"
    "::test_feast_plans_and_applies_the_generated_repository",
    "tests/compiler/test_generated_monitoring.py::test_rules_pass_promtool_check",
    "tests/compiler/test_golden.py::test_check_passes_on_committed_output",
)
TIMEOUT_S = 900
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped)")


def quickstart_command(readme: str, marker: str) -> str:
    """The line of a ```sh block in the Quickstart that holds `marker` (.ci/run reads the test
    command the same way)."""
    quickstart = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", quickstart, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2, "the Quickstart has exactly two commands"
    lines = [ln for block in blocks for ln in block.splitlines() if marker in ln]
    assert len(lines) == 1, blocks
    return lines[0]


def quickstart_test_command(readme: str) -> str:
    return quickstart_command(readme, "-m pytest")


def pip_cache() -> str:
    found = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip().splitlines()[-1]
    return str(Path.home() / ".cache" / "pip")


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )


def test_the_readme_commands_pass_in_a_fresh_clone(tmp_path: Path) -> None:
    clone, venv, home, temp = (tmp_path / n for n in ("clone", "venv", "home", "tmp"))
    home.mkdir()
    temp.mkdir()
    cloned = subprocess.run(
        [require("git"), "clone", "--quiet", str(REPO), str(clone)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert cloned.returncode == 0, cloned.stderr
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr

    # The machine's environment, as a new shell in that virtualenv sees it.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLOPS_", "PYTEST_", "PYTHON", "PIP_", "VIRTUAL_ENV"))
    }
    env |= {
        "HOME": str(home),
        "TMPDIR": str(temp),
        "PIP_CACHE_DIR": pip_cache(),
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    readme = (clone / "README.md").read_text(encoding="utf-8")
    # The first command, whole: the compiler and runtime installed from the clone (not
    # editable: the example ships inside the wheel), then the demo's loop.
    demo = run(quickstart_command(readme, "mlops demo"), clone, env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert re.search(r"requests \(v1: \d+, v2: \d+, v3: \d+\), 0 failed", demo.stdout), demo.stdout

    command = quickstart_test_command(readme)
    *install, tests = command.split(" && ")
    assert install and tests.startswith("python -m pytest"), command
    installed = run(" && ".join(install), clone, env)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    # scripts/test-tools says what it found, one line per program.
    said = [ln.split(":")[0] for ln in installed.stdout.splitlines() if ": " in ln]
    assert set(PROGRAMS) <= set(said), installed.stdout[-3000:]

    ran = run(" ".join([tests, *SELECTION]), clone, env)
    output = ran.stdout + ran.stderr
    counts = {
        word.rstrip("s"): int(n) for n, word in SUMMARY.findall(ran.stdout.strip().splitlines()[-1])
    }
    assert ran.returncode == 0, output[-5000:]
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0, output[-5000:]
    assert counts.get("passed", 0) + counts.get("skipped", 0) == len(SELECTION), output[-5000:]
    assert counts.get("passed", 0) >= 2, output[-5000:]  # skips only for a missing program
    # The Feast virtualenv was made in the empty home's cache, not found in the real one.
    assert list((home / ".cache" / "mlops-compiler-tests").glob("feast-*/mlops-ready"))

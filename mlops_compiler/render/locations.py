"""Where the templates are, without importing Jinja (the up-to-date check hashes them)."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def templates_dir() -> Path:
    """templates/ ships inside the wheel as mlops_compiler/templates (see pyproject)."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"

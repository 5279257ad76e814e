"""The one Jinja environment factory, used by the build and by the tests alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from mlops_compiler.render.filters import FILTERS, Escaped
from mlops_compiler.render.locations import templates_dir


class UnescapedValue(TypeError):
    pass


def _finalize(value: Any) -> Any:
    if isinstance(value, Escaped):
        return value
    raise UnescapedValue(
        f"{value!r} reached the output without an escape filter "
        "(" + ", ".join(sorted(FILTERS)) + ")"
    )


def make_environment(root: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root or templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_finalize,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env

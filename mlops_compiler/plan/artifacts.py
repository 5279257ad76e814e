"""The plan's immutable records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlops_compiler.errors import Diagnostic


@dataclass(frozen=True)
class Artifact:
    path: str  # posix, relative to the output root
    template: str
    component: str
    level: int  # the lowest level whose plan contains this artifact

    @property
    def rendered(self) -> bool:
        return self.template.endswith(".jinja")


@dataclass(frozen=True)
class Plan:
    """Everything a build of one spec emits; templates only print what it holds."""

    name: str
    level: int
    spec_path: Path
    spec_ref: str  # the spec's path relative to the output root, as written in headers
    spec_sha256: str
    out_dir: Path
    artifacts: tuple[Artifact, ...]
    commands: MappingProxyType[str, tuple[str, ...]]
    context: MappingProxyType[str, Any]
    # Declared spec sections this level does not emit: reported, never fatal.
    warnings: tuple[Diagnostic, ...] = ()

"""The plan's immutable records."""

from __future__ import annotations

import dataclasses
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
    # The top of the repository, where repository files (CI workflows) go.
    repository_root: Path | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Read-only mappings do not pickle; a monorepo build sends plans between processes.
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["commands"], fields["context"] = dict(self.commands), dict(self.context)
        return (_rebuild_plan, (fields,))


def _rebuild_plan(fields: dict[str, Any]) -> Plan:
    fields["commands"] = MappingProxyType(fields["commands"])
    fields["context"] = MappingProxyType(fields["context"])
    return Plan(**fields)

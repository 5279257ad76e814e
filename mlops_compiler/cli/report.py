"""What build, plan and check print."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from mlops_compiler import __version__
from mlops_compiler.errors import display_path
from mlops_compiler.pipeline import Compiled
from mlops_compiler.plan.levels import COMPONENTS, RUNTIME
from mlops_compiler.write.changes import Change, Status
from mlops_compiler.write.manifest import MANIFEST

_MARK: dict[Status, str] = {
    "added": "+",
    "changed": "~",
    "removed": "-",
    "unchanged": " ",
    "edited": "!",
    "kept": "?",
}


def print_warnings(compiled: list[Compiled]) -> None:
    """Declared sections the chosen level does not emit: said, never fatal."""
    for item in compiled:
        for warning in item.plan.warnings:
            click.echo(warning.format(), err=True)


def print_plan(item: Compiled, changes: list[Change]) -> None:
    plan = item.plan
    click.echo(f"{plan.name}: level {plan.level} -> {display_path(plan.out_dir)}/")
    click.echo("  components (level range: emitted?):")
    width = max(len(c.name) for c in COMPONENTS)
    for c in COMPONENTS:
        mark = "yes" if c.emitted_at(plan.level) else "no "
        click.echo(f"    {mark} {c.name:<{width}} L{c.min_level}-L{c.max_level}  {c.summary}")
    by_path = {a.path: a for a in plan.artifacts}
    click.echo("  files:")
    for change in changes:
        artifact = by_path.get(change.path)
        origin = (
            f"{artifact.component} (L{artifact.level})"
            if artifact
            else ("manifest" if change.path == MANIFEST else "dropped from plan")
        )
        click.echo(f"    {_MARK[change.status]} {change.status:<9} {change.path:<40} {origin}")
    click.echo(f"  {_summary(changes)}")


def _summary(changes: list[Change]) -> str:
    counts = Counter(c.status for c in changes)
    return ", ".join(f"{counts[s]} {s}" for s in _MARK if counts[s])


def print_build(results: list[tuple[Compiled, list[Change]]]) -> None:
    for item, changes in results:
        click.echo(f"{item.plan.name}: {display_path(item.plan.out_dir)}/ ({_summary(changes)})")
        for c in changes:
            if c.status == "kept":
                click.echo(f"  kept {c.path}: dropped from the plan but edited by hand")


def pinned_runtime(out_dir: Path) -> str | None:
    """The runtime version a built project's requirements.txt pins, if it pins one."""
    try:
        text = (out_dir / "requirements.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for raw in text.splitlines():
        name, _, version = raw.partition("==")
        if name.split("[")[0].strip() == RUNTIME and version:
            return version.strip()
    return None


def print_check(results: list[tuple[Compiled, list[Change]]]) -> bool:
    """True when anything is stale."""
    stale = False
    for item, changes in results:
        bad = [c for c in changes if c.status not in ("unchanged", "kept")]
        if bad:
            stale = True
            click.echo(
                f"{item.plan.name}: stale output in {display_path(item.plan.out_dir)}/", err=True
            )
            for c in bad:
                click.echo(f"  {c.status}: {c.path}", err=True)
            pinned = pinned_runtime(item.plan.out_dir)
            if pinned is not None and pinned != __version__:
                click.echo(
                    f"  requirements.txt pins mlops-runtime {pinned}, but this is "
                    f"mlops-compiler {__version__}: the pin moves with the compiler",
                    err=True,
                )
    if stale:
        click.echo("run `mlops build` on the same specs to regenerate.", err=True)
    return stale

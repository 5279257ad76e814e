"""The compiler's flow, one call per stage: discover → load → validate → plan → render → write."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from mlops_compiler.errors import Diagnostic, SpecError, WriteConflict, display_path
from mlops_compiler.load.discover import discover
from mlops_compiler.load.yaml_positions import load_spec
from mlops_compiler.plan import Plan, make_plan
from mlops_compiler.plan.levels import REPOSITORY_DIRS
from mlops_compiler.plan.path_names import path_name_problems
from mlops_compiler.render.render import render_plan
from mlops_compiler.spec.validate import validate
from mlops_compiler.write.changes import Change, compare
from mlops_compiler.write.manifest import MANIFEST, manifest_bytes
from mlops_compiler.write.transaction import Op, apply


@dataclass(frozen=True)
class Compiled:
    plan: Plan
    files: dict[str, bytes]  # every output file, the manifest included
    # Compared with the disk where the spec was compiled (on either core of a monorepo
    # build); nothing writes between compiling and building.
    changes: tuple[Change, ...] = ()


# Below this many specs a second process costs more than it saves.
PARALLEL_MIN_SPECS = 32


@dataclass(frozen=True)
class _Outcome:
    """One spec compiled, or the problems that stopped it."""

    display: str
    name: str
    name_diagnostic: Diagnostic | None  # where a clash of names is reported
    problems: tuple[Diagnostic, ...]
    compiled: Compiled | None


def _compile_one(spec_path: Path, out_root: Path, level: int | None, render: bool) -> _Outcome:
    try:
        loaded = load_spec(spec_path)
        spec = validate(loaded)
    except SpecError as exc:
        return _Outcome(display_path(spec_path), "", None, tuple(exc.diagnostics), None)
    at_name = loaded.diagnostic(("name",), "")
    plan = make_plan(spec, loaded, out_root, level)
    unsafe = path_name_problems(plan)
    if unsafe:
        problems = tuple(replace(at_name, message=message) for message in unsafe)
        return _Outcome(loaded.display, spec.name, at_name, problems, None)
    if not render:
        return _Outcome(loaded.display, spec.name, at_name, (), Compiled(plan, {}))
    files = render_plan(plan)
    files[MANIFEST] = manifest_bytes(plan, files)
    try:
        # Every path is checked against the output folder (symlinks included) here, so a
        # build that would write outside it fails as a spec problem before anything is written.
        changes = tuple(
            compare(
                plan.out_dir,
                files,
                repository_dirs(plan),
                within=out_root,
                repository=plan.repository_root,
            )
        )
    except ValueError as exc:
        problem = replace(at_name, message=str(exc))
        return _Outcome(loaded.display, spec.name, at_name, (problem,), None)
    return _Outcome(loaded.display, spec.name, at_name, (), Compiled(plan, files, changes))


def repository_dirs(plan: Plan) -> tuple[Path, ...]:
    """The repository folders a plan may write to, and remove its old files from when the
    spec stops declaring CI."""
    if plan.repository_root is None:
        return ()
    return tuple(plan.repository_root / d for d in REPOSITORY_DIRS)


def _compile_all(
    spec_paths: list[Path], out_root: Path, level: int | None, render: bool
) -> list[_Outcome]:
    return [_compile_one(p, out_root, level, render) for p in spec_paths]


def _outcomes(
    spec_paths: list[Path], out_root: Path, level: int | None, render: bool
) -> list[_Outcome]:
    """A monorepo compiles on two cores: a forked process takes the second half of the specs
    while this one does the first (compiling is CPU-bound Python; the GIL rules out threads)."""
    if len(spec_paths) < PARALLEL_MIN_SPECS or (os.cpu_count() or 1) < 2:
        return _compile_all(spec_paths, out_root, level, render)
    import multiprocessing  # only here: a one-spec build should not pay for the import

    if "fork" not in multiprocessing.get_all_start_methods():
        return _compile_all(spec_paths, out_root, level, render)
    from concurrent.futures import ProcessPoolExecutor

    # The first spec is compiled before the fork, so that the second process inherits what
    # a process pays for once (templates compiled, validators built, data headers read)
    # instead of paying for it again on the other core.
    first = _compile_all(spec_paths[:1], out_root, level, render)
    half = 1 + (len(spec_paths) - 1) // 2
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        later = pool.submit(_compile_all, spec_paths[half:], out_root, level, render)
        first += _compile_all(spec_paths[1:half], out_root, level, render)
        return first + later.result()


def compile_specs(
    paths: list[Path], out_root: Path, level: int | None = None, *, render: bool = True
) -> list[Compiled]:
    """Every spec to in-memory files; any invalid spec fails the whole call, naming all problems."""
    problems: list[Diagnostic] = []
    compiled: list[Compiled] = []
    owners: dict[str, str] = {}
    for outcome in _outcomes(discover(paths), out_root, level, render):
        if outcome.name in owners and outcome.name_diagnostic is not None:
            message = f"name {outcome.name!r} is also used by {owners[outcome.name]}"
            problems.append(replace(outcome.name_diagnostic, message=message))
            continue
        problems.extend(outcome.problems)
        if outcome.compiled is not None:
            owners[outcome.name] = outcome.display
            compiled.append(outcome.compiled)
    if problems:
        raise SpecError(problems)
    return compiled


def changes_of(item: Compiled) -> list[Change]:
    return list(item.changes)


def build(compiled: list[Compiled], *, force: bool = False) -> list[tuple[Compiled, list[Change]]]:
    """Write every spec's output; refuses before writing anything if a file was hand-edited."""
    results = [(item, changes_of(item)) for item in compiled]
    edited = [
        f"{display_path(item.plan.out_dir / c.path)}"
        for item, changes in results
        for c in changes
        if c.status == "edited"
    ]
    if edited and not force:
        raise WriteConflict(
            "these generated files were edited by hand or are not ours; "
            "edit the spec instead, or pass --force to overwrite them:\n  " + "\n  ".join(edited)
        )
    for item, changes in results:
        ops = [
            Op(c.path, item.files[c.path])
            for c in changes
            if c.status in ("added", "changed", "edited")
        ]
        ops += [Op(c.path, None) for c in changes if c.status == "removed"]
        # The manifest goes last so that it only ever describes files already in place.
        ops.sort(key=lambda op: op.path == MANIFEST)
        apply(item.plan.out_dir, ops)
    return results

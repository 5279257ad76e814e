"""`mlops` commands. Heavy modules are imported inside commands so `mlops --help` stays fast."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from mlops_compiler import __version__

F = TypeVar("F", bound=Callable[..., Any])

SPECS = click.argument(
    "specs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=True)
)
OUT = click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("generated"),
    show_default=True,
    help="Output root; each spec builds into OUT/<name>/.",
)
LEVEL = click.option(
    "--level", type=click.IntRange(0, 3), default=None, help="Override the spec's level."
)
SPEC = click.argument("spec", type=click.Path(path_type=Path, exists=True))
PYTHON = click.option(
    "--python", "python", default=None, help="Interpreter of the generated project."
)


def reports_errors(func: F) -> F:
    """Map every MlopsError to its message and exit code; users never see a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlops_compiler.errors import MlopsError

        try:
            return func(*args, **kwargs)
        except MlopsError as exc:
            click.echo(exc.report(), err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


# click's own usage errors exit 2, which is our code for invalid input too.
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlops")
def cli() -> None:
    """Compile one declarative mlops.yaml into a standalone MLOps project.

    \b
    Exit codes: 0 ok; 1 --check found stale or missing output; 2 invalid spec or usage.
    """


@cli.command()
@SPECS
@reports_errors
def validate(specs: tuple[Path, ...]) -> None:
    """Check specs and report every problem at once, as file:line:col: field: message."""
    from mlops_compiler.pipeline import compile_specs

    compiled = compile_specs(list(specs), Path("generated"), render=False)
    for item in compiled:
        click.echo(f"ok: {item.plan.name} (level {item.plan.level})")


@cli.command()
@SPECS
@OUT
@LEVEL
@reports_errors
def plan(specs: tuple[Path, ...], out: Path, level: int | None) -> None:
    """Show every file the spec's level emits, against what is on disk."""
    from mlops_compiler.cli.report import print_plan, print_warnings
    from mlops_compiler.pipeline import changes_of, compile_specs

    compiled = compile_specs(list(specs), out, level)
    print_warnings(compiled)
    for item in compiled:
        print_plan(item, changes_of(item))


@cli.command()
@SPECS
@OUT
@LEVEL
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if output is stale or missing.")
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
@reports_errors
def build(specs: tuple[Path, ...], out: Path, level: int | None, check: bool, force: bool) -> None:
    """Generate OUT/<name>/ for every spec, atomically, with its manifest."""
    from mlops_compiler.errors import display_path
    from mlops_compiler.load.discover import discover
    from mlops_compiler.write.stamp import fresh_stamps

    spec_paths = discover(list(specs))
    stamps = fresh_stamps(spec_paths, out, level)
    if stamps is not None:  # nothing changed since the last build: say what it said
        for stamp in stamps:
            for warning in stamp.warnings:
                click.echo(warning, err=True)
        if not check:
            for stamp in stamps:
                click.echo(
                    f"{stamp.name}: {display_path(out / stamp.name)}/ ({stamp.files} unchanged)"
                )
        return

    from mlops_compiler.cli.report import print_build, print_check, print_warnings
    from mlops_compiler.pipeline import build as write_all
    from mlops_compiler.pipeline import changes_of, compile_specs
    from mlops_compiler.write.stamp import Built, write_stamps

    compiled = compile_specs(spec_paths, out, level)
    print_warnings(compiled)
    if check:
        stale = [(item, changes_of(item)) for item in compiled]
        if print_check(stale):
            sys.exit(1)
        return
    print_build(write_all(compiled, force=force))
    write_stamps(
        (
            Built(
                item.plan.spec_path,
                item.plan.spec_sha256,
                item.plan.out_dir,
                item.plan.name,
                len(item.files),
                tuple(w.format() for w in item.plan.warnings),
            )
            for item in compiled
        ),
        out,
        level,
    )


@cli.command(context_settings={"ignore_unknown_options": True})
@SPEC
@click.argument("stage")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@OUT
@PYTHON
@reports_errors
def run(spec: Path, stage: str, args: tuple[str, ...], out: Path, python: str | None) -> None:
    """Run STAGE of the generated project (building first if stale), with ARGS.

    \b
    The process becomes the stage, so its exit code and signals are the stage's.
    Stages, in the order they run (the spec's level decides which exist):
      features-apply, features-materialize  the feature store (level 2+)
      check-data       the data contract on the training data (level 1+)
      train            fit, gate, register (level 0: save model/model.skops)
      lineage          where the serving model came from (level 1+)
      serve            the model server on HOST:PORT (default 127.0.0.1:8080)
      predict          send a file's rows to a running server: --file ROWS
      score            score a file without a server: --input ROWS --output DIR
      monitor          the report of the prediction log, dashboard, alerts
      rollback         serve the previous good model again
      history          who served when, and why
      image            build the serving image (level 2+)
    """
    from mlops_compiler.cli.stages import run_stage

    sys.exit(run_stage(spec, stage, list(args), out, python))


@cli.command()
@SPEC
@OUT
@click.option(
    "--to",
    "to",
    metavar="VERSION",
    default=None,
    help="Version to serve (default: the previous good one).",
)
@click.option("--reason", default=None, help="Why, for the serving history.")
@PYTHON
@reports_errors
def rollback(spec: Path, out: Path, to: str | None, reason: str | None, python: str | None) -> None:
    """Serve the previous good model again, or VERSION (building first if stale)."""
    from mlops_compiler.cli.stages import run_stage

    args = [
        *(("--to", to) if to is not None else ()),
        *(("--reason", reason) if reason is not None else ()),
    ]
    sys.exit(run_stage(spec, "rollback", args, out, python))


@cli.command()
@SPEC
@OUT
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON document instead of a table: {"model": NAME, "entries": [...]}.',
)
@PYTHON
@reports_errors
def history(spec: Path, out: Path, as_json: bool, python: str | None) -> None:
    """Who served when, and why it changed: the project's serving history."""
    from mlops_compiler.cli.stages import run_stage

    sys.exit(run_stage(spec, "history", ["--json"] if as_json else [], out, python))


@cli.command()
@click.argument("spec", required=False, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("mlops-demo"),
    show_default=True,
    help="Working folder: the example, its generated project, registry, reports and logs.",
)
@click.option("--fast", is_flag=True, help="Fewer requests per phase (about 2 minutes).")
@PYTHON
@reports_errors
def demo(spec: Path | None, out: Path, fast: bool, python: str | None) -> None:
    """The whole loop on the shipped example (or SPEC), one line per step.

    \b
    build, train v1, serve, traffic, late labels, a worse v2, monitor, alert,
    automatic rollback under traffic, the world shifts, retraining, history.
    """
    from mlops_compiler.demo.loop import run_demo

    try:
        run_demo(spec, out, fast, python)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: everything the demo started is stopped", err=True)
        sys.exit(130)


@cli.command()
@click.option(
    "--data", required=True, type=click.Path(path_type=Path), help="CSV or Parquet training data."
)
@click.option("--target", required=True, help="The column to predict.")
@click.option("--name", default=None, help="Spec name (default: from the data file's name).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("mlops.yaml"),
    show_default=True,
    help="Spec file to write.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing spec file.")
@reports_errors
def init(data: Path, target: str, name: str | None, out: Path, force: bool) -> None:
    """Write a starter spec whose data contract is inferred from DATA."""
    from mlops_compiler.errors import display_path
    from mlops_compiler.init import init_spec

    inferred, chosen = init_spec(data, target, name=name, spec_path=out, force=force)
    for warning in inferred.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"wrote {display_path(out)}: {chosen!r}, {inferred.task} of {inferred.target!r}, "
        f"{len(inferred.columns)} columns from {inferred.rows} rows; "
        f"next: mlops build {display_path(out)}"
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of mlops.yaml (for editors' yaml-language-server)."""
    from mlops_compiler.spec.json_schema import schema_text

    click.echo(schema_text(), nl=False)


def main() -> None:
    cli(prog_name="mlops")

"""Write the starter spec: names, paths and YAML text for what `infer` found.

The text is assembled line by line (rather than dumped) so it reads like the hand-written
examples, with flow-style column rules and comments; every user-supplied string goes through
PyYAML's own scalar emitter, so any column name or label survives the round trip.
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from pathlib import Path

import yaml

from mlops_compiler.errors import UsageError, display_path
from mlops_compiler.init.infer import Inferred, InferredColumn, Value, infer
from mlops_compiler.spec.estimators import DEFAULT_ESTIMATOR

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
NAME_MAX = 40
SEED = 42
# PyYAML forgets a plain or quoted key longer than this; longer ones use the explicit '? ' form.
SIMPLE_KEY_MAX = 1000
# YAML 1.1 line breaks: PyYAML leaves them raw in single-quoted scalars, spanning lines.
YAML_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
_REPO = Path(__file__).resolve().parents[2]
SCHEMA = _REPO / "schema" / "mlops.schema.json"
GATE_EXAMPLE = {"classification": 'accuracy: ">= 0.8"', "regression": 'r2: ">= 0.5"'}


def derive_name(stem: str) -> str:
    """A DNS-style spec name from a file stem: 'Breast_Cancer (v2)' -> 'breast-cancer-v2'."""
    ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not slug:
        return "model"
    if not slug[0].isalpha():
        slug = f"model-{slug}"
    return slug[:NAME_MAX].rstrip("-")


def yaml_scalar(value: Value) -> str:
    """`value` as one line of YAML that loads back as exactly `value`, in any context."""
    # Inside a flow sequence PyYAML picks the strictest quoting (',', '[', '{' matter there),
    # which is then also safe as a block key or a flow-mapping value.
    text = _dump_one(value, style=None)
    if any(brk in text for brk in YAML_BREAKS):  # a multi-line scalar breaks our indentation
        text = _dump_one(value, style='"')
    return text


def _dump_one(value: Value, style: str | None) -> str:
    dumped = yaml.safe_dump(
        [value], default_flow_style=True, default_style=style, allow_unicode=True, width=2**31 - 1
    )
    return dumped.rstrip("\n")[1:-1]


def schema_ref(spec_path: Path) -> str | None:
    """The repository's JSON Schema relative to the spec, when the spec lives in the checkout.

    Outside it (or from an installed wheel, which ships no schema) a path would only point
    into one machine's folders, so the editor hint is left out.
    """
    folder = spec_path.resolve().parent
    if not SCHEMA.is_file() or not folder.is_relative_to(_REPO):
        return None
    return Path(os.path.relpath(SCHEMA, folder)).as_posix()


def data_ref(data: Path, spec_path: Path) -> str:
    """The data path as the spec records it: relative to the spec's folder."""
    target = data.resolve()
    try:
        return Path(os.path.relpath(target, spec_path.resolve().parent)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return target.as_posix()


def _rule(column: InferredColumn) -> str:
    parts = [f"type: {column.type}"]
    if column.min is not None:
        parts.append(f"min: {yaml_scalar(column.min)}")
    if column.max is not None:
        parts.append(f"max: {yaml_scalar(column.max)}")
    if column.values is not None:
        parts.append(f"values: [{', '.join(yaml_scalar(v) for v in column.values)}]")
    if column.nullable:
        parts.append("nullable: true")
        if column.max_null_fraction is not None:
            parts.append(f"max_null_fraction: {yaml_scalar(column.max_null_fraction)}")
    return "{" + ", ".join(parts) + "}"


def _column_lines(column: InferredColumn, indent: str) -> list[str]:
    key = yaml_scalar(column.name)
    if len(key) <= SIMPLE_KEY_MAX:
        return [f"{indent}{key}: {_rule(column)}"]
    return [f"{indent}? {key}", f"{indent}: {_rule(column)}"]


def render(inferred: Inferred, name: str, spec_path: Path) -> str:
    """The starter spec's text."""
    task = inferred.task
    source = inferred.source.name
    lines: list[str] = []
    ref = schema_ref(spec_path)
    if ref is not None:
        lines.append(f"# yaml-language-server: $schema={ref}")
    lines += [
        f"# Starter spec written by `mlops init` from {inferred.rows} rows of {source}.",
        "# The contract records what that sample looked like: tighten the bounds and allowed",
        "# values to what the data may really hold before other data is judged against it.",
        "apiVersion: mlops/v1",
        f"name: {yaml_scalar(name)}",  # a name such as 'yes' would load as a bool
        f"description: {yaml_scalar(f'Starter spec inferred from {source}.')}",
        "# Level 1: tracked, gated and registered; raise it for serving, monitoring and deploy.",
        "level: 1",
        "data:",
        f"  train: {yaml_scalar(data_ref(inferred.source, spec_path))}",
        f"  target: {yaml_scalar(inferred.target)}",
    ]
    if inferred.stratify is False:
        lines += [
            "  # Some class has a single row, and a stratified split needs two of each.",
            "  split: {stratify: false}",
        ]
    lines += [
        "  contract:",
        "    # Half the rows seen: a smaller refresh still trains, a truncated file does not.",
        f"    min_rows: {inferred.min_rows}",
        "    columns:",
    ]
    for column in inferred.columns:
        lines += _column_lines(column, "      ")
    lines += [
        "# No features section: every column but the target is a feature, grouped by its type.",
        "model:",
        f"  # {task}: {inferred.reason}.",
        f"  estimator: {DEFAULT_ESTIMATOR[task]}",
        f"  params: {{random_state: {SEED}}}",
        "  # No gate yet, so the first model that trains is registered; once its metrics are",
        "  # known, fail weaker models with thresholds such as:",
        f"  # gate: {{metrics: {{{GATE_EXAMPLE[task]}}}}}",
    ]
    return "\n".join(lines) + "\n"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"--name {name!r}: use lower-case a-z, 0-9 and '-', start with a letter, "
            f"end with a letter or digit, at most {NAME_MAX} characters"
        )
    return name


def self_check(text: str, spec_path: Path) -> None:
    """The starter spec must validate; anything else is a bug here, not the user's problem."""
    from pydantic import ValidationError

    from mlops_compiler.spec.model import Spec
    from mlops_compiler.spec.rules import check

    try:
        findings = [message for _, message in check(Spec.model_validate(yaml.safe_load(text)))]
    except ValidationError as exc:
        findings = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    if findings:
        raise UsageError(
            f"{display_path(spec_path)}: the inferred spec does not validate "
            f"({'; '.join(findings)}); please report this"
        )


def write_spec(spec_path: Path, text: str, *, force: bool) -> None:
    """Write atomically; without `force` an existing file is never touched."""
    shown = display_path(spec_path)
    if spec_path.exists() and not force:
        raise UsageError(f"{shown}: already exists; pass --force to overwrite it")
    temporary = spec_path.with_name(f".{spec_path.name}.{os.getpid()}.tmp")
    try:
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        if not force and spec_path.exists():  # appeared while we worked: still never clobber
            raise UsageError(f"{shown}: already exists; pass --force to overwrite it")
        os.replace(temporary, spec_path)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise UsageError(f"{shown}: cannot write ({exc.strerror or exc}:{where})") from None
    finally:
        with contextlib.suppress(OSError):  # nothing to clean when the folder was never made
            temporary.unlink(missing_ok=True)


def init_spec(
    data: Path, target: str, *, name: str | None, spec_path: Path, force: bool
) -> tuple[Inferred, str]:
    """Infer, render, check and write the starter spec; returns what was found and the name."""
    chosen = check_name(name) if name is not None else derive_name(data.stem)
    if spec_path.is_dir():
        raise UsageError(f"{display_path(spec_path)}: is a folder; give --out a file name")
    if spec_path.exists() and not force:  # fail before a long scan, not after it
        raise UsageError(f"{display_path(spec_path)}: already exists; pass --force to overwrite it")
    if data.exists() and spec_path.resolve() == data.resolve():
        raise UsageError(f"{display_path(spec_path)}: is the data file; choose another --out")
    inferred = infer(data, target)
    text = render(inferred, chosen, spec_path)
    self_check(text, spec_path)
    write_spec(spec_path, text, force=force)
    return inferred, chosen

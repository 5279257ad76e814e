"""Stage 2: turn a loaded document into a `Spec`, or every problem with its position.

Warnings are said, never fatal: a training data file that is not there yet may well appear
later, fetched by CI or a pipeline step, so validation still succeeds. Each is printed to
stderr as it is found, positioned like an error:
`file:line:col: data.train: warning: data/churn.csv not found (...)`.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from mlops_compiler.errors import Diagnostic, SpecError, display_path
from mlops_compiler.load.yaml_positions import LoadedSpec
from mlops_compiler.spec import rules, store_rules
from mlops_compiler.spec.model import Spec
from mlops_compiler.spec.scalars import looks_secret

Loc = tuple[str | int, ...]


def print_warning(warning: Diagnostic) -> None:
    print(warning.format(), file=sys.stderr, flush=True)


def validate(loaded: LoadedSpec, warn: Callable[[Diagnostic], None] = print_warning) -> Spec:
    """The spec, or SpecError with every problem; each warning goes to `warn` (stderr)."""
    problems = list(loaded.problems)
    problems.extend(_secrets(loaded))
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(loaded.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(loaded, exc))
    if spec is not None:
        for warning in data_file_warnings(spec, loaded):
            warn(warning)
        findings = [*rules.check(spec), *store_rules.check(spec, loaded.path.parent)]
        problems.extend(loaded.diagnostic(loc, msg) for loc, msg in findings)
    if problems or spec is None:
        raise SpecError(_dedupe(problems))
    return spec


def data_file_warnings(spec: Spec, loaded: LoadedSpec) -> list[Diagnostic]:
    """A warning when the training data file is not there (yet).

    Only data.train: the build never reads it. A feature view's source stays an error
    (store_rules.py): the build reads its columns to decide where derived features are
    computed, so its output would differ without it. Late labels (monitors.labels.file)
    arrive after serving and draw nothing.
    """
    spec_dir = loaded.path.parent
    path = spec_dir / spec.data.train
    if path.exists():
        return []
    return [
        loaded.diagnostic(
            ("data", "train"),
            f"warning: {spec.data.train} not found ({display_path(path)}; it may appear "
            "later, e.g. in CI)",
            with_snippet=False,
        )
    ]


def _dedupe(problems: list[Diagnostic]) -> list[Diagnostic]:
    seen: dict[tuple[int, int, str, str], Diagnostic] = {}
    for p in problems:
        seen.setdefault((p.line, p.col, p.path, p.message), p)
    return list(seen.values())


def _walk_strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(v, (*loc, i))


def _secrets(loaded: LoadedSpec) -> Iterator[Diagnostic]:
    for loc, text in _walk_strings(loaded.data, ()):
        kind = looks_secret(text)
        if kind and loc != ("tracking", "uri"):  # that field reports it itself
            yield loaded.diagnostic(
                loc, f"looks like {kind}; keep secrets in environment variables (*_env fields)"
            )


def _document_loc(data: Any, loc: Loc) -> Loc:
    """Drop pydantic's union/validator tags: keep only steps that exist in the document."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - mypy narrows each branch
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif not (last and isinstance(node, dict)):
            continue
        out.append(part)
    return tuple(out)


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose fields live at `loc` in the document, if any."""
    current: Any = Spec
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _pydantic_problems(loaded: LoadedSpec, exc: ValidationError) -> Iterator[Diagnostic]:
    errors = [
        (err, _document_loc(loaded.data, tuple(err["loc"])))
        for err in exc.errors(include_url=False)
    ]
    # A misspelt required key shows up twice (unknown 'trian', missing 'train'); say it once.
    suggested: set[Loc] = set()
    for err, loc in errors:
        if err["type"] == "extra_forbidden":
            model = _model_at(loc[:-1])
            close = rules.close_match(str(loc[-1]), sorted(model.model_fields) if model else [])
            if close:
                suggested.add((*loc[:-1], close))
    for err, loc in errors:
        kind = err["type"]
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            options = sorted(model.model_fields) if model else []
            hint = rules.suggest(str(loc[-1]), options)
            if not hint and options:
                hint = f" (allowed: {', '.join(options)})"
            yield loaded.diagnostic(loc, f"unknown key {loc[-1]!r}{hint}", key=True)
        elif kind == "missing":
            if loc not in suggested:
                yield loaded.diagnostic(
                    loc, f"missing required key {loc[-1]!r}", key=True, at=loc[:-1]
                )
        elif kind == "string_pattern_mismatch" and _description(loc):
            yield loaded.diagnostic(loc, f"{_description(loc)}{_given(err)}")
        elif kind == "literal_error":
            options = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            given = err.get("input")
            hint = rules.suggest(str(given), options) if isinstance(given, str) else ""
            yield loaded.diagnostic(
                loc, f"{given!r} is not one of {', '.join(map(repr, options))}{hint}"
            )
        elif kind == "value_error":
            yield loaded.diagnostic(loc, str(err["msg"]).removeprefix("Value error, "))
        else:
            yield loaded.diagnostic(loc, _lower_first(str(err["msg"])) + _given(err))


def _description(loc: Loc) -> str:
    """The field's own description of its syntax, which reads better than a regex."""
    model = _model_at(loc[:-1]) if loc else None
    info = model.model_fields.get(str(loc[-1])) if model else None
    return (info.description or "") if info else ""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _given(err: Any) -> str:
    value = err.get("input")
    if isinstance(value, dict | list) or value is None:
        return f" (got {type(value).__name__})" if value is not None else " (got null)"
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"

"""`python -m mlops_runtime rollback [--to VERSION] [--reason TEXT]` and
`python -m mlops_runtime history [--json]`.

rollback: the previous good model serves again (tracking/registry_versions.py at level 1 and
above, tracking/local_versions.py at level 0). Exit codes: 0 rolled back; 5 refused, nothing
changed (no good version to go back to, or --to names one that is not good: the message says
why); 2 usage or configuration error.

history: the serving history, oldest first, as a table, or with --json as one JSON document:
{"model": <registered model name>, "entries": [<history record>, ...]} (docs/rollback.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_runtime.config import ProjectConfig
from mlops_runtime.project import Project, ProjectError
from mlops_runtime.tracking import serving_history as history

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 5


def _rollback_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops_runtime rollback")
    parser.add_argument("--to", help="the version to serve again (default: the previous good one)")
    parser.add_argument("--reason", default="", help="why, recorded in the serving history")
    return parser


def model_name(config: ProjectConfig | Mapping[str, Any]) -> str:
    """The registered model's name (`config`: the project's settings, or config.json as read)."""
    settings = config if isinstance(config, ProjectConfig) else ProjectConfig.from_json(config)
    return settings.tracking.registered_model


def roll_back(
    project: Project,
    *,
    why: Mapping[str, Any],
    by: str,
    to: str | None = None,
    expect_from: str | None = None,
) -> Any:
    """The project's rollback, wherever its model lives; raises RollbackRefused."""
    config, settings = project.config, project.settings
    if settings.serving.model_source != "registry":
        from mlops_runtime.tracking import local_versions

        return local_versions.rollback(project.root, config, why=why, by=by, to=to)
    from mlops_runtime.tracking import registry_versions
    from mlops_runtime.tracking.store import absolute_uri, connect, resolve_tracking_uri

    uri = absolute_uri(resolve_tracking_uri(config), project.root)
    return registry_versions.rollback(
        connect(config, uri=uri),
        model_name(settings),
        history.history_path(project.root, config),
        keep=settings.rollback.keep_versions,
        why=why,
        by=by,
        to=to,
        expect_from=expect_from,
    )


def rollback_main(argv: list[str], project: Project) -> int:
    from mlops_runtime.tracking.registry_versions import RollbackRefused

    args = _rollback_parser().parse_args(argv)
    try:
        name = project.settings.name
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    why = {"trigger": "manual", "reason": args.reason} if args.reason else {"trigger": "manual"}
    try:
        change = roll_back(project, why=why, by=history.actor(), to=args.to)
    except RollbackRefused as refused:
        print(f"{name}: rollback refused: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    entry = change.entry
    print(f"{name}: rolled back from {entry['from']} to {entry['to']}")
    return EXIT_OK


def history_main(argv: list[str], project: Project) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_runtime history")
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON document instead of a table: {"model": NAME, "entries": [...]}',
    )
    args = parser.parse_args(argv)
    entries = history.read(history.history_path(project.root, project.config))
    if args.json:
        try:
            name = model_name(project.settings)
        except ProjectError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        document = {"model": name, "entries": entries}
        print(json.dumps(document, indent=1, sort_keys=True, default=str))
        return EXIT_OK
    print(table(entries) if entries else "no change of the serving model recorded yet")
    return EXIT_OK


def describe_why(why: Mapping[str, Any]) -> str:
    parts = []
    for key in ("trigger", "reason", "observed", "refused", "trained"):
        if key in why and why[key] not in ("", None):
            value = why[key]
            parts.append(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")
    return "; ".join(parts)[:160]


def table(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = [("when", "event", "alias", "from", "to", "by", "why")]
    for e in entries:
        rows.append(
            (
                str(e.get("when", "")),
                str(e.get("event", "")),
                str(e.get("alias", "")),
                str(e.get("from") or "-"),
                str(e.get("to") or "-"),
                str(e.get("by", "")),
                describe_why(e.get("why") or {}),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )

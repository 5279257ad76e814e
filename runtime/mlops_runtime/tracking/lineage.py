"""Lineage of a registered model version: python -m mlops_runtime.tracking.lineage [REF] [--json]

REF is an alias (default: champion) or a version number. Everything printed comes from the
tracking server / registry (version tags and the version's run), not from local files, so it
answers "what exactly is serving?" from any machine that can reach the registry.

Exit codes: 0 found, 2 no such model, version or alias.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_runtime.tracking.registry import (
    CHAMPION,
    METRIC_TAG_PREFIX,
    resolve_version,
    version_metrics,
)
from mlops_runtime.tracking.store import MODEL_SHA256_TAG, SERIALIZATION_TAG, connect

EXIT_OK = 0
EXIT_NOT_FOUND = 2
FEATURE_VIEW_TAG = "mlops.feature_view."


def lineage(client: MlflowClient, name: str, ref: str = CHAMPION) -> dict[str, Any]:
    """Everything the registry knows about one version; raises LookupError if it does not exist."""
    version = resolve_version(client, name, ref)
    tags = dict(version.tags or {})
    params: dict[str, str] = {}
    if version.run_id:
        try:
            params = dict(client.get_run(version.run_id).data.params)
        except MlflowException:
            params = {}
    registered = client.get_registered_model(name)
    aliases = sorted(
        a for a, v in (registered.aliases or {}).items() if str(v) == str(version.version)
    )
    return {
        "model": name,
        "version": str(version.version),
        "aliases": aliases,
        "run_id": version.run_id or tags.get("mlops.run_id"),
        "data_sha256": tags.get("mlops.data_sha256"),
        "data_rows": _int(tags.get("mlops.data_rows")),
        "data_path": tags.get("mlops.data_path"),
        "spec_sha256": tags.get("mlops.spec_sha256"),
        "git_commit": tags.get("mlops.git_commit"),
        "compiler_version": tags.get("mlops.compiler_version"),
        "estimator": tags.get("mlops.estimator"),
        "seed": _int(tags.get("mlops.seed")),
        "model_sha256": tags.get(MODEL_SHA256_TAG),
        "serialization": tags.get(SERIALIZATION_TAG),
        "feature_views": {
            k.removeprefix(FEATURE_VIEW_TAG): v
            for k, v in sorted(tags.items())
            if k.startswith(FEATURE_VIEW_TAG)
        },
        "metrics": version_metrics(client, version),
        "params": {k: v for k, v in sorted(params.items()) if not k.startswith("mlops.")},
        "created_at_ms": version.creation_timestamp,
        "tags": {k: v for k, v in sorted(tags.items()) if not k.startswith(METRIC_TAG_PREFIX)},
    }


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def render(info: Mapping[str, Any]) -> str:
    aliases = ", ".join(info["aliases"]) or "none"
    rows = [
        ("model", f"{info['model']} version {info['version']} (aliases: {aliases})"),
        ("run id", info["run_id"] or "unknown"),
        (
            "data",
            f"sha256 {info['data_sha256'] or 'unknown'} ({info['data_rows']} rows, {info['data_path']})",
        ),
        ("spec", f"sha256 {info['spec_sha256'] or 'unknown'}"),
        (
            "code",
            f"git commit {info['git_commit']}"
            if info["git_commit"]
            else "git commit unknown (not a git checkout)",
        ),
        ("compiler", info["compiler_version"] or "unknown"),
        ("estimator", f"{info['estimator']} (seed {info['seed']})"),
        (
            "artifact",
            f"sha256 {info['model_sha256']} ({info['serialization'] or 'unknown'})"
            if info["model_sha256"]
            else "sha256 unknown (registered without one: servers refuse to load it)",
        ),
        (
            "metrics",
            "  ".join(f"{k}={v:.4f}" for k, v in sorted(info["metrics"].items())) or "none",
        ),
    ]
    rows.extend(
        ("feature view", f"{name}: {value}") for name, value in info["feature_views"].items()
    )
    lines = [f"{label:<10} {value}" for label, value in rows]
    lines.append("params")
    lines.extend(f"  {k} = {v}" for k, v in info["params"].items())
    return "\n".join(lines)


def main(argv: list[str], config: Mapping[str, Any]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_runtime lineage", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "ref", nargs="?", default=CHAMPION, help="alias or version number (default: champion)"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    client = connect(config)
    name = config.get("tracking", {}).get("registered_model") or config["name"]
    try:
        info = lineage(client, name, args.ref)
    except LookupError as exc:
        print(f"lineage: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(json.dumps(info, indent=2, sort_keys=True) if args.json else render(info))
    return EXIT_OK

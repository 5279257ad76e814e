"""`features-apply` and `features-materialize`: the feature store's two stages.

    python -m mlops_runtime features-apply
    python -m mlops_runtime features-materialize [--end TIME] [--start TIME]

Both first write each view's offline table from its source (typed and checked by the
contract, derived features computed). features-apply then registers the definitions of
feature_repo/definitions.py (`feast apply`). features-materialize loads the online store:
incrementally from where the last run stopped up to --end (default: now), or the interval
--start..--end. Exit codes: 0 done; 2 usage; 3 a source broke the contract
(reports/contract_report.json says why; the offline tables and the online store are unchanged).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from mlops_runtime.contract.report import ContractViolation
from mlops_runtime.features.store import offline, registry
from mlops_runtime.features.store.freshness import repo_path
from mlops_runtime.project import Project

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONTRACT = 3


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _prepare(project: Project) -> list[int] | None:
    try:
        return offline.prepare_all(project.config, project.contract, project.root)
    except ContractViolation as violation:
        print(f"{project.config['name']}: {violation}", file=sys.stderr)
        print(f"report: {violation.report_path}", file=sys.stderr)
        return None


def apply_main(argv: list[str], project: Project) -> int:
    argparse.ArgumentParser(prog="features-apply").parse_args(argv)
    counts = _prepare(project)
    if counts is None:
        return EXIT_CONTRACT
    registry.apply(repo_path(project.config, project.root))
    views = project.config["feature_store"]["views"]
    for view, rows in zip(views, counts, strict=True):
        print(f"view {view['name']}: {rows} rows, {len(view['features'])} features")
    return EXIT_OK


def materialize_main(argv: list[str], project: Project) -> int:
    parser = argparse.ArgumentParser(prog="features-materialize")
    parser.add_argument("--end", type=_moment, help="ISO time (default: now)")
    parser.add_argument("--start", type=_moment, help="ISO time: materialise this interval")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    if _prepare(project) is None:
        return EXIT_CONTRACT
    store = offline.open_store(project.config, project.root)
    registry.ensure_applied(store, project.config)
    end = args.end or datetime.now(UTC)
    if args.start is not None:
        store.materialize(start_date=args.start, end_date=end)
    else:
        store.materialize_incremental(end_date=end)
    print(f"{project.config['name']}: online store loaded up to {end.isoformat()}")
    return EXIT_OK

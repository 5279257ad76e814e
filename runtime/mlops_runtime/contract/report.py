"""The data-contract report: one JSON document per validation, written whether it passes or not.

Kept free of pandera so the level-0 script and the serving door can raise and read the same
`ContractViolation` without importing the validation library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT_PATH = Path("reports") / "contract_report.json"
MAX_EXAMPLES = 5
MAX_EXAMPLE_ROWS = 3


class ContractViolation(Exception):
    """The data broke its contract; `report` says how, `report_path` where it was written."""

    def __init__(self, report: dict[str, Any], report_path: Path | None = None) -> None:
        self.report = report
        self.report_path = report_path
        super().__init__(summarize(report))


def jsonable(value: Any) -> Any:
    """Plain JSON value for a cell or statistic (NaN and pandas NA become null)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return None
        # JSON has no infinity; keep it visible as text rather than losing it.
        return number if math.isfinite(number) else str(number)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    return str(value)


def failure(
    check: str,
    column: str | None,
    message: str,
    *,
    count: int = 1,
    examples: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "check": check,
        "column": column,
        "count": int(count),
        "message": message,
        "examples": [jsonable(dict(e)) for e in list(examples)[:MAX_EXAMPLES]],
    }


def build_contract_report(
    *,
    source: str,
    rows: int | None,
    columns: Sequence[str],
    failures: Sequence[dict[str, Any]],
    example_rows: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The data contract's verdict on one dataset (reports/contract_report.json): every failed
    check, sorted, and a few example rows."""
    ordered = sorted(failures, key=lambda f: (f["column"] or "", f["check"]))
    return {
        "ok": not ordered,
        "source": source,
        "rows": rows,
        "columns": list(columns),
        "failed_checks": len(ordered),
        "failed_values": sum(f["count"] for f in ordered),
        "failures": ordered,
        "example_rows": [jsonable(dict(r)) for r in list(example_rows)[:MAX_EXAMPLE_ROWS]],
    }


def write_report(report: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write under the cwd (the generated project root) unless told otherwise."""
    target = Path.cwd() / REPORT_PATH if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return target


def summarize(report: Mapping[str, Any], limit: int = 10) -> str:
    if report.get("ok"):
        return f"data contract passed ({report.get('rows')} rows)"
    lines = [
        f"data contract failed: {report.get('failed_checks')} check(s) on {report.get('source')}"
    ]
    for item in list(report.get("failures", []))[:limit]:
        where = f"column {item['column']!r}" if item["column"] else "table"
        lines.append(f"  - {where}: {item['check']} x{item['count']}: {item['message']}")
    hidden = len(report.get("failures", [])) - limit
    if hidden > 0:
        lines.append(f"  ... and {hidden} more (see the JSON report)")
    return "\n".join(lines)

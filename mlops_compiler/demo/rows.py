"""The rows the demo sends, the labels that arrive late, and the two ways the world goes wrong.

Plain `csv` and `statistics`: the compiler's environment has no pandas. Values are typed by
the project's contract.json, as a client that read the contract would send them.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_compiler.errors import UsageError

MISSING = ("", "NA", "NaN", "nan", "null", "None")
# The share of rows whose label a worse model learns wrong (the largest values of one feature).
CORRUPTED_SHARE = 0.15
SEED = 20


@dataclass(frozen=True)
class Table:
    """A CSV file as text cells, and the contract that types them."""

    header: tuple[str, ...]
    rows: tuple[Mapping[str, str], ...]
    columns: Mapping[str, Mapping[str, Any]]
    target: str

    @property
    def features(self) -> list[str]:
        return [c for c in self.header if c != self.target and c in self.columns]

    def numeric(self) -> list[str]:
        return [c for c in self.features if self.columns[c]["type"] in ("int", "float")]

    def record(self, row: Mapping[str, str]) -> dict[str, Any]:
        return {c: typed(row.get(c, ""), self.columns[c]["type"]) for c in self.features}

    def records(self) -> list[dict[str, Any]]:
        return [self.record(r) for r in self.rows]

    def truth(self, index: int) -> str:
        return self.rows[index][self.target]


def typed(text: str, kind: str) -> Any:
    if text in MISSING:
        return None
    if kind == "int":
        return int(float(text))
    if kind == "float":
        return float(text)
    if kind == "bool":
        return text.strip().lower() in ("1", "true", "yes", "t", "y")
    return text


def read_table(path: Path, contract_path: Path, target: str) -> Table:
    if path.suffix.lower() != ".csv":
        raise UsageError(f"mlops demo reads CSV training data; {path} is not a .csv file")
    if not path.is_file():
        raise UsageError(f"training data not found: {path}")
    contract = json.loads(contract_path.read_text(encoding="utf-8"))
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = tuple(reader.fieldnames or ())
    # Files are often sorted; requests in file order would look like drift to the monitor.
    random.Random(SEED).shuffle(rows)
    if not rows:
        raise UsageError(f"{path} has no rows")
    return Table(header, tuple(rows), contract["columns"], target)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Mapping[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _values(table: Table, column: str) -> list[float]:
    return [float(r[column]) for r in table.rows if r[column] not in MISSING]


def corrupted(table: Table, path: Path) -> tuple[Path, str]:
    """A training set whose labels are wrong for the rows with the largest values of one
    feature: a model fitted to it passes its gate on its own (equally wrong) held-out split,
    and fails on the true labels that arrive late. Returns the file and the feature."""
    numeric = table.numeric()
    if not numeric:
        raise UsageError("mlops demo needs a numeric feature to make a worse model from")
    # The widest feature: a threshold on it is a rule a model learns exactly, so the worse
    # model scores as well as the champion on its own (equally wrong) held-out split.
    feature = max(numeric, key=lambda c: statistics.pstdev(_values(table, c) or [0.0]))
    values = sorted(_values(table, feature))
    cut = values[int((1 - CORRUPTED_SHARE) * (len(values) - 1))]
    rule = table.columns[table.target]
    classes = [str(v) for v in rule.get("values") or []] or sorted(
        {r[table.target] for r in table.rows}
    )
    out = []
    for row in table.rows:
        new = dict(row)
        cell = row[feature]
        if cell not in MISSING and float(cell) > cut:
            new[table.target] = _wrong(row[table.target], classes, rule["type"], table)
        out.append(new)
    return write_csv(path, table.header, out), feature


def _wrong(label: str, classes: list[str], kind: str, table: Table) -> str:
    if kind in ("int", "float"):  # regression: a systematic error of two standard deviations
        sd = statistics.pstdev(_values(table, table.target)) or 1.0
        value = float(label) + 2 * sd
        return str(round(value)) if kind == "int" else repr(value)
    if kind == "bool":
        return "false" if label.strip().lower() in ("1", "true", "yes", "t", "y") else "true"
    if label in classes and len(classes) > 1:
        return classes[(classes.index(label) + 1) % len(classes)]
    return label


def shifted(table: Table) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The same population one standard deviation further along every numeric feature,
    inside the contract's bounds: the requests of a world that moved, and the training rows
    (with their true labels) that describe it."""
    moves = {}
    for column in table.numeric():
        values = _values(table, column)
        moves[column] = statistics.pstdev(values) if len(values) > 1 else 1.0
    rows = []
    for row in table.rows:
        new = dict(row)
        for column, move in moves.items():
            if row[column] not in MISSING:
                new[column] = _bounded(float(row[column]) + move, table.columns[column])
        rows.append(new)
    return [table.record(r) for r in rows], rows


def _bounded(value: float, rule: Mapping[str, Any]) -> str:
    if rule.get("min") is not None:
        value = max(value, float(rule["min"]))
    if rule.get("max") is not None:
        value = min(value, float(rule["max"]))
    return str(round(value)) if rule["type"] == "int" else repr(value)


def write_labels(
    path: Path, join_key: str, target: str, labelled: Iterable[tuple[str, str]]
) -> Path:
    """Late labels as a labelling team delivers them: the request id each answer carried
    (X-Request-ID) and the true value."""
    return write_csv(
        path, [join_key, target], ({join_key: rid, target: truth} for rid, truth in labelled)
    )

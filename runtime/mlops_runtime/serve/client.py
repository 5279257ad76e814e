"""Predict stage: python -m mlops_runtime predict --file ROWS [--url URL] [--batch-size N]

Sends the rows of a CSV, Parquet, JSON (one record or an array of records) or JSON-lines file
to a running server's /predict, in batches, and prints one JSON line per row: its position,
the prediction (and probabilities), the model version and the request id that answered it.
A label column in the file is left out of the request. Plain urllib: nothing to install.

Exit codes: 0 every row predicted; 1 some rows refused (their errors on stderr, naming the
field); 2 usage: no such file, unreadable rows, no server at the URL.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops_runtime.project import Project

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
JSON_SUFFIXES = (".json",)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class ClientError(Exception):
    """Input the stage cannot send: a usage error."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops_runtime predict")
    parser.add_argument("--file", type=Path, required=True, help="CSV, Parquet, JSON or JSONL")
    parser.add_argument("--url", help="the server (default http://HOST:PORT of serving)")
    parser.add_argument("--batch-size", type=int, default=100, help="records per request")
    return parser


def read_records(path: Path, contract: Mapping[str, Any], target: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ClientError(f"not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in JSON_SUFFIXES:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            records = loaded if isinstance(loaded, list) else [loaded]
        elif suffix in JSON_LINES_SUFFIXES:
            lines = path.read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
        else:
            records = _table_records(path, contract)
    except (ValueError, OSError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    if not all(isinstance(r, dict) for r in records):
        raise ClientError(f"{path}: every row must be a JSON object of column: value")
    return [{k: v for k, v in r.items() if k != target} for r in records]


def _table_records(path: Path, contract: Mapping[str, Any]) -> list[dict[str, Any]]:
    from mlops_runtime.data import read_table

    frame = read_table(path, contract)
    ints = {n for n, rule in contract.get("columns", {}).items() if rule["type"] == "int"}
    out = []
    for row in frame.to_dict(orient="records"):
        record = {}
        for key, value in row.items():
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif key in ints and isinstance(value, float) and value.is_integer():
                value = int(value)  # a column with nulls reads as floats
            record[str(key)] = value
        out.append(record)
    return out


def _batches(records: Sequence[dict[str, Any]], size: int) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(records), size):
        yield start, list(records[start : start + size])


def _post(url: str, body: list[dict[str, Any]]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + "/predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return int(exc.code), json.loads(text)
        except ValueError:
            return int(exc.code), {"detail": text}


def answer_lines(start: int, answer: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    probabilities = answer.get("probabilities")
    for i, prediction in enumerate(answer.get("predictions") or []):
        line = {
            "row": start + i,
            "prediction": prediction,
            "model_version": answer.get("model_version"),
            "request_id": answer.get("request_id"),
        }
        if probabilities is not None:
            line["probabilities"] = probabilities[i]
        yield line


def _refusal(status: int, detail: Any, start: int, size: int) -> str:
    """The server's error for one batch; its record indexes count from the batch's first row."""
    text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
    return f"error: rows {start}-{start + size - 1} (batch from row {start}): {status}: {text}"


def main(argv: list[str], project: Project) -> int:
    from mlops_runtime.serve.stage import listen_address

    args = _parser().parse_args(argv)
    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    target = str(project.config["data"]["target"])
    try:
        records = read_records(args.file, project.contract, target)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host, port = listen_address(project.config)
    url = (args.url or f"http://{host}:{port}").rstrip("/")
    refused = 0
    for start, batch in _batches(records, args.batch_size):
        try:
            status, answer = _post(url, batch)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            print(
                f"error: no server answers at {url} ({reason}): start one with "
                "`python -m mlops_runtime serve` (or `mlops run SPEC serve`)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if status != 200:
            refused += len(batch)
            detail = answer.get("detail", answer) if isinstance(answer, dict) else answer
            print(_refusal(status, detail, start, len(batch)), file=sys.stderr)
            continue
        for line in answer_lines(start, answer):
            print(json.dumps(line, sort_keys=True))
    if refused:
        print(f"{refused} of {len(records)} rows refused", file=sys.stderr)
        return EXIT_REFUSED
    print(f"{len(records)} rows predicted by {url}", file=sys.stderr)
    return EXIT_OK

"""Hostile prediction-log lines: the monitor's reader counts every line that is not a record as
corrupt, keeps every record of the same file, and never raises.

A record is a JSON object whose `ts` is an ISO 8601 time and whose known fields have the types
the serving app writes (serve/prediction_log.py); anything else on a line is counted under
`corrupt_log_lines` and the rest of the window is still judged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlops_runtime import sketches
from mlops_runtime.monitor import labels
from mlops_runtime.monitor.prediction_window import (
    WindowScan,
    choose_window,
    log_files,
    parse_record,
    partitions,
)
from mlops_runtime.monitor.window_summary import WindowSummary


def record(i: int, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "request_id": f"r{i}",
        "row": 0,
        "ts": f"2026-12-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
        "model": "m",
        "model_version": "1",
        "run_id": "run",
        "arm": "champion",
        "endpoint": "/predict",
        "latency_ms": 1.5,
        "inputs": {"x": 0.5 + i, "c": "a"},
        "output": {"prediction": i % 2, "probabilities": [0.25, 0.75]},
    }
    out.update(fields)
    return out


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


# A reference profile's sketches, so a window's values are also binned against them (the
# drift checks' input) whatever a line put in them.
REFERENCE = {
    "features": {
        "x": {"sketch": sketches.reference_numeric(np.linspace(0.0, 50.0, 200))},
        "c": {"sketch": sketches.reference_categorical(np.array(["a", "b"] * 50, dtype=object))},
    },
    "predictions": {
        "sketch": sketches.reference_categorical(np.array(["0", "1"] * 50, dtype=object))
    },
}
PREDICTIONS = {
    "classification": REFERENCE["predictions"],
    "regression": {"sketch": sketches.reference_numeric(np.linspace(-1.0, 1.0, 100))},
}


def summarise(
    scan: WindowScan, start: float = 0.0, end: float = 4e9, task: str = "classification"
) -> WindowSummary:
    summary = WindowSummary(
        task=task,
        features=["x", "c"],
        categorical={"c"},
        contract={
            "columns": {
                "x": {"type": "float", "min": 0},
                "c": {"type": "category", "values": ["a", "b"]},
            }
        },
        reference={**REFERENCE, "predictions": PREDICTIONS[task]},
        keep_values={"x"},
        keep_pairs=True,
    )
    for part in partitions(scan, start, end):
        summary.add(part)
    return summary


def read_lines(folder: Path, lines: list[bytes], *, records: int | None = 10**9) -> WindowScan:
    """The window over one file of `lines`: its newest `records`, or (None) the last 100 years."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions-1.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    scan = WindowScan()
    duration = None if records is not None else 100 * 365 * 86400.0
    choose_window(log_files(folder), scan, duration_s=duration, records=records, end=4e9)
    return scan


# The lines of the red-team finding, and their neighbours: each one sat among good records
# and took the whole monitor run down with it, or dropped its whole file.
HOSTILE = {
    "json-list": b"[1,2,3]",
    "json-string": b'"str"',
    "json-null": b"null",
    "json-number": b"5",
    "ts-not-a-time": encode(record(90, ts="yesterday")),
    "ts-a-number": encode(record(90, ts=12345)),
    "ts-null": encode(record(90, ts=None)),
    "ts-absent": encode({k: v for k, v in record(90).items() if k != "ts"}),
    "status-string": encode(record(90, status="bad")),
    "status-bool": encode(record(90, status=True)),
    "status-out-of-range": encode(record(90, status=7000)),
    "key-0xff": b'{"request_id": "r90", "\xff": 1, "ts": "2026-12-01T10:01:30Z"}',
    "value-0xff": b'{"request_id": "r\xff", "ts": "2026-12-01T10:01:30Z"}',
    "input-key-0xff": b'{"ts": "2026-12-01T10:01:30Z", "inputs": {"\xff": 1}}',
    "nested-key-0xff": b'{"ts": "2026-12-01T10:01:30Z", "extra": [{"a": {"\xff": 1}}]}',
    "row-string": encode(record(90, row="a")),
    "latency-string": encode(record(90, latency_ms="fast")),
    "version-object": encode(record(90, model_version={"a": 1})),
    "inputs-list": encode(record(90, inputs=[1, 2])),
    "output-string": encode(record(90, output="x")),
    "probabilities-string": encode(record(90, output={"prediction": 1, "probabilities": "x"})),
    "probabilities-text": encode(record(90, output={"prediction": 1, "probabilities": ["a"]})),
    "cut-off": b'{"request_id": "x", "ts": "2026-',
}


@pytest.mark.parametrize("bad", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_line_that_is_no_record_is_counted_and_the_rest_judged(
    tmp_path: Path, bad: bytes
) -> None:
    good = [encode(record(i)) for i in range(40)]
    scan = read_lines(tmp_path / "log", [*good[:20], bad, *good[20:]])

    summary = summarise(scan)

    assert scan.corrupt_lines == 1 and scan.corrupt_files == []
    assert summary.rows == 40 and summary.requests == 40
    assert summary.classes == {"0": 20, "1": 20}
    assert parse_record(bad) is None


def test_corrupt_lines_are_counted_once_however_often_the_file_is_read(tmp_path: Path) -> None:
    """Choosing a window of the newest N records reads each file once for its timestamps and
    again for its rows: one bad line is still one."""
    lines = [encode(record(i)) for i in range(10)] + [b"[1,2,3]", b"null"]
    scan = read_lines(tmp_path / "log", lines, records=5)

    summary = summarise(scan, scan.start or 0.0, scan.end or 4e9)

    assert scan.corrupt_lines == 2 and summary.rows == 5


def test_records_without_the_optional_fields_are_read(tmp_path: Path) -> None:
    """Only `ts` places a record in the window; a log of bare records (a hand-written one, an
    older writer) is judged, not dropped."""
    lines = [encode({"ts": f"2026-12-01T10:00:{i:02d}Z", "status": 500}) for i in range(3)]
    lines += [encode({"ts": "2026-12-01T10:01:00Z"})]
    scan = read_lines(tmp_path / "log", lines)

    summary = summarise(scan)

    # Three failures without a request id are three failed requests, not one.
    assert scan.corrupt_lines == 0 and summary.rows == 1 and summary.errors == 3


def test_ragged_probabilities_do_not_stop_the_window(tmp_path: Path) -> None:
    lines = [encode(record(i)) for i in range(5)]
    lines.append(encode(record(5, output={"prediction": 1, "probabilities": [1.0]})))
    scan = read_lines(tmp_path / "log", lines)

    summary = summarise(scan)

    assert summary.rows == 6 and scan.corrupt_lines == 0
    frame = summary.labelled_frame()
    assert frame is not None and np.isnan(frame["proba_0"].iloc[5])
    assert frame["proba_1"].iloc[:5].tolist() == [0.75] * 5


def test_a_parquet_file_of_wrong_types_is_a_corrupt_file(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    table = pa.table(
        {
            "request_id": ["a", "b"],
            "ts": ["2026-12-01T10:00:00Z", "2026-12-01T10:00:01Z"],
            "status": ["ok", "bad"],
        }
    )
    pq.write_table(table, folder / "predictions-2.parquet")
    (folder / "predictions-1.jsonl").write_bytes(encode(record(0)) + b"\n")
    scan = WindowScan()
    choose_window(log_files(folder), scan, duration_s=4e9, records=None, end=4e9)

    summary = summarise(scan)

    assert summary.rows == 1
    (bad,) = scan.corrupt_files
    assert bad.startswith("predictions-2.parquet: ")


# Values JSON can carry, nested: what a client, a bug or an attacker can put on a line.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# The spellings of a time the reader takes: UTC as Z or as an offset, another offset, no zone
# (read as UTC), with or without fractions of a second.
TIMES = st.builds(
    lambda s, zone, fraction: (
        f"2026-12-01T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{fraction}{zone}"
    ),
    st.integers(0, 86399),
    st.sampled_from(["Z", "+00:00", "+02:00", ""]),
    st.sampled_from(["", ".5", ".123456"]),
)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()


@st.composite
def good_records(draw: st.DrawFn) -> bytes:
    """A record as the server writes it, with the spread of values the serving door lets in
    (any scalar per input, text or numbers for a prediction, any number of probabilities)."""
    width = draw(st.sampled_from([0, 2]))
    output: dict[str, Any] = {"prediction": draw(SCALAR)}
    if width:
        output["probabilities"] = draw(st.lists(st.floats(0, 1), min_size=2, max_size=2))
    fields: dict[str, Any] = {
        "request_id": draw(st.text(max_size=8)),
        "row": draw(st.integers(0, 2**40)),
        "ts": draw(TIMES),
        "model_version": draw(st.sampled_from(["1", "2"])),
        "run_id": draw(st.none() | st.text(max_size=8)),
        "endpoint": "/predict",
        "latency_ms": draw(st.floats(0, 1e6) | st.integers(0, 10**6)),
        "inputs": draw(st.dictionaries(st.sampled_from(["x", "c", "k"]), JSON, max_size=3)),
        "output": output,
        "extra": draw(JSON),  # a field the monitor does not read is the writer's business
    }
    status = draw(st.none() | st.sampled_from([200, 400, 413, 422, 500, 503]))
    if status is not None:
        fields["status"] = status
    keep = draw(st.sets(st.sampled_from(sorted(fields)), max_size=3))
    return encode({k: v for k, v in fields.items() if k == "ts" or k not in keep})


WRONG_TYPES: dict[str, Any] = {
    "ts": st.none() | st.integers() | st.floats() | st.text().filter(lambda t: not _iso(t)) | JSON,
    "status": st.text()
    | st.booleans()
    | st.floats()
    | st.integers().filter(lambda s: not 100 <= s <= 599),
    "row": st.text() | st.floats() | st.booleans() | st.lists(JSON, max_size=2),
    "latency_ms": st.text() | st.booleans() | st.lists(JSON, max_size=2),
    "request_id": st.integers() | st.floats() | st.booleans() | st.lists(JSON, max_size=2),
    "model_version": st.integers() | st.lists(JSON, max_size=2) | st.dictionaries(st.text(), JSON),
    "inputs": st.text() | st.integers() | st.lists(JSON, max_size=2),
    "output": st.text() | st.integers() | st.lists(JSON, max_size=2),
}


def _iso(text: str) -> bool:
    return parse_record(encode({"ts": text})) is not None


@st.composite
def wrong_typed_records(draw: st.DrawFn) -> bytes:
    field = draw(st.sampled_from(sorted(WRONG_TYPES)))
    value = draw(WRONG_TYPES[field])
    if field == "ts" and isinstance(value, str):
        assume(not _iso(value))
    if field in ("row", "request_id", "model_version") and value is None:
        assume(False)
    return encode(record(0, **{field: value}))


def _not_a_record(raw: bytes) -> bool:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.strip() != b""
    return not isinstance(value, dict)


NOT_RECORDS = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")).filter(_not_a_record),
    JSON.filter(lambda v: not isinstance(v, dict)).map(encode),
    st.just(b'{"\xff": 1, "ts": "2026-12-01T10:00:00Z"}'),
    st.just(b'{"ts": "2026-12-01T10:00:00Z", "inputs": {"x": 1, "\xff": 2}}'),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.tuples(st.sampled_from(["record", "wrong", "junk"]), st.data()), min_size=1, max_size=12
    ),
    records_window=st.booleans(),
    task=st.sampled_from(["classification", "regression"]),
)
def test_any_line_is_counted_never_raised(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[tuple[str, st.DataObject]],
    records_window: bool,
    task: str,
) -> None:
    drawn: list[tuple[str, bytes]] = []
    for kind, data in lines:
        strategy = {"record": good_records(), "wrong": wrong_typed_records(), "junk": NOT_RECORDS}
        drawn.append((kind, data.draw(strategy[kind])))
    folder = tmp_path_factory.mktemp("log")

    scan = read_lines(folder, [raw for _, raw in drawn], records=10**9 if records_window else None)
    summary = summarise(scan, task=task)

    good = [raw for kind, raw in drawn if kind == "record"]
    assert scan.corrupt_files == []
    assert scan.corrupt_lines == len(drawn) - len(good)
    statuses = [json.loads(raw).get("status") or 200 for raw in good]
    assert summary.rows == sum(1 for s in statuses if s < 400)
    served = [p for p in partitions(scan, 0.0, 4e9)]
    assert sum(p.rows for p in served) == len(good)
    parsed = [parse_record(raw) for raw in good]
    assert all(p is not None for p in parsed)
    if good:  # the same instant, whichever path read the file
        assert summary.start == min(p["ts"] for p in parsed if p is not None) / 1e6
    for kind, raw in drawn:
        if kind != "record":
            assert parse_record(raw) is None, raw
    latencies = np.concatenate(summary.latencies) if summary.latencies else np.empty(0)
    assert all(math.isnan(v) or v >= 0 for v in latencies)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-12-01T10:00:{s:02d}.000000Z",
        "2026-12-01T10:00:{s:02d}+00:00",
        "2026-12-01T12:00:{s:02d}+02:00",
    ],
)
def test_the_columnar_and_the_line_reader_agree(tmp_path: Path, stamp: str) -> None:
    """A clean file goes through Arrow's reader, the same file with one bad line through the
    gate line by line: the same records, at the same instants."""
    lines = [encode(record(i, ts=stamp.format(s=i))) for i in range(10)]
    clean = read_lines(tmp_path / "clean", lines)
    dirty = read_lines(tmp_path / "dirty", [*lines, b"null"])

    fast, slow = summarise(clean), summarise(dirty)

    assert (clean.corrupt_lines, dirty.corrupt_lines) == (0, 1)
    assert fast.start == slow.start == 1_796_119_200.0  # 2026-12-01T10:00:00Z
    assert fast.end == slow.end == 1_796_119_209.0
    assert fast.rows == slow.rows == 10 and fast.classes == slow.classes
    fast_pairs, slow_pairs = fast.labelled_frame(), slow.labelled_frame()
    assert fast_pairs is not None and slow_pairs is not None
    assert fast_pairs.equals(slow_pairs)


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\x00garbage\n\x00\x01", b"request_id,malignant\nr\xff,1\n", b"PAR1xxxx"],
    ids=["empty", "binary", "not-utf8", "not-parquet"],
)
def test_an_unreadable_labels_file_is_a_problem(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / ("labels.parquet" if content.startswith(b"PAR1") else "labels.csv")
    path.write_bytes(content)

    frame, problem = labels.read_labels(path, "request_id", "malignant")

    assert frame is None and problem is not None and problem["status"] == "labels_unreadable"


def test_a_labels_row_that_is_no_position_is_row_zero(tmp_path: Path) -> None:
    """As a blank `row`: a position that is text, infinite or past int64 joins as row 0."""
    path = tmp_path / "labels.csv"
    path.write_text("request_id,malignant,row\na,1,zz\nb,0,1e400\nc,1,1e30\nd,0,2\n")

    frame, problem = labels.read_labels(path, "request_id", "malignant")

    assert problem is None and frame is not None
    assert frame.set_index("request_id")["row"].to_dict() == {"a": 0, "b": 0, "c": 0, "d": 2}

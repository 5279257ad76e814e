"""The online store's wire formats read without Feast: values decoded from protobuf bytes
written by hand here (tests/feature_store compares with Feast's own classes), entity keys
laid out as Feast 0.67 documents them, and when the direct reader applies."""

from __future__ import annotations

import sqlite3
import struct
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_runtime.features.store.freshness import OnlineStore, online_store
from mlops_runtime.features.store.online import OnlineFeatures
from mlops_runtime.features.store.sqlite_online import entity_key, readable
from mlops_runtime.features.store.values import _UNPARSED, _scalar, decode


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_values(n: int) -> None:
    assert decode(field(4, 0) + varint(n)) == n


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_int32_values_are_sign_extended_on_the_wire(n: int) -> None:
    assert decode(field(3, 0) + varint(n)) == n


@given(st.floats(allow_nan=False))
def test_double_values(x: float) -> None:
    got = decode(field(5, 1) + struct.pack("<d", x))
    assert got == x and struct.pack("<d", got) == struct.pack("<d", x)


def test_float_values_are_float32() -> None:
    assert (
        decode(field(6, 5) + struct.pack("<f", 0.1))
        == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    )


@given(st.text())
def test_string_values(text: str) -> None:
    raw = text.encode("utf-8")
    assert decode(field(2, 2) + varint(len(raw)) + raw) == text


def test_bools_nulls_and_the_empty_message() -> None:
    assert decode(field(7, 0) + varint(1)) is True
    assert decode(field(7, 0) + varint(0)) is False
    assert decode(field(19, 0) + varint(0)) is None
    assert decode(b"") is None
    # A oneof read twice keeps the last value, as protobuf does.
    assert decode(field(4, 0) + varint(1) + field(2, 2) + varint(1) + b"z") == "z"


@pytest.mark.parametrize(
    "blob",
    [
        field(8, 0) + varint(1_700_000_000),  # unix_timestamp_val: Feast makes a datetime
        field(1, 2) + varint(2) + b"\x00\xff",  # bytes_val
        field(15, 2) + varint(0),  # double_list_val
        field(4, 0) + b"\xff",  # a truncated varint
        field(5, 1) + b"\x00\x00",  # a truncated double
        field(2, 2) + varint(5) + b"ab",  # a string longer than the message
        field(2, 2) + varint(1) + b"\xff",  # not UTF-8
    ],
)
def test_anything_else_is_left_to_feast(blob: bytes) -> None:
    assert _scalar(blob) is _UNPARSED


def test_entity_keys_are_laid_out_as_feast_serializes_them() -> None:
    # version 3: the number of join keys, then per key its type (STRING = 2), length and
    # UTF-8 name, then per value its type (INT64 = 4, STRING = 2), length and bytes.
    name = b"customer_id"
    head = struct.pack("<III", 1, 2, len(name)) + name
    assert entity_key("customer_id", 17) == head + struct.pack("<IIq", 4, 8, 17)
    assert entity_key("customer_id", -1) == head + struct.pack("<IIq", 4, 8, -1)
    assert entity_key("customer_id", "é") == head + struct.pack("<II", 2, 2) + "é".encode()


def test_the_direct_reader_applies_to_the_embedded_store_only(tmp_path: Path) -> None:
    def store(text: str) -> OnlineStore:
        (tmp_path / "feature_store.yaml").write_text(text, encoding="utf-8")
        return online_store(tmp_path)

    base = "project: p\nprovider: local\nregistry: data/registry.db\n"
    sqlite = store(base + "online_store:\n  type: sqlite\n  path: data/online.db\n")
    assert readable(sqlite) and sqlite.path == tmp_path / "data" / "online.db"
    assert readable(store(base))  # Feast's default online store is SQLite too
    assert not readable(store(base + "online_store:\n  type: redis\n"))
    assert not readable(store(base + "entity_key_serialization_version: 2\n"))
    versioned = (
        "project: p\nregistry:\n  path: r.db\n  enable_online_feature_view_versioning: true\n"
    )
    assert not readable(store(versioned))


def store_project(tmp_path: Path) -> dict[str, Any]:
    repo = tmp_path / "feature_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        "project: shop\nprovider: local\nregistry: data/registry.db\n"
        "online_store:\n  type: sqlite\n  path: data/online_store.db\n"
        "entity_key_serialization_version: 3\n",
        encoding="utf-8",
    )
    return {
        "feature_store": {
            "repo": "feature_repo",
            "project": "shop",
            "entities": [{"name": "customer", "join_key": "customer_id", "type": "int"}],
            "views": [
                {
                    "name": "activity",
                    "join_key": "customer_id",
                    "features": ["spend"],
                    "ttl_s": 86400,
                }
            ],
            "on_demand": {},
        }
    }


FEAST_TABLE = (
    "CREATE TABLE shop_activity (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT,"
    " vector_value BLOB, event_ts timestamp, created_ts timestamp,"
    " PRIMARY KEY(entity_key, feature_name))"
)


def test_the_embedded_store_is_read_without_feast(tmp_path: Path) -> None:
    """A table laid out as Feast 0.67 writes it, filled by hand: read and assembled here,
    in an interpreter without Feast."""
    config = store_project(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    with sqlite3.connect(tmp_path / "feature_repo/data/online_store.db") as db:
        db.execute(FEAST_TABLE)
        spend = field(5, 1) + struct.pack("<d", 12.5)
        stamp = int(now.replace(tzinfo=None).timestamp())  # Feast's naive-UTC integer
        db.execute(
            "INSERT INTO shop_activity VALUES (?, 'spend', ?, NULL, NULL, ?, ?)",
            (entity_key("customer_id", 7), spend, stamp, stamp),
        )
    online = OnlineFeatures(config, tmp_path)
    assert online.sqlite is not None
    found, unknown, keyless = online.assemble(
        [{"customer_id": 7}, {"customer_id": 8}, {"other": 1}], now=now + timedelta(days=2)
    )
    assert found.row == {"customer_id": 7, "spend": 12.5} and found.stale == ["activity"]
    assert unknown.missing == ("customer_id", 8)
    assert keyless.missing_key == "customer_id"
    assert "feast" not in sys.modules


def test_a_store_not_created_yet_is_not_opened(tmp_path: Path) -> None:
    config = store_project(tmp_path)
    with pytest.raises(FileNotFoundError, match="run features-apply"):
        OnlineFeatures(config, tmp_path)
    sqlite3.connect(tmp_path / "feature_repo/data/online_store.db").close()
    with pytest.raises(LookupError, match="no online table for view activity"):
        OnlineFeatures(config, tmp_path)


def test_a_table_of_another_layout_is_left_to_feast(tmp_path: Path) -> None:
    config = store_project(tmp_path)
    with sqlite3.connect(tmp_path / "feature_repo/data/online_store.db") as db:
        db.execute("CREATE TABLE shop_activity (key BLOB, payload BLOB)")
    with pytest.raises(ImportError):  # Feast's path, and this interpreter has no Feast
        OnlineFeatures(config, tmp_path)

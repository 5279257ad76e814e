"""Run inside a store project's interpreter (it has Feast): compare the runtime's direct reads
of Feast's SQLite online store with Feast's own, and print the findings as JSON.

    python online_reads_probe.py codec            # key serialization and value decoding
    python online_reads_probe.py store KEYS.json  # the project's store, both ways
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def codec() -> dict[str, Any]:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Null, Value

    from mlops_runtime.features.store.sqlite_online import entity_key
    from mlops_runtime.features.store.values import decode, python_value

    rng = random.Random(12)
    ints = [0, 1, -1, 2**63 - 1, -(2**63), *(rng.randint(-(2**63), 2**63 - 1) for _ in range(500))]
    texts = ["a", "é", "客户-17", "x" * 300, *(_text(rng) for _ in range(500))]
    keys_checked, key_mismatches = 0, []
    for join_key in ("customer_id", "ключ"):
        for value in [*ints, *texts]:
            slot = "int64_val" if isinstance(value, int) else "string_val"
            proto = EntityKey(join_keys=[join_key], entity_values=[Value(**{slot: value})])
            keys_checked += 1
            if entity_key(join_key, value) != serialize_entity_key(proto, 3):
                key_mismatches.append([join_key, value])

    values = [
        Value(),
        Value(null_val=Null.NULL),
        Value(int32_val=-(2**31)),
        Value(int32_val=2**31 - 1),
        Value(double_val=float("nan")),
        Value(double_val=float("inf")),
        Value(double_val=-0.0),
        Value(float_val=0.1),
        Value(bool_val=False),
        Value(string_val=""),
        # Kinds decoded by Feast's own classes:
        Value(unix_timestamp_val=1_700_000_000),
        Value(bytes_val=b"\x00\xff"),
        Value(double_list_val={"val": [1.0, 2.5]}),
    ]
    for _ in range(3000):
        kind = rng.choice(["int64", "double", "float", "string", "bool", "int32"])
        values.append(
            {
                "int64": lambda: Value(int64_val=rng.randint(-(2**63), 2**63 - 1)),
                "int32": lambda: Value(int32_val=rng.randint(-(2**31), 2**31 - 1)),
                "double": lambda: Value(double_val=rng.uniform(-1e12, 1e12)),
                "float": lambda: Value(float_val=rng.uniform(-1e6, 1e6)),
                "string": lambda: Value(string_val=_text(rng)),
                "bool": lambda: Value(bool_val=rng.random() < 0.5),
            }[kind]()
        )
    value_mismatches = []
    for value in values:
        blob = value.SerializeToString()
        ours, feasts = decode(blob), python_value(Value.FromString(blob))
        if not _same(ours, feasts):
            value_mismatches.append([str(value), repr(ours), repr(feasts)])
    return {
        "keys_checked": keys_checked,
        "key_mismatches": key_mismatches[:5],
        "values_checked": len(values),
        "value_mismatches": value_mismatches[:5],
    }


def _text(rng: random.Random) -> str:
    return "".join(
        chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF)]))
        for _ in range(rng.randint(0, 24))
    )


def store(keys: list[int]) -> dict[str, Any]:
    from mlops_runtime.features.store import online
    from mlops_runtime.project import load_project

    project = load_project(Path.cwd())
    config = project.config
    direct = online.OnlineFeatures(config, project.root)
    assert direct.sqlite is not None, "the embedded SQLite store was not read directly"
    view = direct.views[0]
    ours = direct._read(view, keys)
    feast_imported = any(name == "feast" or name.startswith("feast.") for name in sys.modules)

    reader = online._sqlite_reader
    online._sqlite_reader = lambda *args: None  # the path every other online store takes
    try:
        through_feast = online.OnlineFeatures(config, project.root)
    finally:
        online._sqlite_reader = reader
    assert through_feast.sqlite is None
    theirs = through_feast._read(view, keys)

    response = through_feast.store.get_online_features(
        features=[f"{view['name']}:{name}" for name in view["features"]],
        entity_rows=[{view["join_key"]: key} for key in keys],
    ).to_dict()
    now = datetime.now(UTC)
    rows = [{view["join_key"]: key, "contract": "one-year", "tenure_months": 7} for key in keys]
    return {
        "feast_imported_by_direct_reads": feast_imported,
        "direct": [[stamp, values] for stamp, values in ours],
        "provider": [[stamp, values] for stamp, values in theirs],
        "online_features": response,
        "assembled_direct": [a.row for a in direct.assemble(rows, now=now)],
        "assembled_provider": [a.row for a in through_feast.assemble(rows, now=now)],
    }


def main() -> None:
    found = codec() if sys.argv[1] == "codec" else store(json.loads(Path(sys.argv[2]).read_text()))
    print(json.dumps(found))


if __name__ == "__main__":
    main()

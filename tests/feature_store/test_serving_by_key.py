"""Serving by entity key: real servers of materialised churn projects answer records that
carry only `customer_id` and the request-time features, over HTTP.

The fresh project (`churn`, data up to an hour ago) is served for the whole module; a second
project over data that ended 60 days ago (older than the view's 45-day ttl) is served twice,
built with `stale: reject` and then rebuilt with `stale: serve`.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.feature_store.conftest import StoreProject, make_store_project
from tests.runtime.serving_fixtures import REPO, SPECS, Server, stage_env, start_server

pytestmark = pytest.mark.slow

SPEC = (SPECS / "churn.mlops.yaml").read_text(encoding="utf-8")
REQUEST = {"contract": "one-year", "tenure_months": 24}
VIEW = ["monthly_charges", "total_charges", "support_calls", "plan"]
DERIVED = ["log_total_charges", "days_since_login", "calls_bucket", "charges_per_month"]
# Written into the online store by one test only: no other test reads this customer.
BROKEN_CUSTOMER = 2499
WRITE_ONLINE = """
import json, sys
import pandas as pd
from feast import FeatureStore
frame = pd.DataFrame([json.loads(sys.argv[1])]).assign(event_timestamp=pd.Timestamp(sys.argv[2]))
FeatureStore(repo_path="feature_repo").write_to_online_store("activity", frame)
"""


def latest(activity: pd.DataFrame, customer: int) -> pd.Series:
    """The customer's newest snapshot: what materialising up to now put in the online store."""
    rows = activity[activity["customer_id"] == customer]
    return rows.loc[pd.to_datetime(rows["event_timestamp"], utc=True).idxmax()]


def inline_record(activity: pd.DataFrame, customer: int, request: dict[str, Any]) -> dict[str, Any]:
    """Every feature sent inline, computed here from the simulated table as the spec defines
    them (independently of the runtime's transforms)."""
    row = latest(activity, customer)
    stamp = pd.Timestamp(row["event_timestamp"])
    login = pd.Timestamp(row["last_login_at"])
    total = float(row["total_charges"])
    calls = int(row["support_calls"])
    return {
        **request,
        "monthly_charges": float(row["monthly_charges"]),
        "total_charges": total,
        "support_calls": calls,
        "plan": str(row["plan"]),
        "log_total_charges": math.log1p(total),
        "days_since_login": (stamp - login).total_seconds() / 86400,
        "calls_bucket": bisect.bisect_right([1, 3, 6], calls),
        "charges_per_month": total / request["tenure_months"],
    }


def post(client: httpx.Client, body: Any, path: str = "/predict") -> tuple[httpx.Response, str]:
    request_id = uuid.uuid4().hex
    response = client.post(path, json=body, headers={"x-request-id": request_id})
    return response, request_id


def log_lines(project: Path, request_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The prediction log's lines of one request (the writer is a background thread)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            line
            for path in sorted((project / "prediction_log").glob("*.jsonl"))
            # Whole lines only (the last may be half written); split on newlines alone, as
            # logged text may hold other line separators.
            for line in map(json.loads, path.read_bytes().split(b"\n")[:-1])
            if line["request_id"] == request_id
        ]
        if found or time.monotonic() > deadline:
            return sorted(found, key=lambda line: int(line["row"]))
        time.sleep(0.1)


def rebuild(root: Path, text: str) -> None:
    """`mlops build` again after changing the spec; the trained model and the store stay."""
    (root / "specs" / "churn.mlops.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mlops_compiler", "build", "specs/churn.mlops.yaml"],
        cwd=root, capture_output=True, text=True, check=False,
        env=stage_env(PYTHONPATH=str(REPO)),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# -- the fresh project ---------------------------------------------------------------------------


@pytest.mark.parametrize("customer", [1000, 1234, 2042])
def test_key_only_predicts_what_the_inline_row_predicts(
    churn: StoreProject, churn_server: Server, customer: int
) -> None:
    with churn_server.client() as client:
        by_key, _ = post(client, {"customer_id": customer, **REQUEST})
        inline, _ = post(client, inline_record(churn.activity, customer, REQUEST))
    assert by_key.status_code == 200, by_key.text
    assert inline.status_code == 200, inline.text
    assert by_key.json()["prediction"] == inline.json()["prediction"]
    assert by_key.json()["probabilities"] == pytest.approx(inline.json()["probabilities"])
    assert "stale_features" not in by_key.json()  # fresh data: nothing to flag


def test_the_looked_up_values_reach_the_model(churn_server: Server) -> None:
    """Same request-time values, other customers: other stored features, other scores."""
    with churn_server.client() as client:
        scores = {
            tuple(post(client, {"customer_id": c, **REQUEST})[0].json()["probabilities"])
            for c in range(1000, 1010)
        }
    assert len(scores) > 1


def test_the_log_holds_the_key_and_the_features_the_model_saw(
    churn: StoreProject, churn_server: Server
) -> None:
    customer = 1500
    with churn_server.client() as client:
        response, request_id = post(client, {"customer_id": customer, **REQUEST})
    assert response.status_code == 200, response.text
    (line,) = log_lines(churn.path, request_id)
    inputs = line["inputs"]
    expected = inline_record(churn.activity, customer, REQUEST)
    assert inputs["customer_id"] == customer
    assert {k: inputs[k] for k in (*REQUEST, *VIEW)} == {k: expected[k] for k in (*REQUEST, *VIEW)}
    for name in DERIVED:
        assert inputs[name] == pytest.approx(expected[name], rel=1e-12), name
    assert line["stale_features"] == []
    assert line["output"]["prediction"] == response.json()["prediction"]


def test_values_the_request_carries_win_over_the_store(
    churn: StoreProject, churn_server: Server
) -> None:
    customer = 1501
    stored = latest(churn.activity, customer)
    other_plan = next(p for p in ("basic", "standard", "premium") if p != stored["plan"])
    with churn_server.client() as client:
        response, request_id = post(
            client, {"customer_id": customer, **REQUEST, "plan": other_plan}
        )
        # Every feature inline: no lookup, so even an entity the store lacks is served.
        inline, _ = post(
            client, {"customer_id": 17, **inline_record(churn.activity, customer, REQUEST)}
        )
    assert response.status_code == 200, response.text
    (line,) = log_lines(churn.path, request_id)
    assert line["inputs"]["plan"] == other_plan
    assert line["inputs"]["monthly_charges"] == float(stored["monthly_charges"])
    assert inline.status_code == 200, inline.text


def test_a_numeric_text_key_is_read_as_the_int_key(
    churn: StoreProject, churn_server: Server
) -> None:
    with churn_server.client() as client:
        as_text, request_id = post(client, {"customer_id": "1002", **REQUEST})
        as_int, _ = post(client, {"customer_id": 1002, **REQUEST})
    assert as_text.status_code == 200, as_text.text
    assert as_text.json()["probabilities"] == as_int.json()["probabilities"]
    (line,) = log_lines(churn.path, request_id)
    assert line["inputs"]["customer_id"] == 1002


def test_an_unknown_customer_is_a_404_naming_the_key(
    churn: StoreProject, churn_server: Server
) -> None:
    with churn_server.client() as client:
        response, request_id = post(client, {"customer_id": 17, **REQUEST})
        assert response.status_code == 404, response.text
        body = response.json()
        assert "customer_id=17" in body["error"]
        assert body["missing"] == [{"record": 0, "key": "customer_id", "value": 17}]
        assert body["request_id"] == request_id
        assert client.get("/ready").status_code == 200  # and the server keeps serving
        again, _ = post(client, {"customer_id": 1000, **REQUEST})
        assert again.status_code == 200
    (line,) = log_lines(churn.path, request_id)
    assert line["status"] == 404 and "customer_id=17" in line["error"]


@pytest.mark.parametrize("key", ["absent", None, "abc", "", 1.5, True, [1000], 2**63])
def test_a_record_without_a_usable_key_is_a_422_naming_it(churn_server: Server, key: Any) -> None:
    record = dict(REQUEST) if key == "absent" else {"customer_id": key, **REQUEST}
    with churn_server.client() as client:
        response, _ = post(client, record)
    assert response.status_code == 422, response.text
    body = response.json()
    assert "customer_id" in body["error"]
    (violation,) = body["violations"]
    assert violation["column"] == "customer_id"
    assert violation["check"] == "join_key"
    assert violation["record"] == 0


def test_a_batch_is_refused_whole_like_a_batch_with_one_bad_record(
    churn: StoreProject, churn_server: Server
) -> None:
    good = [{"customer_id": c, **REQUEST} for c in (1010, 1011)]
    with churn_server.client() as client:
        singles = [post(client, record)[0].json()["prediction"] for record in good]
        both, request_id = post(client, good)
        unknown, _ = post(client, [good[0], {"customer_id": 17, **REQUEST}, good[1], {"customer_id": 18, **REQUEST}])  # fmt: skip
        keyless, _ = post(client, [good[0], dict(REQUEST)])
        # The same whole-request refusal the door gives a batch with one contract violation,
        # here for a looked-up record whose own request-time value breaks the contract.
        contract, _ = post(client, [good[0], {"customer_id": 1011, **REQUEST, "tenure_months": 900}])  # fmt: skip
    assert both.status_code == 200, both.text
    assert both.json()["predictions"] == singles
    assert [line["inputs"]["customer_id"] for line in log_lines(churn.path, request_id)] == [
        1010,
        1011,
    ]
    assert unknown.status_code == 404, unknown.text
    assert [(m["record"], m["value"]) for m in unknown.json()["missing"]] == [(1, 17), (3, 18)]
    assert unknown.json()["total"] == 2
    assert keyless.status_code == 422, keyless.text
    assert [(v["record"], v["column"]) for v in keyless.json()["violations"]] == [
        (1, "customer_id")
    ]
    assert contract.status_code == 422, contract.text
    assert [(v["record"], v["column"]) for v in contract.json()["violations"]] == [
        (1, "tenure_months")
    ]


def test_a_looked_up_value_that_breaks_the_contract_is_a_422_naming_it(
    churn: StoreProject, churn_server: Server
) -> None:
    """A value written straight into the online store (not through features-materialize,
    which checks the source) is held to the contract at the door like a sent value."""
    row = {
        "customer_id": BROKEN_CUSTOMER,
        "monthly_charges": 5000.0,  # the contract's max is 1000
        "total_charges": 6000.0,
        "support_calls": 1,
        "plan": "basic",
        "log_total_charges": math.log1p(6000.0),
        "days_since_login": 1.0,
        "calls_bucket": 1,
    }
    # Stamped as the table's newest snapshot: the store's newest event time stays the same.
    newest = pd.to_datetime(churn.activity["event_timestamp"], utc=True).max()
    written = subprocess.run(
        [churn.python, "-c", WRITE_ONLINE, json.dumps(row), newest.isoformat()],
        cwd=churn.path, capture_output=True, text=True, check=False, timeout=300,
        env=stage_env(),
    )  # fmt: skip
    assert written.returncode == 0, written.stderr[-3000:]
    with churn_server.client() as client:
        response, _ = post(client, {"customer_id": BROKEN_CUSTOMER, **REQUEST})
        assert client.get("/ready").status_code == 200
    assert response.status_code == 422, response.text
    (violation,) = response.json()["violations"]
    assert (violation["column"], violation["check"], violation["value"]) == (
        "monthly_charges",
        "max",
        5000.0,
    )


def test_a_big_batch_is_read_whole_and_logged_with_its_keys(
    churn: StoreProject, churn_server: Server
) -> None:
    """300 rows: read in one go off the event loop, logged column-wise (Parquet)."""
    import pyarrow.parquet as pq

    customers = list(range(1300, 1600))
    with churn_server.client() as client:
        response, request_id = post(client, [{"customer_id": c, **REQUEST} for c in customers])
        singles = [post(client, {"customer_id": c, **REQUEST})[0] for c in customers[:3]]
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][:3] == [r.json()["prediction"] for r in singles]
    deadline = time.monotonic() + 20
    table = None
    while table is None and time.monotonic() < deadline:
        for path in (churn.path / "prediction_log").glob("*.parquet"):
            read = pq.read_table(path).flatten()
            if request_id in read.column("request_id").to_pylist():
                table = read
        time.sleep(0.2)
    assert table is not None, "no Parquet log of the batch"
    rows = table.filter(pc_equal(table, "request_id", request_id))
    assert rows.column("inputs.customer_id").to_pylist() == customers
    assert rows.column("inputs.monthly_charges").to_pylist()[0] == float(
        latest(churn.activity, 1300)["monthly_charges"]
    )
    assert rows.column("stale_features").to_pylist() == [[]] * len(customers)


def pc_equal(table: Any, column: str, value: str) -> Any:
    import pyarrow.compute as pc

    return pc.equal(table.column(column), value)


def metric(server: Server, name: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    return sum(float(line.split(" ")[-1]) for line in text.splitlines() if line.startswith(name))


def test_concurrent_requests_share_online_reads(churn_server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=churn_server.url, timeout=30) as client:
            return await asyncio.gather(
                *[
                    client.post("/predict", json={"customer_id": c, **REQUEST})
                    for c in range(1200, 1264)
                ]
            )

    reads, rows = (metric(churn_server, f"mlops_feature_lookup_rows_{s}") for s in ("count", "sum"))
    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 64
    assert metric(churn_server, "mlops_feature_lookup_rows_sum") - rows == 64  # each row read once
    assert metric(churn_server, "mlops_feature_lookup_rows_count") - reads < 64  # in fewer reads


def test_invocations_and_open_inference_serve_by_key(
    churn: StoreProject, churn_server: Server
) -> None:
    customers = [1020, 1021]
    records = [{"customer_id": c, **REQUEST} for c in customers]
    v2 = {
        "inputs": [
            {"name": "customer_id", "shape": [2], "datatype": "INT64", "data": customers},
            {"name": "contract", "shape": [2], "datatype": "BYTES", "data": ["one-year"] * 2},
            {"name": "tenure_months", "shape": [2], "datatype": "INT64", "data": [24, 24]},
        ]
    }
    with churn_server.client() as client:
        expected = post(client, records)[0].json()["predictions"]
        split, _ = post(
            client,
            {
                "dataframe_split": {
                    "columns": ["customer_id", *REQUEST],
                    "data": [[c, *REQUEST.values()] for c in customers],
                }
            },
            "/invocations",
        )
        by_records, request_id = post(client, {"dataframe_records": records}, "/invocations")
        infer, _ = post(client, v2, "/v2/models/churn/infer")
        metadata = client.get("/v2/models/churn").json()
        v2["inputs"][0]["data"] = [1020, 17]
        unknown, _ = post(client, v2, "/v2/models/churn/infer")
    assert split.status_code == 200, split.text
    assert split.json()["predictions"] == expected
    assert by_records.json()["predictions"] == expected
    assert infer.status_code == 200, infer.text
    assert infer.json()["outputs"][0]["data"] == expected
    assert unknown.status_code == 404 and "customer_id=17" in unknown.json()["error"]
    inputs = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert inputs["customer_id"] == "INT64" and inputs["contract"] == "BYTES"
    assert metadata["parameters"]["entity_keys"] == ["customer_id"]
    assert {"monthly_charges", "charges_per_month"} <= set(metadata["parameters"]["looked_up"])
    assert "contract" not in metadata["parameters"]["looked_up"]
    lines = log_lines(churn.path, request_id)
    assert [line["endpoint"] for line in lines] == ["/invocations"] * 2
    assert [line["inputs"]["customer_id"] for line in lines] == customers


def test_openapi_accepts_the_key_and_leaves_the_store_features_optional(
    churn_server: Server,
) -> None:
    with churn_server.client() as client:
        doc = client.get("/openapi.json").json()
    record = doc["components"]["schemas"]["Record"]
    assert record["properties"]["customer_id"]["type"] == "integer"
    assert sorted(record["required"]) == sorted(REQUEST)
    assert record["allOf"] == [
        {"anyOf": [{"required": ["customer_id"]}, {"required": [*VIEW, *DERIVED[:3]]}]}
    ]
    responses = doc["paths"]["/predict"]["post"]["responses"]
    assert "404" in responses and "409" not in responses  # the spec serves stale values


def test_schemathesis_finds_no_server_error(churn_server: Server) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(churn_server.url + "/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=churn_server.url)
            assert response.status_code < 500, (case.path, case.body, response.text)

        run()
        checked += 1
    assert checked == 12


def test_the_monitor_reads_a_log_of_assembled_rows(churn: StoreProject, tmp_path: Path) -> None:
    """A log of its own: the other tests' servers log whatever schemathesis sent."""
    logs = str(tmp_path / "prediction_log")
    server = start_server(churn.path, python=churn.python, MLOPS_PREDICTION_LOG_DIR=logs)
    try:
        with server.client() as client:
            for customer in range(1100, 1160):
                response, request_id = post(client, {"customer_id": customer, **REQUEST})
                assert response.status_code == 200, response.text
            assert post(client, {"customer_id": 17, **REQUEST})[0].status_code == 404
        assert log_lines(tmp_path, request_id)  # the writer has caught up
    finally:
        server.stop()
    result = churn.stage("monitor", "--json", "--no-dashboard", MLOPS_PREDICTION_LOG_DIR=logs)
    assert result.returncode in (0, 1, 3), result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert not [p for p in report["problems"] if str(p.get("status")).startswith("corrupt")]
    traffic = report["traffic"]
    # The unknown customer's 404 is the caller's: a client error, not one of the model's.
    assert (traffic["rows"], traffic["errors"], traffic["client_errors"]) == (60, 0, 1)
    quality = report["data_quality"]["columns"]
    for name in ("monthly_charges", "plan", "charges_per_month"):
        assert quality[name]["status"] == "ok", (name, quality[name])
        assert quality[name]["rows"] == 60, (name, quality[name])


# -- stale values: a project whose data ended 60 days ago ---------------------------------------


@dataclass
class Stale:
    store: StoreProject
    reject: Server  # under `stale: reject`
    serve: Server  # the same project rebuilt with `stale: serve`

    def inline(self, customer: int) -> dict[str, Any]:
        return {"customer_id": customer, **inline_record(self.store.activity, customer, REQUEST)}


@pytest.fixture(scope="module")
def stale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stale]:
    rejecting = SPEC.replace("stale: serve", "stale: reject")
    assert rejecting != SPEC
    root = tmp_path_factory.mktemp("stale")
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(days=60)
    store = make_store_project(root, end=end, text=rejecting)
    start = (store.activity["event_timestamp"].min() - pd.Timedelta(days=1)).isoformat()
    store.ok("features-materialize", "--start", start)
    store.ok("train")
    reject = start_server(store.path, python=store.python)
    serve: Server | None = None
    try:
        rebuild(root, SPEC)
        serve = start_server(store.path, python=store.python)
        yield Stale(store, reject, serve)
    finally:
        reject.stop()
        if serve is not None:
            serve.stop()


def test_stale_reject_is_a_409_naming_the_view(stale: Stale) -> None:
    with stale.reject.client() as client:
        response, request_id = post(client, {"customer_id": 1003, **REQUEST})
        assert response.status_code == 409, response.text
        body = response.json()
        assert "activity" in body["error"] and "customer_id=1003" in body["error"]
        assert body["stale"] == [
            {"record": 0, "view": "activity", "key": "customer_id", "value": 1003,
             "ttl_s": 45 * 86400}
        ]  # fmt: skip
        # Not for a record that needs no lookup.
        assert client.post("/predict", json=stale.inline(1003)).status_code == 200
    (line,) = log_lines(stale.store.path, request_id)
    assert line["status"] == 409


def test_stale_serve_predicts_and_flags_the_view(stale: Stale) -> None:
    with stale.serve.client() as client:
        single, single_id = post(client, {"customer_id": 1003, **REQUEST})
        batch, _ = post(client, [{"customer_id": 1004, **REQUEST}, stale.inline(1005)])
        reference = client.post("/predict", json=stale.inline(1003)).json()
    assert single.status_code == 200, single.text
    assert single.json()["stale_features"] == ["activity"]
    assert single.json()["probabilities"] == pytest.approx(reference["probabilities"])
    assert batch.status_code == 200, batch.text
    assert batch.json()["stale_features"] == [["activity"], []]
    (line,) = log_lines(stale.store.path, single_id)
    assert line["stale_features"] == ["activity"]
    assert line["inputs"]["customer_id"] == 1003
    assert metric(stale.serve, 'mlops_stale_features_total{view="activity"}') >= 2

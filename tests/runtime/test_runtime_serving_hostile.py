"""The server under hostile input and broken models: never a 5xx for the client's fault, never
a hang, never a wrong answer passed as good.

Model faults are served by the real server (`python -m mlops_runtime serve`, on a free
loopback port) of a level-0 project, whose model file is whatever the user's own training
wrote: here a stand-in model that raises, answers NaN or the wrong shape, or sleeps. Swapping
the file is how a new version arrives (the reload loop installs it within its interval), as a
rollback would bring the previous version back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import signal
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
from serving_fixtures import Server, build_project, records, start_server

# The user's model module, importable by the server from the project folder (its cwd).
FAULTS = '''
import time

import numpy as np


class Faulty:
    """A wine classifier whose predict does what `kind` says."""

    classes_ = np.array([0, 1, 2])

    def __init__(self, kind, seconds=0.0):
        self.kind = kind
        self.seconds = seconds

    def predict(self, frame):
        rows = len(frame)
        if self.kind == "attribute":
            return frame.no_such_attribute
        if self.kind == "runtime":
            raise RuntimeError("the model's backend is gone")
        if self.kind == "nan":
            return np.full(rows, np.nan)
        if self.kind == "shape":
            return np.zeros(rows + 1, dtype=np.int64)
        if self.kind == "sleep":
            time.sleep(self.seconds)
        return (frame["alcohol"].to_numpy() > 13).astype(np.int64)
'''

# Small limits, so a timeout shows within a test; three failed calls make the server unready.
SERVING = """
serving:
  timeouts: {header: 1s, body: 1s, model: 1s, drain: 3s}
  unready_after_failures: 3
"""


def write_model(project: Path, kind: str, seconds: float = 0.0) -> str:
    """Write model/model.joblib and its digest as level-0 training does with pickle; returns
    the version the server will report (local-<first 12 hex of the sha256>)."""
    faults = sys.modules.get("faults")
    if faults is None:
        spec = importlib.util.spec_from_file_location("faults", project / "faults.py")
        assert spec is not None and spec.loader is not None
        faults = importlib.util.module_from_spec(spec)
        sys.modules["faults"] = faults
        spec.loader.exec_module(faults)
    model_dir = project / "model"
    model_dir.mkdir(exist_ok=True)
    partial = model_dir / "model.joblib.partial"
    joblib.dump(faults.Faulty(kind, seconds), partial)
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    (model_dir / "model.joblib.sha256").write_text(f"{digest}  model.joblib\n", encoding="utf-8")
    partial.replace(model_dir / "model.joblib")
    return f"local-{digest[:12]}"


def serving_version(server: Server) -> str | None:
    models = httpx.get(server.url + "/health", timeout=5).json()["models"]
    return str(models[0]["model_version"]) if models else None


def serve_model(server: Server, kind: str, seconds: float = 0.0) -> str:
    """Install a model file and wait until the server answers with it."""
    version = write_model(server.project, kind, seconds)
    deadline = time.monotonic() + 30
    while serving_version(server) != version:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    return version


def metric(server: Server, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(server.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    spec = (Path(__file__).resolve().parents[2] / "specs" / "wine.mlops.yaml").read_text()
    # A model class of the user's own is not an estimator skops may restore: pickle, opted in.
    spec = spec.replace(
        "  params: {max_iter: 1000}\n", "  params: {max_iter: 1000}\n  serialization: pickle\n"
    )
    assert "serialization: pickle" in spec
    built = build_project(root, "wine", spec + SERVING)
    (built / "faults.py").write_text(FAULTS, encoding="utf-8")
    write_model(built, "good")
    return built


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[Server]:
    running = start_server(project, MLOPS_RELOAD_INTERVAL_S="0.2")
    yield running
    running.stop()


WINE = records("wine", 8)
V2_INFER = "/v2/models/wine/infer"


def v2_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    return {
        "inputs": [
            {
                "name": c,
                "shape": [len(rows)],
                "datatype": "INT64" if isinstance(rows[0][c], int) else "FP64",
                "data": [r[c] for r in rows],
            }
            for c in columns
        ]
    }


# Every prediction endpoint, with one record and with several: (path, JSON body).
REQUESTS = [
    ("/predict", WINE[0]),
    ("/predict", WINE),
    ("/invocations", {"dataframe_records": WINE[:1]}),
    ("/invocations", {"dataframe_records": WINE}),
    (V2_INFER, v2_body(WINE[:1])),
    (V2_INFER, v2_body(WINE)),
]


def test_the_good_model_answers(server: Server) -> None:
    serve_model(server, "good")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, body in REQUESTS:
            response = client.post(path, json=body)
            assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize(
    ("kind", "status", "says"),
    [
        ("attribute", 500, "the model raised AttributeError"),
        ("runtime", 500, "the model raised RuntimeError"),
        ("nan", 500, "NaN"),
        ("shape", 500, "shape"),
    ],
)
def test_a_failing_model_fails_its_requests_with_5xx_and_never_hangs(
    server: Server, kind: str, status: int, says: str
) -> None:
    version = serve_model(server, kind)
    before = metric(server, "mlops_model_failures_total", model_version=version)
    # Concurrent single records share a model call: every one of them must be answered.
    with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda pb: client.post(pb[0], json=pb[1]), REQUESTS * 3))
        singles = list(pool.map(lambda r: client.post("/predict", json=r), WINE))
    for response in answers + singles:
        assert response.status_code == status, (response.request.url, response.text)
        assert says in response.json()["error"], response.text
        assert response.json()["request_id"]
    # The exception's own text stays in the server's log, not in the answer.
    assert "backend is gone" not in "".join(r.text for r in answers)
    assert metric(server, "mlops_model_failures_total", model_version=version) > before
    assert f"model wine version {version} failed" in server.output()
    # The prediction log has each failed request, for the monitor's error rate.
    ids = {r.json()["request_id"] for r in answers}
    deadline = time.monotonic() + 10
    while True:
        logged = {
            line["request_id"]: line
            for path in (server.project / "prediction_log").glob("*.jsonl")
            for line in map(json.loads, path.read_text().splitlines())
        }
        if ids <= set(logged) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ids <= set(logged)
    assert {logged[i]["status"] for i in ids} == {status}
    serve_model(server, "good")  # a new version is ready at once: its count starts at zero
    assert httpx.get(server.url + "/ready", timeout=5).status_code == 200


def test_consecutive_failures_make_the_server_unready_until_a_good_version(
    server: Server,
) -> None:
    serve_model(server, "runtime")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):
            assert client.post("/predict", json=WINE[0]).status_code == 500
        assert client.get("/ready").status_code == 200  # two failures: still routed to
        assert client.post("/predict", json=WINE).status_code == 500
        ready = client.get("/ready")
        assert ready.status_code == 503, ready.text
        assert "failed 3 model calls in a row" in ready.json()["detail"]
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/health").status_code == 200  # alive: not to be restarted
    serve_model(server, "good")  # what a rollback does: the previous version comes back
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=WINE[0]).status_code == 200


def test_a_slow_model_call_is_a_504_not_a_late_answer(server: Server) -> None:
    serve_model(server, "sleep", seconds=3.0)
    with httpx.Client(base_url=server.url, timeout=15) as client:
        # The first single-record call runs on the event loop: it is found late when it returns.
        started = time.monotonic()
        response = client.post("/predict", json=WINE[0])
        assert response.status_code == 504, response.text
        assert "took 3.0s, over 1s" in response.json()["error"]
        assert time.monotonic() - started < 10
        # From then on this model is called in a thread: 504 at the limit, the loop stays free.
        with ThreadPoolExecutor(2) as pool:
            started = time.monotonic()
            slow = pool.submit(client.post, "/predict", json=WINE[0])
            time.sleep(0.2)
            health_started = time.monotonic()
            assert client.get("/health").status_code == 200
            assert time.monotonic() - health_started < 0.5
            response = slow.result()
        assert response.status_code == 504, response.text
        assert "no answer within 1s" in response.json()["error"]
        assert time.monotonic() - started < 2.5
        # A batch request's call always runs in a thread.
        started = time.monotonic()
        response = client.post("/predict", json=WINE)
        assert response.status_code == 504, response.text
        assert time.monotonic() - started < 2.5
    serve_model(server, "good")


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing `sock`, or None if it kept it open that long."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return received
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        return received
    return None


def test_clients_that_never_finish_their_request_are_cut_off(server: Server) -> None:
    serve_model(server, "good")
    stalled: list[tuple[str, socket.socket]] = []
    partial_body = (
        b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 1000\r\n\r\n{"alcohol": '
    )
    try:
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            kind = ("silent", "headers", "body")[i % 3]
            if kind == "headers":
                sock.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
            elif kind == "body":
                sock.sendall(partial_body)
            stalled.append((kind, sock))
        # Meanwhile the server answers everyone else at once.
        started = time.monotonic()
        response = httpx.post(server.url + "/predict", json=WINE[0], timeout=5)
        assert response.status_code == 200
        assert time.monotonic() - started < 2
        # The limits are 1 s (header) and 1 s (body); the sweep runs 4 times a second.
        for kind, sock in stalled:
            sent = _closed_within(sock, 5.0)
            assert sent is not None, f"a {kind} connection is still open after 5 s"
            if kind != "silent":
                assert sent.startswith(b"HTTP/1.1 408"), (kind, sent[:100])
    finally:
        for _, sock in stalled:
            sock.close()
    # A client that trickles its headers a byte at a time is held to the same deadline.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        with pytest.raises(OSError):
            for byte in b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 200:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
                if _closed_within(sock, 0.001) is not None:
                    raise ConnectionResetError("closed")
        assert time.monotonic() - started < 4
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_the_read_deadlines_hold_in_every_worker(project: Path) -> None:
    version = write_model(project, "good")
    workers = start_server(project, WEB_CONCURRENCY="2", MLOPS_RELOAD_INTERVAL_S="0.2")
    try:
        assert serving_version(workers) == version
        # Enough connections that both workers accept some of them.
        stalled = [
            socket.create_connection(("127.0.0.1", workers.port), timeout=5) for _ in range(8)
        ]
        for sock in stalled:
            sock.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
        for sock in stalled:
            sent = _closed_within(sock, 5.0)
            assert sent is not None and sent.startswith(b"HTTP/1.1 408"), sent
            sock.close()
    finally:
        workers.stop()


def test_a_keep_alive_connection_idle_between_requests_stays_usable(server: Server) -> None:
    serve_model(server, "good")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.post("/predict", json=WINE[0]).status_code == 200
        time.sleep(2.5)  # longer than the header and body deadlines, shorter than keep-alive
        assert client.post("/predict", json=WINE[0]).status_code == 200


def _post_quietly(url: str, body: Any) -> int | None:
    try:
        return httpx.post(url, json=body, timeout=15).status_code
    except httpx.TransportError:
        return None  # sent after the server stopped listening


@pytest.mark.parametrize(
    ("kind", "body", "workers"),
    [("attribute", WINE[0], "1"), ("sleep", WINE, "1"), ("sleep", WINE, "2")],
)
def test_sigterm_stops_a_server_whose_model_fails_or_hangs(
    server: Server, project: Path, kind: str, body: Any, workers: str
) -> None:
    # A batch that sleeps 60 s holds a thread past the 3 s drain: the process leaves anyway.
    serve_model(server, kind, seconds=60.0)
    second = start_server(project, MLOPS_RELOAD_INTERVAL_S="0.2", WEB_CONCURRENCY=workers)
    try:
        with ThreadPoolExecutor(16) as pool:
            sent = [pool.submit(_post_quietly, second.url + "/predict", body) for _ in range(16)]
            deadline = time.monotonic() + 20
            while "failed (1 in a row)" not in second.output():  # the model is being called
                assert time.monotonic() < deadline, second.output()
                time.sleep(0.05)
            second.process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert second.process.wait(15) == 0, second.output()
            assert time.monotonic() - started < 8, second.output()
            statuses = [f.result() for f in sent]
        assert set(statuses) <= {500, 504, None}, statuses
        assert statuses.count(None) < len(statuses)  # requests in flight were answered
        if kind == "sleep":
            assert "stopped with a model call still running" in second.output()
    finally:
        second.stop()
    serve_model(server, "good")


def nested_bodies(depth: int) -> list[tuple[str, bytes]]:
    """A value nested `depth` arrays deep in every place a prediction body takes a value."""
    deep = "[" * depth + "]" * depth
    record = f'{{"alcohol": {deep}}}'
    tensor = f'{{"name": "alcohol", "shape": [1], "datatype": "FP64", "data": {deep}}}'
    bodies = [
        ("/predict", deep),
        ("/predict", record),
        ("/predict", f"[{record}]"),
        ("/invocations", f'{{"dataframe_records": [{record}]}}'),
        ("/invocations", f'{{"dataframe_split": {{"columns": ["alcohol"], "data": {deep}}}}}'),
        ("/invocations", f'{{"instances": {deep}}}'),
        (V2_INFER, f'{{"inputs": [{tensor}]}}'),
        (V2_INFER, f'{{"inputs": {deep}}}'),
        (V2_INFER, f'{{"inputs": [], "parameters": {{"x": {deep}}}}}'),
    ]
    return [(path, body.encode()) for path, body in bodies]


@pytest.mark.parametrize("depth", [100, 980, 990, 1000, 1024, 1025, 1100, 10_000])
def test_deeply_nested_json_is_a_4xx_on_every_endpoint(server: Server, depth: int) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, body in nested_bodies(depth):
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (path, depth, response.text[:300])
            assert response.json()["request_id"]


@pytest.mark.parametrize(
    ("datatype", "data", "status"),
    [
        ("INT64", [13.5], 400),
        ("INT64", [True], 400),
        ("INT32", [2**40], 400),
        ("UINT8", [-1], 400),
        ("BOOL", [13.5], 400),
        ("BOOL", [1], 400),
        ("FP64", ["13.5"], 400),
        ("FP64", [True], 400),
        ("BYTES", [13.5], 400),
        ("FP64", [13.5], 200),
        ("FP32", [13], 200),
        ("INT64", [13], 200),
    ],
)
def test_v2_json_data_must_be_of_its_datatype(
    server: Server, datatype: str, data: list[Any], status: int
) -> None:
    serve_model(server, "good")
    body = v2_body(WINE[:1])
    body["inputs"][0] = {"name": "alcohol", "shape": [1], "datatype": datatype, "data": data}
    response = httpx.post(server.url + V2_INFER, json=body, timeout=10)
    assert response.status_code == status, response.text
    if status == 400:
        assert "'alcohol'" in response.json()["error"], response.text
        assert datatype in response.json()["error"], response.text


# A request's deadline: every answer, to anything, comes well within it.
DEADLINE_S = 5.0


def test_every_endpoint_fuzzed_from_its_openapi_answers_below_500_in_time(
    server: Server,
) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    serve_model(server, "good")
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    paths = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        paths.add(operation.path)

        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            started = time.monotonic()
            response = case.call(base_url=server.url, timeout=DEADLINE_S)
            assert time.monotonic() - started < DEADLINE_S
            assert response.status_code < 500, (case.path, case.body, response.text)

        run()
    wanted = {"/predict", "/invocations", "/v2/models/{name}/infer", "/health"}
    wanted |= {"/ready", "/metrics", "/v2/health/ready"}
    assert wanted <= paths, paths


def test_arbitrary_bodies_to_every_prediction_endpoint_answer_4xx_in_time(
    server: Server,
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    serve_model(server, "good")
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    values = st.recursive(
        scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=40
    )
    # Bodies near a valid one as well as anything at all: a record with one field replaced.
    records = st.builds(lambda k, v: {**WINE[0], k: v}, st.sampled_from(list(WINE[0])), values)
    bodies = st.one_of(
        values.map(lambda v: json.dumps(v).encode()),
        records.map(lambda r: json.dumps(r).encode()),
        records.map(lambda r: json.dumps({"dataframe_records": [r]}).encode()),
        records.map(lambda r: json.dumps(v2_body([r])).encode()),
        st.binary(max_size=200),
    )
    paths = st.sampled_from(["/predict", "/invocations", V2_INFER])
    types = st.sampled_from(["application/json", "text/csv", "application/octet-stream"])

    with httpx.Client(base_url=server.url, timeout=DEADLINE_S) as client:

        @settings(
            max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(path=paths, body=bodies, content_type=types)
        def run(path: str, body: bytes, content_type: str) -> None:
            started = time.monotonic()
            response = client.post(path, content=body, headers={"content-type": content_type})
            assert time.monotonic() - started < DEADLINE_S
            assert response.status_code < 500, (path, body[:300], response.text[:300])

        run()


def test_a_challenger_that_keeps_failing_leaves_the_ab_split(project: Path, tmp_path: Path) -> None:
    import numpy as np

    from mlops_runtime.serve.ab import CHALLENGER, CHAMPION
    from mlops_runtime.serve.batching import ModelFailure
    from mlops_runtime.serve.core import Served, ServingCore
    from mlops_runtime.serve.model_source import LocalSource, ModelRef, prepare

    config = json.loads((project / "config.json").read_text(encoding="utf-8"))
    contract = json.loads((project / "contract.json").read_text(encoding="utf-8"))
    config["serving"]["ab_test"] = {"challenger_weight": 0.5, "sticky_key": None}
    core = ServingCore(
        config,
        contract,
        source=LocalSource(config, tmp_path / "model.joblib"),
        environ={"MLOPS_PREDICTION_LOG_DIR": str(tmp_path / "log")},
        root=tmp_path,
    )
    write_model(project, "good")  # imports the model module
    faults = sys.modules["faults"]

    def served(arm: str, kind: str, version: str) -> Served:
        ref = ModelRef("wine", version, None, "memory")
        model = prepare(ref, faults.Faulty(kind), config, contract)
        return Served(arm, model, core.base_door.with_known_categories(model.known_categories))

    def arms() -> set[str]:
        return {core.pick({}, {}, f"request-{i}").arm for i in range(200)}

    core.install(
        {CHAMPION: served(CHAMPION, "good", "1"), CHALLENGER: served(CHALLENGER, "runtime", "2")}
    )
    assert arms() == {CHAMPION, CHALLENGER}
    assert core.challenger is not None
    rows = np.zeros((1, len(core.numeric))), np.empty((1, len(core.categorical)), dtype=object)
    for _ in range(core.unready_after):
        with pytest.raises(ModelFailure):
            core._run_model(core.challenger.model, *rows)
    assert arms() == {CHAMPION}
    assert core.unready() is None  # the champion serves: the server stays ready
    core.install({CHAMPION: core.champion, CHALLENGER: served(CHALLENGER, "good", "3")})
    assert arms() == {CHAMPION, CHALLENGER}
    core.batch_executor.shutdown()

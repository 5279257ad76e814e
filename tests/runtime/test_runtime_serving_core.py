"""The server's parts without a server: the serving core knows no HTTP, and the app answers
the core's refusals and unknown routes with the statuses and bodies docs/serving.md gives.

In process, over ASGI, with the level-0 project of generated/ and no model file: what every
server shows before any training (503 with the reason, 404/405/415 for the request itself).
"""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlops_runtime.serve.app import ServingApp
from mlops_runtime.serve.core import NotServing, UnknownVersion
from mlops_runtime.serve.model_source import LocalSource

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "generated" / "wine"  # level 0: a model file, no registry
SERVE = ROOT / "runtime" / "mlops_runtime" / "serve"


def test_the_core_imports_nothing_that_speaks_http() -> None:
    tree = ast.parse((SERVE / "core.py").read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    http = {"exchange", "app", "native_api", "mlflow_invocations", "open_inference"}
    http |= {"system_routes"}
    assert not {m for m in imported if m.rsplit(".", 1)[-1] in http}, imported
    assert not imported & {"orjson", "uvicorn", "starlette"}


Answer = tuple[int, dict[bytes, bytes], bytes]


async def _request(
    app: ServingApp, method: str, path: str, body: bytes = b"", headers: Any = ()
) -> Answer:
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    await app(scope, receive, send)
    start, payload = sent
    return start["status"], dict(start["headers"]), payload["body"]


def _answers(tmp_path: Path, requests: list[tuple[Any, ...]]) -> list[Answer]:
    config = json.loads((PROJECT / "config.json").read_text(encoding="utf-8"))
    contract = json.loads((PROJECT / "contract.json").read_text(encoding="utf-8"))
    app = ServingApp(
        config,
        contract,
        source=LocalSource(config, tmp_path / "model.joblib"),
        environ={
            "MLOPS_PREDICTION_LOG_DIR": str(tmp_path / "log"),
            "MLOPS_RELOAD_INTERVAL_S": "60",
        },
        root=tmp_path,
    )

    async def run() -> list[Answer]:
        await app.core.startup()
        try:
            with pytest.raises(NotServing):
                app.core.pick({}, {}, "r")
            with pytest.raises(NotServing):
                app.core.by_version("1")
            return [await _request(app, *r) for r in requests]
        finally:
            await app.core.shutdown()

    return asyncio.run(run())


def test_before_any_model_every_route_answers_as_documented(tmp_path: Path) -> None:
    record = orjson.dumps({"alcohol": 13.0})
    sent_id = [(b"x-request-id", b"abc-1")]
    tensor = {"name": "alcohol", "datatype": "FP64", "shape": [1], "data": [13.0]}
    (
        predict,
        invocations,
        infer,
        ready,
        v2_ready,
        version_ready,
        metadata,
        ping,
        health,
        nope,
        wrong_method,
        not_json,
        malformed,
    ) = _answers(
        tmp_path,
        [
            ("POST", "/predict", record, sent_id),
            ("POST", "/invocations", b'{"dataframe_records": [{}]}'),
            ("POST", "/v2/models/wine/infer", orjson.dumps({"inputs": [tensor]})),
            ("GET", "/ready"),
            ("GET", "/v2/health/ready"),
            ("GET", "/v2/models/wine/versions/7/ready"),
            ("GET", "/v2/models/wine/versions/7"),
            ("GET", "/ping"),
            ("GET", "/health"),
            ("GET", "/nope"),
            ("GET", "/predict"),
            ("POST", "/invocations", b"a,b\n1,2\n", [(b"content-type", b"text/csv")]),
            ("POST", "/predict", b"{"),
        ],
    )
    status, headers, body = predict
    answer = orjson.loads(body)
    assert status == 503 and headers[b"x-request-id"] == b"abc-1"
    assert list(answer) == ["error", "request_id", "detail"]
    assert answer["error"] == "no model loaded yet" and answer["request_id"] == "abc-1"
    detail = answer["detail"]
    assert detail.startswith("no model to serve yet: ") and "train one with" in detail
    assert b"x-model-version" not in headers
    for status, _, body in (invocations, infer, metadata):
        assert status == 503 and orjson.loads(body)["detail"] == detail
    for status, _, body in (ready, v2_ready):
        assert status == 503 and orjson.loads(body) == {"ready": False, "detail": detail}
    assert version_ready[0] == 503
    assert orjson.loads(version_ready[2]) == {"name": "wine", "ready": False, "detail": detail}
    assert ping[0] == 503 and ping[2] == detail.encode() + b"\n"
    assert ping[1][b"content-type"] == b"text/plain"
    status, _, body = health
    assert status == 200
    assert orjson.loads(body) == {"status": "ok", "ready": False, "models": [], "detail": detail}
    assert nope[0] == 404 and orjson.loads(nope[2])["error"] == "no endpoint /nope"
    assert wrong_method[0] == 405
    assert not_json[0] == 415
    assert malformed[0] == 400 and orjson.loads(malformed[2])["error"].startswith("malformed JSON")


def test_the_core_refusals_carry_what_the_answer_needs() -> None:
    assert NotServing("why").extra == {"detail": "why"}
    assert UnknownVersion("3").message == "version '3' is not being served"

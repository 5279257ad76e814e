"""One HTTP exchange, whatever the protocol: the request's context, the reply, the errors that
become a 4xx, and the JSON encoder every answer goes through."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from mlops_runtime.serve.core import Served

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class BadRequest(Exception):
    """A request that cannot be read at all: 400 (or `status`)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class HttpError(Exception):
    """A request the server refuses: `status`, a message and more fields for the body."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


@dataclass
class Reply:
    status: int
    body: bytes
    endpoint: str  # the route's template: the metrics' and the prediction log's label
    served: Served | None = None
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] | None = None


# A route: the request's context to the reply.
Handler = Callable[["Context"], Awaitable[Reply]]
Routes = dict[tuple[str, str], Handler]


def model_headers(served: Served) -> list[tuple[bytes, bytes]]:
    """X-Model-Name, X-Model-Version, X-Model-Run-Id and X-AB-Arm of the model answering."""
    ref = served.model.ref
    return [
        (b"x-model-name", ref.name.encode("latin-1", "replace")),
        (b"x-model-version", ref.version.encode("latin-1", "replace")),
        (b"x-model-run-id", (ref.run_id or "").encode("latin-1", "replace")),
        (b"x-ab-arm", served.arm.encode()),
    ]


class Context:
    """Per-request state: headers, request id, body reader with the size limit."""

    __slots__ = ("_receive", "headers", "max_body", "method", "request_id", "served", "started")

    def __init__(self, scope: Scope, receive: Receive, max_body: int):
        self.started = time.perf_counter()
        self.method: str = scope["method"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self._receive = receive
        self.max_body = max_body
        self.served: Served | None = None
        given = self.headers.get(b"x-request-id")
        text = given.decode("latin-1") if given else ""
        self.request_id = text if text and _REQUEST_ID.fullmatch(text) else uuid.uuid4().hex

    async def body(self) -> bytes:
        length = self.headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body:
                    raise BadRequest(f"body larger than {self.max_body} bytes", 413)
            except ValueError:
                raise BadRequest("invalid Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected", 499)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BadRequest(f"body larger than {self.max_body} bytes", 413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def json(body: bytes) -> Any:
        if not body:
            raise BadRequest("empty body: send JSON")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None

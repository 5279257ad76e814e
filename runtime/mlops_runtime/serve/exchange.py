"""One HTTP exchange, whatever the protocol: the request's context, the reply, the errors that
become a 4xx, and the JSON encoder every answer goes through."""

from __future__ import annotations

from typing import Any

import orjson


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

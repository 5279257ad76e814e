"""Deadlines for reading a request, below the app, in uvicorn's httptools protocol.

uvicorn waits for a request's headers, and the app for its body, as long as the client likes:
a client that connects and never finishes its request (slowloris) holds a connection, and
enough of them hold every file descriptor the server has. Each connection here carries one
deadline: `header_s` from connecting, or from a request's first byte, until its headers are in;
then `body_s` until its body is in; none while the app answers, nor while the connection
idles between requests (uvicorn's keep-alive timeout closes those). A sweep a few times a
second closes the connections past their deadline, with a 408 when no answer has begun; an
app waiting for that body then reads a disconnect and returns.

A deadline is one float written on the parser's events, so a request pays no timer of its own.
The limits are class attributes set by `configure` from config.json's serving.limits, in the
process that serves (every worker builds its app, and so configures, before it listens).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMED_OUT = b'{"error":"request not received in time"}'
_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_TIMED_OUT)).encode() + b"\r\nconnection: close\r\n\r\n"
) + _TIMED_OUT


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_s = 5.0
    body_s = 10.0
    sweep_s = 1.0
    # Connection sets (one per server) whose sweep is scheduled, by id: sets are not hashable.
    _sweeping: set[int] = set()  # noqa: RUF012 - shared on purpose: one sweep per server

    deadline: float | None = None

    @classmethod
    def configure(cls, header_s: float, body_s: float) -> None:
        cls.header_s = float(header_s)
        cls.body_s = float(body_s)
        cls.sweep_s = min(1.0, max(0.05, min(cls.header_s, cls.body_s) / 4))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.header_s
        key = id(self.connections)
        if key not in self._sweeping:
            self._sweeping.add(key)
            self.loop.call_later(self.sweep_s, _sweep, self.loop, self.connections, key)

    def on_message_begin(self) -> None:
        self.deadline = self.loop.time() + self.header_s
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.deadline = self.loop.time() + self.body_s
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.deadline = None
        super().on_message_complete()

    def timed_out(self) -> None:
        self.deadline = None
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            transport.write(_408)
        transport.close()


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], key: int) -> None:
    now = loop.time()
    for connection in list(connections):
        deadline = getattr(connection, "deadline", None)
        if deadline is not None and now > deadline:
            connection.timed_out()
    if connections:
        loop.call_later(GuardedHttpToolsProtocol.sweep_s, _sweep, loop, connections, key)
    else:
        GuardedHttpToolsProtocol._sweeping.discard(key)


def configure(config: Mapping[str, Any]) -> None:
    """The read deadlines of config.json's serving.limits, for this process's connections."""
    limits = (config.get("serving") or {}).get("limits") or {}
    GuardedHttpToolsProtocol.configure(limits.get("header_s", 5), limits.get("body_s", 10))

"""Serving by entity key: a request's missing features looked up in the online store.

A project whose config.json has `feature_store` accepts records that carry only their entity
keys (and the request-time features): before the contract at the door, each record is
assembled by `features.store.online.OnlineFeatures` (its views' features read from Feast's
online store, its on-demand features computed), so a looked-up value that breaks the contract
is refused like a value the client sent. Values a record carries itself win; a record that
carries every feature is not assembled at all.

Concurrent small requests share one online read: like the model's micro-batcher, the rows
queued while a turn of the event loop brings new requests are looked up together, on the loop.
A read of the embedded SQLite store costs ~0.05 ms for one customer and ~0.02 ms for each
further one, so under load one read for 16 requests costs what seven separate reads would.
Requests of MAX_COALESCED_ROWS rows or more are read on a thread of their own instead.

Why a record cannot be served is a 4xx naming the key (`LookupRefused`), never a 5xx:
422 a record lacks its join key (or it has the wrong type), 404 the online store has no row
for the entity, 409 a view's values are older than its ttl under `stale: reject`. Under
`stale: serve` such a record is scored and its stale views are reported with its prediction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_runtime.serve.record_validation import MAX_REPORTED_ERRORS, clip
from mlops_runtime.serve.rows import Rows

if TYPE_CHECKING:
    from mlops_runtime.features.store.online import Assembled, OnlineFeatures

log = logging.getLogger("mlops_runtime.serve.stage")

MAX_COALESCED_ROWS = 256  # one online read serves at most this many queued rows
_MAX_NAMED = 5  # keys spelled out in an error message; the body lists up to MAX_REPORTED_ERRORS


class LookupRefused(Exception):
    """Records the online store cannot complete: an HTTP status, a message, details."""

    def __init__(self, status: int, message: str, extra: dict[str, Any]):
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Completed:
    """A request's rows as the model will see them, and each row's stale views (None when
    nothing was assembled)."""

    rows: Rows
    stale: list[list[str]] | None
    keys: tuple[str, ...]  # the entity keys looked up by (none when nothing was assembled)


class FeatureLookup:
    """The online store of a serving app: opened once at startup, read by every request."""

    def __init__(
        self,
        config: Mapping[str, Any],
        root: Path,
        on_read: Callable[[int, float, Counter[str]], None] | None = None,
    ):
        """`on_read(rows, seconds, stale rows by view)` is told of every online read."""
        fs = config["feature_store"]
        self.on_read = on_read
        self.config = config
        self.root = root
        self.reject_stale = fs.get("stale", "serve") == "reject"
        self.ttl_s = {v["name"]: v["ttl_s"] for v in fs["views"]}
        self.view_keys = {v["name"]: v["join_key"] for v in fs["views"]}
        self.join_keys = tuple(dict.fromkeys(v["join_key"] for v in fs["views"]))
        self.supplied = frozenset(
            [f for v in fs["views"] for f in v["features"]] + list(fs["on_demand"])
        )
        self.online: OnlineFeatures | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="feature-lookup")
        self._queue: list[tuple[list[dict[str, Any]], asyncio.Future[list[Assembled]]]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and read it once (blocking, run in a thread: seconds when the store
        is read through Feast, which is imported then; milliseconds for the embedded one)."""
        from mlops_runtime.features.store.online import OnlineFeatures

        online = OnlineFeatures(self.config, self.root)
        online.warm_up()
        self.online = online
        log.warning("online feature store open: %s", ", ".join(self.ttl_s))

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    # -- the request path ---------------------------------------------------------------------

    def needs_assembly(self, rows: Rows) -> bool:
        if rows.columns is not None:
            return not self.supplied <= rows.columns.keys()
        supplied = self.supplied
        return any(
            type(record) is dict and not supplied <= record.keys() for record in rows.records or ()
        )

    async def complete(self, rows: Rows) -> Completed:
        """The rows with their features filled in, or LookupRefused."""
        if not self.needs_assembly(rows):
            return Completed(rows, None, ())
        if self.online is None:
            raise LookupRefused(503, "the online feature store is not open yet", {})
        records = rows.as_records()
        objects = [i for i, record in enumerate(records) if type(record) is dict]
        assembled = await self._assemble([records[i] for i in objects])
        self._refuse(objects, assembled)
        out: list[Any] = list(records)
        stale: list[list[str]] = [[] for _ in records]
        for i, result in zip(objects, assembled, strict=True):
            out[i] = result.row
            stale[i] = result.stale
        return Completed(Rows(len(out), records=out), stale, self.join_keys)

    async def _assemble(self, records: list[dict[str, Any]]) -> list[Assembled]:
        loop = asyncio.get_running_loop()
        if len(records) >= MAX_COALESCED_ROWS:
            # Milliseconds of reading: off the event loop, which keeps serving meanwhile.
            return await loop.run_in_executor(self._executor, self._read, records)
        future: asyncio.Future[list[Assembled]] = loop.create_future()
        self._queue.append((records, future))
        if len(self._queue) == 1:
            loop.call_soon(self._dispatch, loop, 1)
        return await future

    def _dispatch(self, loop: asyncio.AbstractEventLoop, seen: int) -> None:
        """Read for the queued rows once a loop turn brought no new request.

        The read runs on the event loop itself, as the model does (batching.py): in a thread
        it took up to ten times as long under load, waiting for the interpreter lock the
        loop held while parsing requests (16 connections: 1.2 ms on the loop, 10 ms in a
        thread, for the same 16 rows), and requests arriving meanwhile form the next read.
        """
        queued = len(self._queue)
        if queued > seen and sum(len(r) for r, _ in self._queue) < MAX_COALESCED_ROWS:
            loop.call_soon(self._dispatch, loop, queued)  # still arriving
            return
        batch, self._queue = self._queue, []
        rows = [record for records, _ in batch for record in records]
        error: LookupRefused | None = None
        results: list[Assembled] = []
        try:
            results = self._read(rows)
        except LookupRefused as refused:
            error = refused
        at = 0
        for records, future in batch:
            mine = results[at : at + len(records)]
            at += len(records)
            if future.done():
                continue  # the client went away
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine)

    def _read(self, rows: list[dict[str, Any]]) -> list[Assembled]:
        assert self.online is not None
        started = time.perf_counter()
        try:
            assembled = self.online.assemble(rows)
        except Exception as exc:  # noqa: BLE001 - a store that cannot be read is a 503
            log.warning("online feature store read failed:\n%s", traceback.format_exc())
            raise LookupRefused(
                503, f"the online feature store cannot be read: {type(exc).__name__}", {}
            ) from None
        if self.on_read is not None:
            stale = Counter(view for a in assembled if a.stale for view in a.stale)
            self.on_read(len(rows), time.perf_counter() - started, stale)
        return assembled

    # -- refusals -----------------------------------------------------------------------------

    def _refuse(self, index: Sequence[int], assembled: Sequence[Assembled]) -> None:
        """Raise for the first kind of problem any record has: keys, then entities, then
        (under stale: reject) staleness; each error lists every record with that problem."""
        keyless = [(i, a) for i, a in zip(index, assembled, strict=True) if a.missing_key]
        if keyless:
            raise _keyless(keyless)
        unknown = [(i, a) for i, a in zip(index, assembled, strict=True) if a.missing]
        if unknown:
            raise _unknown(unknown)
        if self.reject_stale:
            stale = [(i, a) for i, a in zip(index, assembled, strict=True) if a.stale]
            if stale:
                raise self._stale(stale)

    def _stale(self, stale: list[tuple[int, Assembled]]) -> LookupRefused:
        items = [
            {
                "record": i,
                "view": view,
                "key": self.view_keys[view],
                "value": a.row.get(self.view_keys[view]),
                "ttl_s": self.ttl_s[view],
            }
            for i, a in stale
            for view in a.stale
        ]
        named = ", ".join(f"view {it['view']} for {_spelled(it)}" for it in items[:_MAX_NAMED])
        return LookupRefused(
            409,
            f"stale features (older than the view's ttl): {named}{_more(len(items))}",
            {"stale": items[:MAX_REPORTED_ERRORS], "total": len(items)},
        )


def _keyless(found: list[tuple[int, Assembled]]) -> LookupRefused:
    violations = []
    for i, result in found:
        key = str(result.missing_key)
        value = result.row.get(key)
        message = (
            f"{key} is missing: a record without every feature needs its entity key"
            if key not in result.row
            else f"{key} is not a valid entity key"
        )
        violations.append(
            {
                "record": i,
                "column": key,
                "check": "join_key",
                "value": clip(value),
                "message": message,
            }
        )
    keys = sorted({str(result.missing_key) for _, result in found})
    return LookupRefused(
        422,
        f"entity key {', '.join(keys)} missing or invalid",
        {"violations": violations[:MAX_REPORTED_ERRORS], "total": len(violations)},
    )


def _unknown(found: list[tuple[int, Assembled]]) -> LookupRefused:
    items = []
    for i, result in found:
        assert result.missing is not None
        key, value = result.missing
        items.append({"record": i, "key": key, "value": value})
    named = ", ".join(_spelled(it) for it in items[:_MAX_NAMED])
    return LookupRefused(
        404,
        f"no online features for {named}{_more(len(items))}",
        {"missing": items[:MAX_REPORTED_ERRORS], "total": len(items)},
    )


def _spelled(item: Mapping[str, Any]) -> str:
    return f"{item['key']}={item['value']}"


def _more(total: int) -> str:
    return f" and {total - _MAX_NAMED} more" if total > _MAX_NAMED else ""

"""Counts Plivo's callbacks by result, queue-wide in Redis, in both roles: the webhooks role answers most of them on
Cloud Run and serves no metrics, so the count has to be shared (metrics/tally.py).

Pure ASGI around the app: the result is `accepted` for a 2xx, else the `error` field of the webhook's answer
(signature_missing, replayed, …; see tracking/webhooks.py), so the handler itself needs no change.

An accepted callback is signed and applied to a call (itself several writes), and can be accepted once: it is
counted in Redis at once. A refused one may be forged, and a flood of forgeries must not become a flood of Redis
writes: refusals are counted in this process (a dict of at most events × results entries) and added to Redis in
one write at most every FLUSH_EVERY_S per process, by a single pending task; no refused request waits for it.
Counts that could not be written (Redis unavailable, or refused for its eviction policy) stay pending for the next
flush; the runtime flushes what is left when it shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callqueue.callback_urls import HANGUP_PATH, RING_PATH
from callqueue.metrics.catalog import CALLBACK_RESULTS, OTHER
from callqueue.metrics.tally import add_callbacks, tally_callback
from callqueue.store.keys import Keys

EVENTS = {RING_PATH: "ring", HANGUP_PATH: "hangup"}
ACCEPTED = "accepted"
FLUSH_EVERY_S = 1.0


def callback_result(status: int, body: bytes) -> str:
    if 200 <= status < 300:
        return ACCEPTED
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return OTHER
    return error if error in CALLBACK_RESULTS else OTHER


@dataclass
class RefusedCallbacks:
    """Refused callbacks counted in this process and written to Redis coalesced; one per Runtime."""

    every_s: float = FLUSH_EVERY_S
    clock: Callable[[], float] = time.monotonic
    pending: Counter[tuple[str, str]] = field(default_factory=Counter)
    hold: asyncio.Event | None = None  # set while Redis is refused for its eviction policy: counts stay pending
    _flushed_at: float | None = None
    _task: asyncio.Task[None] | None = None

    def add(self, redis: Redis, keys: Keys, event: str, result: str) -> None:
        """Count one refusal; make sure one flush is on its way (at once if none ran in the last `every_s`)."""
        self.pending[(event, result)] += 1
        if self._task is None or self._task.done():
            since = None if self._flushed_at is None else self.clock() - self._flushed_at
            delay = 0.0 if since is None else max(0.0, self.every_s - since)
            self._task = asyncio.create_task(self._flush_after(redis, keys, delay), name="callback-tally")

    async def _flush_after(self, redis: Redis, keys: Keys, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush(redis, keys)

    async def flush(self, redis: Redis, keys: Keys) -> None:
        """Write what is pending in one step; on failure keep it for the next flush."""
        self._flushed_at = self.clock()
        if self.hold is not None and self.hold.is_set():
            return
        counts, self.pending = self.pending, Counter()
        if not counts:
            return
        try:
            await add_callbacks(redis, keys, counts)
        except BaseException as exc:
            self.pending.update(counts)  # bounded: the same few (event, result) keys
            if not isinstance(exc, Exception):
                raise  # cancelled (shutdown): `close` writes what is pending

    async def close(self, redis: Redis, keys: Keys) -> None:
        """At shutdown: no flush left pending in a task, one last write of what remains (best effort)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(redis, keys)


class CallbackTally:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = EVENTS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if event is None:
            await self.app(scope, receive, send)
            return
        status, chunks = 0, []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is None or not status:
            return
        result = callback_result(status, b"".join(chunks))
        if result != ACCEPTED:
            runtime.refused_callbacks.add(runtime.redis, runtime.store.keys, event, result)
            return
        with contextlib.suppress(Exception):  # a tally must never fail a callback that was answered
            await tally_callback(runtime.redis, runtime.store.keys, event, result)

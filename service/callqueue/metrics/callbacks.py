"""Counts Plivo's callbacks by result in Redis, in both roles: the webhooks role answers most of them on Cloud Run
and serves no metrics, so the count has to be queue-wide (metrics/tally.py).

Pure ASGI around the app: the result is `accepted` for a 2xx, else the `error` field of the webhook's answer
(signature_missing, nonce_replayed, …; see tracking/webhooks.py), so the handler itself needs no change.
"""

from __future__ import annotations

import contextlib
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callqueue.callback_urls import HANGUP_PATH, RING_PATH
from callqueue.metrics.catalog import CALLBACK_RESULTS, OTHER
from callqueue.metrics.tally import tally_callback

log = logging.getLogger("callqueue.metrics")
EVENTS = {RING_PATH: "ring", HANGUP_PATH: "hangup"}


def callback_result(status: int, body: bytes) -> str:
    if 200 <= status < 300:
        return "accepted"
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return OTHER
    return error if error in CALLBACK_RESULTS else OTHER


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
        with contextlib.suppress(Exception):  # a tally must never fail a callback that was answered
            await tally_callback(runtime.redis, runtime.store.keys, event, callback_result(status, b"".join(chunks)))

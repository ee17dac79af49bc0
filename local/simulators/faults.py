"""Scripted failures for the simulators' public endpoints: error, slow, malformed and cut-off answers.

One `FaultBook` per app holds rules added over `POST /_sim/faults`; `FaultMiddleware` (pure ASGI, so it can cut
a connection mid-answer) applies the first matching rule to each request outside `/_sim/`.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ErrorBody = Callable[[int], dict[str, Any]]


class FaultRule(BaseModel):
    """One scripted fault; it applies to the next `count` requests whose path contains `path_contains`
    (default: the app's own default, e.g. `/start` on the agent, every public path elsewhere).

    `process` says whether the request is really handled (e.g. the call placed) before the fault answer
    replaces the real one. It defaults to false when `status` is given and true otherwise (slow, malformed and
    dropped answers happen after the work was done: the "timed out but the call was placed" case).
    """

    model_config = ConfigDict(extra="forbid")

    status: int | None = None
    delay: float | None = Field(default=None, ge=0)
    body: str | None = None
    drop: bool = False
    process: bool | None = None
    count: int = Field(default=1, ge=1)
    path_contains: str | None = None
    retry_after: float | None = Field(default=None, ge=0)

    def processes(self) -> bool:
        return self.process if self.process is not None else self.status is None


class FaultBook:
    """The pending fault rules of one app, consumed in the order they were added."""

    def __init__(self, default_path: str = "") -> None:
        self.default_path = default_path
        self.rules: list[FaultRule] = []
        self.applied: list[dict[str, Any]] = []

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def take(self, path: str) -> FaultRule | None:
        for rule in self.rules:
            if (rule.path_contains if rule.path_contains is not None else self.default_path) in path:
                rule.count -= 1
                if rule.count <= 0:
                    self.rules.remove(rule)
                self.applied.append({"path": path, **rule.model_dump(exclude={"count"})})
                return rule
        return None

    def reset(self) -> None:
        self.rules.clear()
        self.applied.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"pending": [r.model_dump() for r in self.rules], "applied": list(self.applied)}


async def send_json(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete JSON answer from pure ASGI code."""
    await send_raw(send, status, json.dumps(body).encode(), b"application/json", headers)


async def send_raw(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    """Applies the app's `FaultBook` to every HTTP request outside `/_sim/`."""

    def __init__(self, app: ASGIApp, book: FaultBook, error_body: ErrorBody) -> None:
        self.app = app
        self.book = book
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        rule = self.book.take(path) if scope["type"] == "http" and not path.startswith("/_sim/") else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        scope["sim.fault"] = rule.model_dump(exclude={"count"})  # lets an outer recorder note the fault
        if not rule.processes():
            if rule.delay:
                await asyncio.sleep(rule.delay)
            await self._answer(rule, send)
            return
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.drop:
            # Start an answer and stop halfway: the client sees the connection cut after the work was done.
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
            await send(start)
            await send({"type": "http.response.body", "body": b'{"call_', "more_body": True})
            return
        if rule.body is not None or rule.status is not None:
            await self._answer(rule, send)
            return
        for message in captured:
            await send(message)

    async def _answer(self, rule: FaultRule, send: Send) -> None:
        status = rule.status or 200
        headers: list[tuple[bytes, bytes]] = []
        if status == 429:
            headers.append((b"retry-after", str(math.ceil(rule.retry_after or 1)).encode()))
        if rule.body is not None:
            await send_raw(send, status, rule.body.encode(), b"text/html; charset=utf-8", headers)
        else:
            await send_json(send, status, self.error_body(status), headers)

"""Limits on a request body: MAX_BODY_BYTES (413, refused before it is read into memory; MAX_BULK_BODY_BYTES for
bulk enqueue) and CLIENT_BODY_TIMEOUT (408: a client that trickles its body cannot hold a request open; the
headers' own limit is in serving.py)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


def _literal_prefix(pattern: str) -> str:
    """The characters every match of an anchored pattern starts with (up to its first special character)."""
    text = pattern.removeprefix("^")
    if "|" in text:  # an alternative may start otherwise
        return ""
    end = next((i for i, c in enumerate(text) if c in "\\.^$*+?{}[]|()"), len(text))
    if end < len(text) and text[end] in "*?{":  # the character before may occur zero times
        end -= 1
    return text[: max(end, 0)]


class BodyLimitMiddleware:
    """`larger` maps path patterns to their own limit and advice (bulk enqueue takes megabytes)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        read_timeout_s: float = 15.0,
        larger: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.larger = [(re.compile(pattern), limit, advice) for pattern, (limit, advice) in (larger or {}).items()]
        # The literal start of each pattern (`^/api/campaigns/[^/]+/calls$` → `/api/campaigns/`): a path that starts
        # with none of them matches none of them.
        self._prefixes = tuple(_literal_prefix(pattern) for pattern in (larger or {}))

    def _limit(self, path: str) -> tuple[int, str]:
        if not path.startswith(self._prefixes):  # most paths (every enqueue) skip the patterns
            return self.max_bytes, "send a smaller call_config"
        for pattern, limit, advice in self.larger:
            if pattern.match(path):
                return limit, advice
        return self.max_bytes, "send a smaller call_config"

    async def _refuse(self, send: Send, status: int, error: str, message: str, rule: str) -> None:
        body = json.dumps({"error": error, "message": message, "errors": [{"field": "body", "rule": rule}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 408:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send, max_bytes: int, advice: str) -> None:
        await self._refuse(
            send,
            413,
            "payload_too_large",
            f"request body exceeds {max_bytes} bytes; {advice}",
            f"at most {max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, advice = self._limit(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await self._too_large(send, max_bytes, advice)
                return
        seen = 0
        body_done = expired = False
        timer: asyncio.TimerHandle | None = None
        waiter: asyncio.Task[Any] | None = None  # the task waiting on the body right now, if any

        def expire() -> None:
            nonlocal expired
            expired = True
            if waiter is not None:
                waiter.cancel()  # a timeout of the wait on the body, never of anything else the app does

        async def limited_receive() -> Message:
            # One timer per request for the whole body (armed at the first read, cancelled with the body's last
            # part), not an asyncio.timeout around every read: the same deadline for less work per request.
            nonlocal seen, body_done, timer, waiter
            if body_done:  # after the body, the app may wait for a disconnect: no deadline for that
                return await receive()
            if timer is None:
                loop = asyncio.get_running_loop()
                timer = loop.call_at(loop.time() + self.read_timeout_s, expire)
            waiter = task = asyncio.current_task()
            cancelling = task.cancelling() if task is not None else 0
            try:
                if expired:  # the deadline passed between two reads
                    raise BodyTooSlow
                message = await receive()
            except asyncio.CancelledError:
                if expired and task is not None and task.uncancel() <= cancelling:
                    raise BodyTooSlow from None
                raise
            finally:
                waiter = None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if body_done:
                    timer.cancel()
                if seen > max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._too_large(send, max_bytes, advice)
        except BodyTooSlow:
            await self._refuse(
                send,
                408,
                "request_timeout",
                f"request body not received within CLIENT_BODY_TIMEOUT={self.read_timeout_s:g} s; send it at once",
                f"within {self.read_timeout_s:g} s",
            )
        finally:
            if timer is not None:
                timer.cancel()

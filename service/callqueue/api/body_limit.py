"""Refuses request bodies above MAX_BODY_BYTES (MAX_BULK_BODY_BYTES for bulk enqueue) before they are read."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """`larger` maps path patterns to their own limit and advice (bulk enqueue takes megabytes)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), limit, advice) for pattern, (limit, advice) in (larger or {}).items()]

    def _limit(self, path: str) -> tuple[int, str]:
        for pattern, limit, advice in self.larger:
            if pattern.match(path):
                return limit, advice
        return self.max_bytes, "send a smaller call_config"

    async def _refuse(self, send: Send, max_bytes: int, advice: str) -> None:
        body = json.dumps(
            {
                "error": "payload_too_large",
                "message": f"request body exceeds {max_bytes} bytes; {advice}",
                "errors": [{"field": "body", "rule": f"at most {max_bytes} bytes"}],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, advice = self._limit(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await self._refuse(send, max_bytes, advice)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._refuse(send, max_bytes, advice)

"""Limits on a request body: MAX_BODY_BYTES (413, refused before it is read into memory) and CLIENT_BODY_TIMEOUT
(408: a client that trickles its body cannot hold a request open; the headers' own limit is in serving.py)."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def _refuse(self, send: Send, status: int, error: str, message: str, rule: str) -> None:
        body = json.dumps({"error": error, "message": message, "errors": [{"field": "body", "rule": rule}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 408:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _too_large(self, send: Send) -> None:
        await self._refuse(
            send,
            413,
            "payload_too_large",
            f"request body exceeds {self.max_bytes} bytes; send a smaller call_config",
            f"at most {self.max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        seen = 0
        body_done = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal seen, body_done, deadline
            if body_done:  # after the body, the app may wait for a disconnect: no deadline for that
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline if deadline is not None else loop.time() + self.read_timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._too_large(send)
        except BodyTooSlow:
            await self._refuse(
                send,
                408,
                "request_timeout",
                f"request body not received within CLIENT_BODY_TIMEOUT={self.read_timeout_s:g} s; send it at once",
                f"within {self.read_timeout_s:g} s",
            )

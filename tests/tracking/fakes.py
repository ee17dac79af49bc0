"""A Plivo REST client and an agent whose answers a test sets, recording every request (tracking decisions)."""

from __future__ import annotations

from typing import Any

from callqueue.clients.agent import AgentCallStatus


class FakePlivo:
    """What Plivo answers, set by the test; every request is recorded as (method, argument)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.queued: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.cdrs: dict[str, dict[str, Any]] = {}

    async def queued_call(self, request_uuid: str) -> dict[str, Any] | None:
        self.requests.append(("queued_call", request_uuid))
        return self.queued.get(request_uuid)

    async def live_call(self, call_uuid: str) -> dict[str, Any] | None:
        self.requests.append(("live_call", call_uuid))
        return self.live.get(call_uuid)

    async def call_detail(self, call_uuid: str) -> dict[str, Any] | None:
        self.requests.append(("call_detail", call_uuid))
        return self.cdrs.get(call_uuid)

    async def find_calls(self, to_number: str, since: Any, limit: int = 20) -> list[dict[str, Any]]:
        self.requests.append(("find_calls", to_number))
        return []

    async def live_call_uuids(self) -> list[str]:
        self.requests.append(("live_call_uuids", ""))
        return list(self.live)

    async def cancel_request(self, request_uuid: str) -> bool:
        self.requests.append(("DELETE Request", request_uuid))
        return self.queued.pop(request_uuid, None) is not None

    async def hangup(self, call_uuid: str) -> bool:
        self.requests.append(("DELETE Call", call_uuid))
        return self.live.pop(call_uuid, None) is not None

    async def stop(self, *, call_uuid: str | None, request_uuid: str | None) -> bool | None:
        if call_uuid:
            return await self.hangup(call_uuid)
        if request_uuid:
            return await self.cancel_request(request_uuid)
        return None

    def methods(self) -> list[str]:
        return [m for m, _ in self.requests]


class FakeAgent:
    def __init__(self) -> None:
        self.known: AgentCallStatus | None = None

    async def status(self, call_id: str) -> AgentCallStatus | None:
        return self.known

"""What the agent simulator knows about its calls: mirrored from the Plivo simulator, optionally streamed to Redis.

A real pipecat agent learns a call's fate from `/answer`, its websocket and its own hang-up handling; the
simulator reads the Plivo simulator's `/_sim/calls/{request_uuid}` instead, which does not count as Plivo REST
traffic (the benchmark's requests-per-call figure stays the queue's own).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

FINAL = frozenset({"completed", "busy", "no_answer", "failed", "canceled"})
# Plivo simulator state -> agent contract status
FROM_PLIVO = {
    "queued": "queued", "initiated": "queued", "ringing": "ringing", "in-progress": "in_progress",
    "completed": "completed", "busy": "busy", "no-answer": "no_answer", "failed": "failed",
    "timeout": "failed", "cancel": "canceled",
}  # fmt: skip


@dataclass
class AgentCall:
    call_id: str
    request_uuid: str
    phone_number: str
    status: str = "queued"
    call_uuid: str | None = None
    duration: int | None = None
    hangup_cause: str | None = None
    recording_url: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "request_uuid": self.request_uuid, "call_uuid": self.call_uuid,
            "status": self.status, "duration": self.duration, "hangup_cause": self.hangup_cause,
            "recording_url": self.recording_url,
        }  # fmt: skip


class StatusMirror:
    """Refreshes `AgentCall`s from the Plivo simulator; with Redis, appends each status change to the stream."""

    def __init__(self, plivo_url: str, http: httpx.AsyncClient, redis_url: str | None, key_prefix: str) -> None:
        self.plivo_url = plivo_url.rstrip("/")
        self.http = http
        self.redis = Redis.from_url(redis_url, decode_responses=True) if redis_url else None
        self.stream = f"{key_prefix}:agent-events"

    async def refresh(self, call: AgentCall) -> None:
        try:
            answer = await self.http.get(f"{self.plivo_url}/_sim/calls/{call.request_uuid}", timeout=2.0)
        except httpx.HTTPError:
            return
        if answer.status_code != 200:
            return
        data = answer.json()
        before = call.status
        call.status = FROM_PLIVO.get(str(data["status"]), call.status)
        call.call_uuid = data.get("call_uuid")
        if call.status in FINAL:
            call.duration = data.get("duration")
            call.hangup_cause = data.get("hangup_cause_name")
            call.recording_url = data.get("recording_url")
        if call.status != before or not call.events:
            await self._emit(call)

    async def _emit(self, call: AgentCall) -> None:
        fields: dict[str, Any] = {"call_id": call.call_id, "status": call.status, "at": time.time(), "source": "agent"}
        for name in ("request_uuid", "call_uuid", "duration", "hangup_cause", "recording_url"):
            value = getattr(call, name)
            if value is not None:
                fields[name] = value
        call.events.append(fields)
        if self.redis is not None:
            await self.redis.xadd(self.stream, {k: str(v) for k, v in fields.items()})

    async def watch(self, call: AgentCall, interval: float) -> None:
        """Announce the dialled call as queued, then poll until it is final (run only when writing to Redis)."""
        await self._emit(call)
        while call.status not in FINAL:
            await self.refresh(call)
            await asyncio.sleep(interval)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

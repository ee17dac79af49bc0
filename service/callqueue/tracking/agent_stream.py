"""Consumes the agent's call events from the Redis stream `{prefix}:agent-events` (docs/contracts.md).

One consumer group ("tracker") shared by every instance, one consumer per instance: each entry is applied once
by some instance, then acknowledged. Entries a dead instance had read but not acknowledged are taken over with
XAUTOCLAIM after CLAIM_IDLE_MS. A bad entry is recorded with its reason and acknowledged; it never stops the loop
(nor does one Redis refuses for a reason other than being unavailable: it would come back forever). Every
CLAIM_EVERY_S the stream is trimmed to about AGENT_EVENTS_KEEP entries, whoever writes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import ResponseError

from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.store.keys import AGENT_EVENTS_KEEP
from callqueue.tracking.apply import apply_pushed_event
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.events import BadEvent, from_agent_entry
from callqueue.tracking.rejections import Rejections

log = logging.getLogger("callqueue.tracking")
GROUP = "tracker"
BLOCK_MS = 1000
COUNT = 100
CLAIM_IDLE_MS = 30_000
CLAIM_EVERY_S = 10.0


class AgentEventConsumer:
    def __init__(self, store: CallStore, cadence: Cadence, consumer: str, rejections: Rejections) -> None:
        self.store = store
        self.cadence = cadence
        self.consumer = consumer
        self.rejections = rejections
        self.stream = store.keys.agent_events

    async def ensure_group(self) -> None:
        try:
            await self.store.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_group()
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while not stop.is_set():
            if loop.time() >= next_claim:
                await self.claim_abandoned()
                await self.store.redis.xtrim(self.stream, maxlen=AGENT_EVENTS_KEEP, approximate=True)
                next_claim = loop.time() + CLAIM_EVERY_S
            try:
                batches = await self.store.redis.xreadgroup(
                    GROUP, self.consumer, {self.stream: ">"}, count=COUNT, block=BLOCK_MS
                )
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted: recreate the group
                    await self.ensure_group()
                    continue
                raise
            for _stream, entries in batches or []:
                await self.handle(entries)

    async def claim_abandoned(self) -> None:
        """Take over entries a vanished consumer read but never acknowledged."""
        start = "0-0"
        while True:
            result = await self.store.redis.xautoclaim(
                self.stream, GROUP, self.consumer, CLAIM_IDLE_MS, start_id=start, count=COUNT
            )
            start, entries = str(result[0]), result[1]
            if entries:
                log.info("agent events: took over %d unacknowledged entries", len(entries))
                await self.handle(entries)
            if start == "0-0" or not entries:
                return

    async def handle(self, entries: list[Any]) -> None:
        for entry_id, raw in entries:
            if raw is None:  # deleted meanwhile
                await self.store.redis.xack(self.stream, GROUP, entry_id)
                continue
            fields = {str(k): str(v) for k, v in raw.items()}
            call_id = fields.get("call_id", "")
            try:
                event = from_agent_entry(fields)
                applied = await apply_pushed_event(self.store, self.cadence, event)
                if not applied.found:
                    await self.rejections.record(
                        self.store, "agent-stream", "unknown_call", call_id, f"{entry_id}: event for an unknown call"
                    )
            except BadEvent as exc:
                await self.rejections.record(self.store, "agent-stream", "malformed", call_id, f"{entry_id}: {exc}")
            except ResponseError as exc:
                if is_unavailable(exc):
                    raise  # not the entry's fault: it stays pending and is applied once Redis is back
                await self.rejections.record(self.store, "agent-stream", "failed", call_id, f"{entry_id}: {exc}")
            await self.store.redis.xack(self.stream, GROUP, entry_id)

"""One sample of the queue every SAMPLE_S, kept for an hour in Redis, so the operator page can chart depth and pace
over the last hour whichever instance serves it. Every instance samples; the first to write a time slot wins."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from callqueue.dispatch.worker import sleep_or_stop
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore

log = logging.getLogger("callqueue.operator")
SAMPLE_S = 10
KEEP_MS = 3_600_000
# KEYS[1] history zset; ARGV: slot (ms), sample JSON, keep (ms)
_ADD_SAMPLE = """
if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) == 0 then redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
return 1
"""


class HistorySampler:
    def __init__(self, store: CallStore, every_s: float = SAMPLE_S) -> None:
        self.store = store
        self.every_s = every_s
        self._add = store.redis.register_script(_ADD_SAMPLE)

    async def sample_once(self) -> None:
        status = await self.store.queue_status()
        slot_ms = int(self.every_s * 1000)
        slot = self.store.now_ms() // slot_ms * slot_ms
        sample = {
            "at": slot,
            "queued": status.queued,
            "in_flight": status.in_flight,
            "pace": status.dispatch_rate_per_s,
            "outbox": status.pending_results,
        }
        await self._add(keys=[self.store.keys.metrics_history], args=[slot, json.dumps(sample), KEEP_MS])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample_once()
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # the runtime's guard backs off, quietly, until Redis is back
                log.exception("history sample failed; next in %ss", self.every_s)
            await sleep_or_stop(stop, self.every_s)


async def read_history(store: CallStore) -> list[dict[str, Any]]:
    since = store.now_ms() - KEEP_MS
    raw = await store.redis.zrangebyscore(store.keys.metrics_history, since, "+inf")
    return [json.loads(entry) for entry in raw]

"""The one loop that drives every status check of this process: no task or thread waits per call.

Due calls are leased in batches from the shared tracking zset (scored by next-check time), so any instance can
check any call and a dead instance's leases simply run out to another. At most TRACKER_CONCURRENCY checks run at
once; each is bounded by its lease so a stuck check cannot hold a call past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.tracking.checker import Checker

log = logging.getLogger("callqueue.tracking")
BATCH = 500
IDLE_MAX_S = 0.1


class TrackingScheduler:
    def __init__(self, store: CallStore, checker: Checker, concurrency: int, lease_ms: int) -> None:
        self.store = store
        self.checker = checker
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.running: set[asyncio.Task[None]] = set()
        self.lateness_ms: list[int] = []  # filled only when `measure` is on (benchmarks)
        self.measure = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                free = self.concurrency - len(self.running)
                if free <= 0:
                    await asyncio.wait(self.running, timeout=IDLE_MAX_S, return_when=asyncio.FIRST_COMPLETED)
                    continue
                limit = min(BATCH, free)
                if self.measure:
                    due = await self._claim_measured(limit)
                else:
                    due = await self.store.due_for_check(self.lease_ms, limit)
                for call_id in due:
                    task = asyncio.create_task(self._one(call_id), name=f"check-{call_id}")
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
                if len(due) < limit:
                    await self._idle(stop)
        finally:
            for task in list(self.running):
                task.cancel()  # their leases run out; another instance (or the next start) checks them

    async def _one(self, call_id: str) -> None:
        try:
            async with asyncio.timeout(self.lease_ms / 1000):
                await self.checker.check(call_id)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("call %s: status check exceeded its lease; the next claim retries it", call_id)
        except Exception as exc:
            if is_unavailable(exc):  # the scheduler's own next claim fails too and reports the outage once
                log.debug("call %s: status check stopped: redis unavailable; its lease brings it back", call_id)
                return
            log.exception("call %s: status check crashed; the lease runs out and it is retried", call_id)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep until the next check is due, but never long: another instance may add earlier ones."""
        head = await self.store.redis.zrange(self.store.keys.tracking, 0, 0, withscores=True)
        delay = IDLE_MAX_S
        if head:
            delay = min(IDLE_MAX_S, max(0.005, (float(head[0][1]) - self.store.now_ms()) / 1000))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _claim_measured(self, limit: int) -> list[str]:
        """Like due_for_check, also recording how late each check starts (for bench/tracking.py)."""
        now = self.store.now_ms()
        scored = await self.store.redis.zrangebyscore(
            self.store.keys.tracking, "-inf", now, start=0, num=limit, withscores=True
        )
        due = await self.store.due_for_check(self.lease_ms, limit)
        scores = {str(member): float(score) for member, score in scored}
        self.lateness_ms.extend(max(0, now - int(scores[c])) for c in due if c in scores)
        return due

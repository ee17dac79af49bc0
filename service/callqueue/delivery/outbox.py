"""The delivery loop: lease due outbox entries, POST each result, remove it on 2xx, else retry later.

The outbox zset (`{call_id}:{status}` scored by next attempt, written atomically with the final transition) is
the only queue: a restart or a killed instance loses nothing — a leased entry whose instance died is simply due
again when its lease runs out. Failures back off exponentially (capped, jittered); an entry older than
MAX_AGE_MS, one the backend rejects as invalid, or one that cannot be sent at all (its record unreadable, or not
JSON) moves to the dead-letter zset with its reason, so no entry can fail forever. While a result is retried its
finished call is kept (CALL_RETENTION would otherwise expire it), and a dead-lettered one is kept a full retention
for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random

from callqueue.clients.backend import BackendClient, DeliveryOutcome
from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.delivery.result import result_body, wants_recording
from callqueue.settings import TimingProfile
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.store.keys import DEAD_LETTERS_KEEP
from callqueue.store.records import CallRecord
from callqueue.tracing import bind_call

log = logging.getLogger("callqueue.delivery")
BATCH = 50
CONCURRENCY = 20
IDLE_S = 0.2
BASE_MS = 500
MAX_AGE_MS = 72 * 3_600_000
RECORDING_LOOKUPS = 4
RECORDING_WAIT_MS = 2_000
KEEP_MARGIN_S = 3600  # a retried result's call is kept at least this long past its next attempt


def backoff_ms(attempts: int, cap_ms: int) -> int:
    return int(random.uniform(0.5, 1.0) * min(cap_ms, BASE_MS * 2 ** min(attempts, 20)))


class ResultDelivery:
    def __init__(
        self, store: CallStore, backend: BackendClient, plivo: PlivoClient | None, timing: TimingProfile
    ) -> None:
        self.store = store
        self.backend = backend
        self.plivo = plivo
        self.lease_ms = (timing.request_timeout * 2 + 5) * 1000
        # Once the backend is back, everything pending arrives within this: 4 poll intervals, 2 s to 5 min.
        self.cap_ms = min(300_000, max(2_000, timing.status_check_interval * 4000))
        self.max_age_ms = MAX_AGE_MS

    async def run(self, stop: asyncio.Event) -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(member: str) -> None:
            async with semaphore:
                try:
                    await self.deliver(member)
                except Exception as exc:
                    if is_unavailable(exc):
                        raise  # Redis is down: the loop backs off (runtime.py), the lease brings the entry back
                    log.exception("result %s: delivery crashed; its lease runs out and it is retried", member)

        while not stop.is_set():
            due = await self.store.due_for_delivery(self.lease_ms, BATCH)
            if due:
                await asyncio.gather(*(one(m) for m in due))
            if len(due) < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=IDLE_S)

    async def deliver(self, member: str) -> None:
        call_id, _, status = member.rpartition(":")
        try:
            record = await self.store.get(call_id)
        except (ValueError, KeyError, TypeError) as exc:  # a record this version cannot read: it will never improve
            await self._dead_letter(member, f"the call record cannot be read ({type(exc).__name__}: {exc})")
            return
        if record is None:
            await self._dead_letter(member, "the call record no longer exists", record_exists=False)
            return
        bind_call(call_id, record.traceparent)  # the result POST carries the call's trace to the backend
        record, wait = await self._with_recording(record)
        if wait:
            # Plivo lists a recording only once the call's record is written, seconds after hang-up.
            await self.store.redis.zadd(
                self.store.keys.outbox, {member: self.store.now_ms() + RECORDING_WAIT_MS}, xx=True
            )
            return
        body = result_body(record, status)
        try:
            json.dumps(body, allow_nan=False)
        except (ValueError, TypeError) as exc:
            await self._dead_letter(member, f"the result cannot be sent as JSON ({exc})")
            return
        outcome = await self.backend.post_result(body, member)
        if outcome.kind == "delivered":
            await self.store.redis.zrem(self.store.keys.outbox, member)
            await self.store.redis.hdel(self.store.keys.call(call_id), *self._attempt_fields(status))  # type: ignore[misc]
            log.info("result %s delivered (%s)", member, outcome.reason)
            return
        if outcome.kind == "rejected":
            await self._dead_letter(member, outcome.reason)
            return
        await self._retry_later(member, record, status, outcome)

    async def _retry_later(self, member: str, record: CallRecord, status: str, outcome: DeliveryOutcome) -> None:
        attempts_f, first_f = self._attempt_fields(status)
        now = self.store.now_ms()
        attempts = int(record.tracking.get(attempts_f.removeprefix("trk_"), "0")) + 1
        first = int(record.tracking.get(first_f.removeprefix("trk_"), str(now)))
        if now - first > self.max_age_ms:
            await self._dead_letter(member, f"undelivered for {(now - first) // 1000}s; last: {outcome.reason}")
            return
        delay = backoff_ms(attempts, self.cap_ms)
        if outcome.retry_after_s is not None:
            delay = max(delay, int(outcome.retry_after_s * 1000))
        await self.store.redis.hset(  # type: ignore[misc]
            self.store.keys.call(record.call_id),
            mapping={attempts_f: attempts, first_f: first, "trk_delivery_error": outcome.reason[:500]},
        )
        # XX: if the entry was replaced meanwhile (an `unknown` result settled), do not bring it back.
        await self.store.redis.zadd(self.store.keys.outbox, {member: now + delay}, xx=True)
        await self.store.keep_finished(record.call_id, (delay + self.lease_ms) // 1000 + KEEP_MARGIN_S)
        log.warning(
            "result %s not delivered (attempt %d): %s; retry in %.1fs", member, attempts, outcome.reason, delay / 1000
        )

    async def _dead_letter(self, member: str, reason: str, record_exists: bool = True) -> None:
        now = self.store.now_ms()
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.store.keys.outbox, member)
            pipe.zadd(self.store.keys.dead_letters, {member: now})
            pipe.zremrangebyrank(self.store.keys.dead_letters, 0, -DEAD_LETTERS_KEEP - 1)
            if record_exists:
                why = json.dumps({"member": member, "at": now, "reason": reason})
                pipe.hset(self.store.keys.call(member.rpartition(":")[0]), "trk_dead_letter", why)
            await pipe.execute()
        if record_exists:
            await self.store.keep_finished(member.rpartition(":")[0])
        log.error("result %s dead-lettered: %s", member, reason)

    async def _with_recording(self, record: CallRecord) -> tuple[CallRecord, bool]:
        """The record with its recording URL when the call wants one; True = not listed yet, ask again shortly."""
        if self.plivo is None or not wants_recording(record) or record.call_uuid is None:
            return record, False
        lookups = int(record.tracking.get("recording_lookups", "0"))
        if lookups >= RECORDING_LOOKUPS:
            return record, False
        await self.store.set_tracking_fields(record.call_id, recording_lookups=lookups + 1)
        try:
            found = await self.plivo.recordings(record.call_uuid)
        except (PlivoError, PlivoRateLimited) as exc:
            log.warning("call %s: recording lookup failed (%s)", record.call_id, exc)
            return record, lookups + 1 < RECORDING_LOOKUPS
        url = next((str(r["recording_url"]) for r in found if r.get("recording_url")), None)
        if url is None:
            return record, lookups + 1 < RECORDING_LOOKUPS
        await self.store.redis.hset(self.store.keys.call(record.call_id), "recording_url", url)  # type: ignore[misc]
        return await self.store.get(record.call_id) or record, False

    @staticmethod
    def _attempt_fields(status: str) -> tuple[str, str]:
        return f"trk_delivery_attempts_{status}", f"trk_delivery_first_ms_{status}"

"""Learn the call uuid of calls placed by an agent that sends no callbacks (pipecat's stock example).

Such a call is known by its request uuid only; once it leaves Plivo's queue, no lookup by that uuid finds it, and
the tracker would wait for AUTO_MISS_TIMEOUT before searching Plivo's records. So once per STATUS_CHECK_INTERVAL,
one instance (a Redis lock) lists Plivo's live calls (`GET Call/?status=live`: one request), looks up each call
uuid it has not seen before and that no call of ours owns (`GET Call/{call_uuid}/?status=live`: one request per
new live call, ever), and when its request uuid is one of ours, applies that live view to the call: its call uuid
is recorded and it is tracked by it from then on (ringing, answered, its detail record).
"""

from __future__ import annotations

import logging

from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.store.calls import CallStore
from callqueue.tracking.apply import apply_event
from callqueue.tracking.events import BadEvent, from_live

log = logging.getLogger("callqueue.reconcile")
SEEN_TTL_MS = 3_600_000  # a live call of ours looked at once is not looked at again for an hour
UNOWNED_RELOOK_MS = 30_000  # one whose request uuid is not ours (yet: a dispatch being reconciled) is, after this
MAX_LOOKUPS = 50  # new live calls looked up per sweep; the rest wait for the next sweep


class LiveSweep:
    def __init__(self, store: CallStore, plivo: PlivoClient, interval_s: int) -> None:
        self.store = store
        self.plivo = plivo
        self.interval_ms = interval_s * 1000
        self.lock_key = f"{store.keys.prefix}:live-sweep"
        self.seen_key = f"{store.keys.prefix}:live-sweep:seen"

    async def run_once(self) -> int:
        """One sweep if no instance swept within the interval; returns how many calls learned their uuid."""
        if not await self.store.redis.set(self.lock_key, "1", px=self.interval_ms, nx=True):
            return 0
        try:
            return await self._sweep()
        except PlivoRateLimited:
            return 0  # the budget is shared with polling: skip this sweep
        except PlivoError as exc:
            log.info("live sweep skipped: %s", exc)
            return 0

    async def _sweep(self) -> int:
        redis = self.store.redis
        now = self.store.now_ms()
        await redis.zremrangebyscore(self.seen_key, "-inf", now - SEEN_TTL_MS)
        learned = 0
        looked = 0
        for call_uuid in await self.plivo.live_call_uuids():
            if looked >= MAX_LOOKUPS:
                break
            if await redis.zscore(self.seen_key, call_uuid) is not None:
                continue
            if await self.store.call_id_for(call_uuid=call_uuid) is not None:
                continue  # already tracked by its call uuid
            looked += 1
            live = await self.plivo.live_call(call_uuid)
            request_uuid = str((live or {}).get("request_uuid") or "")
            owner = await self.store.call_id_for(request_uuid=request_uuid) if request_uuid else None
            seen_at = now if live is None or owner is not None else now - SEEN_TTL_MS + UNOWNED_RELOOK_MS
            await redis.zadd(self.seen_key, {call_uuid: seen_at})
            if live is None or owner is None:
                continue
            try:
                event = from_live(owner, live)
            except BadEvent as exc:
                log.warning("live call %s of attempt %s not usable: %s", call_uuid, owner, exc)
                continue
            await apply_event(self.store, event)
            learned += 1
        await redis.pexpire(self.seen_key, SEEN_TTL_MS)
        return learned

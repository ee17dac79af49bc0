"""One account-wide list of Plivo's live calls per sweep, shared by every call and every instance; two jobs.

(a) Lost hang-up callbacks. A call whose ring or answer callback arrived is checked only by a safety net after 20
    quiet intervals (cadence.py), because callbacks flow. When its hang-up callback is lost (a 503 while Redis
    restarted, an instance replaced), that net alone would learn the outcome minutes late. A rung call (ringing or
    in progress, events flowing) missing from the live list has ended: it goes back to polling at once, and the
    checker settles it from its detail record.
(b) Calls placed without callbacks (pipecat's stock agent). Such a call is known by its request uuid only; once it
    leaves Plivo's queue no lookup by that uuid finds it, and the tracker would wait for AUTO_MISS_TIMEOUT. Each
    live call that no call of ours owns by call uuid is looked up once (`GET Call/{call_uuid}/?status=live`, at most
    MAX_LOOKUPS per sweep, remembered for an hour); when its request uuid is one of ours, that live view is applied:
    the call uuid is recorded and the call is tracked by it from then on.

Period (one `{prefix}:live-sweep` lock holding the Redis time of the last sweep): every 2 × STATUS_CHECK_INTERVAL
while only (a) needs it, so the happy path (callbacks) costs one request per 30 s on Cloud Run for the whole account,
and a lost hang-up's outcome comes within that period plus one poll plus Plivo's record lag; every
STATUS_CHECK_INTERVAL while (b) needs it, i.e. an in-flight call has no call uuid and no event INITIAL_STATUS_DELAY
after its dispatch (a callback agent's ring callback has come by then), so a stock call learns its uuid within one
poll interval of the first poll. Nothing is asked of Plivo while neither kind of call exists. Every request is
taken from the shared Plivo budget; nothing is settled from the list itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.settings import TimingProfile
from callqueue.states import CallStatus
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.tracing import bind_call
from callqueue.tracking.apply import apply_event
from callqueue.tracking.events import BadEvent, from_live

log = logging.getLogger("callqueue.tracking")
LIVE_SWEEP_FACTOR = 2  # while only rung calls need it: one sweep every 2 poll intervals (30 s on Cloud Run)
RUNG = frozenset({CallStatus.RINGING.value, CallStatus.IN_PROGRESS.value})
SEEN_TTL_MS = 3_600_000  # a live call of ours looked at once is not looked at again for an hour
UNOWNED_RELOOK_MS = 30_000  # one whose request uuid is not ours (yet: a dispatch being reconciled) is, after this
MAX_LOOKUPS = 50  # new live calls looked up per sweep; the rest wait for the next sweep

# KEYS: lock. ARGV: min gap since the last sweep (ms), lock ttl (ms). Takes this period's turn: 1, or 0 if taken.
TAKE_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if now - last < tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], now, 'PX', tonumber(ARGV[2]))
return 1
"""


@dataclass
class SweepNeeds:
    """What the in-flight calls need from a sweep now."""

    rung_quiet: dict[str, tuple[str, int]] = field(default_factory=dict)  # id → (call uuid, updated_at ms)
    uuid_unknown: int = 0  # calls with no call uuid and no event past INITIAL_STATUS_DELAY

    def __bool__(self) -> bool:
        return bool(self.rung_quiet) or self.uuid_unknown > 0


@dataclass
class SweepResult:
    ended: list[str] = field(default_factory=list)  # rung calls found no longer live: polled at once
    learned: list[str] = field(default_factory=list)  # calls whose call uuid was learned from the live list


class LiveSweep:
    def __init__(self, store: CallStore, plivo: PlivoClient | None, timing: TimingProfile) -> None:
        self.store = store
        self.plivo = plivo
        self.poll_ms = timing.status_check_interval * 1000
        self.first_poll_ms = timing.initial_status_delay * 1000
        self.seen_key = store.keys.live_sweep_seen
        self._take_turn = store.redis.register_script(TAKE_TURN)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # the runtime's guard backs off and reports the outage once
                log.exception("live-call sweep failed; the next period tries again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_ms / 1000)

    async def needs(self) -> SweepNeeds:
        """Read the in-flight calls: which rang and rely on callbacks, and how many still lack a call uuid."""
        needs = SweepNeeds()
        ids = await self.store.redis.zrange(self.store.keys.in_flight, 0, -1)
        if not ids:
            return needs
        fields = ["status", "call_uuid", "trk_last_event_ms", "updated_at", "request_uuid", "dispatched_at"]
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hmget(self.store.keys.call(call_id), fields)
            rows = await pipe.execute()
        now = self.store.now_ms()
        for call_id, (status, call_uuid, last_event, updated, request_uuid, dispatched) in zip(ids, rows, strict=True):
            events = last_event not in (None, "", "0")
            if status in RUNG and call_uuid and events:
                needs.rung_quiet[str(call_id)] = (str(call_uuid), int(updated or 0))
            elif not call_uuid and request_uuid and not events and now - int(dispatched or now) >= self.first_poll_ms:
                needs.uuid_unknown += 1
        return needs

    async def sweep_once(self) -> SweepResult:
        """One sweep, if this instance holds this period's turn and some call needs it."""
        result = SweepResult()
        if self.plivo is None or await self._swept_within(self.poll_ms):
            return result  # no Plivo to ask, or another instance swept within the shortest period: skip the read
        needs = await self.needs()
        if not needs:
            return result
        gap_ms = self.poll_ms if needs.uuid_unknown else self.poll_ms * LIVE_SWEEP_FACTOR
        if not await self._take_turn(
            keys=[self.store.keys.live_sweep], args=[gap_ms, self.poll_ms * LIVE_SWEEP_FACTOR]
        ):
            return result  # another instance swept within this period
        asked_at = self.store.now_ms()
        try:
            live = await self.plivo.live_call_uuids()
        except (PlivoError, PlivoRateLimited) as exc:
            log.warning("live-call sweep: Plivo's live call list unavailable (%s); the next period tries again", exc)
            return result
        result.ended = await self._poll_ended(needs, set(live), asked_at)
        if needs.uuid_unknown:
            try:
                result.learned = await self._learn_uuids(live)
            except (PlivoError, PlivoRateLimited) as exc:
                log.info("live-call sweep: lookups stopped (%s); the next period goes on", exc)
        return result

    async def _swept_within(self, gap_ms: int) -> bool:
        last = await self.store.redis.get(self.store.keys.live_sweep)
        return last is not None and self.store.now_ms() - int(last) < gap_ms

    async def _poll_ended(self, needs: SweepNeeds, live: set[str], asked_at: int) -> list[str]:
        """(a): rung calls no longer live go back to polling at once."""
        # A call that changed after the list was asked for may have become live since: the next sweep sees it. (A
        # call taken for ended wrongly, e.g. by clock skew, costs one poll that finds it live.) A call whose hang-up
        # callback landed after `needs` read it is final: RESCHEDULE leaves it, and it is not reported or logged.
        ended: list[str] = []
        for call_id, (uuid, updated) in needs.rung_quiet.items():
            if uuid in live or updated > asked_at:
                continue
            await self.store.set_tracking_fields(call_id, last_event_ms=0, silent_checks=0)
            if not await self.store.reschedule(call_id, 0):
                continue
            ended.append(call_id)
            bind_call(call_id)  # the line belongs to the call (its call_id field), as every line about a call
            log.info("call %s: rang, no longer live at Plivo and no hang-up callback: polling it for its outcome",
                     call_id)  # fmt: skip
            bind_call(None)
        return ended

    async def _learn_uuids(self, live: list[str]) -> list[str]:
        """(b): look up live calls no call of ours owns by call uuid; apply those whose request uuid is ours."""
        assert self.plivo is not None
        redis = self.store.redis
        now = self.store.now_ms()
        await redis.zremrangebyscore(self.seen_key, "-inf", now - SEEN_TTL_MS)
        learned: list[str] = []
        looked = 0
        for call_uuid in live:
            if looked >= MAX_LOOKUPS:
                break
            if await redis.zscore(self.seen_key, call_uuid) is not None:
                continue
            if await self.store.call_id_for(call_uuid=call_uuid) is not None:
                continue  # already tracked by its call uuid
            looked += 1
            view = await self.plivo.live_call(call_uuid)
            request_uuid = str((view or {}).get("request_uuid") or "")
            owner = await self.store.call_id_for(request_uuid=request_uuid) if request_uuid else None
            seen_at = now if view is None or owner is not None else now - SEEN_TTL_MS + UNOWNED_RELOOK_MS
            await redis.zadd(self.seen_key, {call_uuid: seen_at})
            if view is None or owner is None:
                continue
            try:
                event = from_live(owner, view)
            except BadEvent as exc:
                log.warning("live call %s of attempt %s not usable: %s", call_uuid, owner, exc)
                continue
            await apply_event(self.store, event)
            learned.append(owner)
        await redis.pexpire(self.seen_key, SEEN_TTL_MS)
        return learned

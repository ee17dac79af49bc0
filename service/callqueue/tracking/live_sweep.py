"""Rung calls whose hang-up callback never came: one account-wide live-call list per sweep, not a poll per call.

A call whose ring or answer callback arrived is checked only by a safety net after 20 quiet intervals (cadence.py),
because callbacks flow. When its hang-up callback is lost (a 503 while Redis restarted, an instance replaced),
that net alone learns the outcome minutes late. So every LIVE_SWEEP_FACTOR poll intervals one instance (a Redis
lock shared by all) asks Plivo for the uuids of every live call of the account: one REST request, however many
calls are rung. A rung call (ringing or in progress, events flowing) that is no longer live has ended: it goes back
to polling at once, and the checker settles it from its detail record (polled every interval until Plivo has
written it). The request is taken from the shared Plivo budget; no request is made while no such call exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callqueue.clients.plivo import PlivoClient, PlivoError, PlivoRateLimited
from callqueue.states import CallStatus
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.tracking.cadence import Cadence

log = logging.getLogger("callqueue.tracking")
LIVE_SWEEP_FACTOR = 2  # one sweep every 2 poll intervals: 30 s on Cloud Run; outcome ≤ sweep + one poll + CDR lag
RUNG = frozenset({CallStatus.RINGING.value, CallStatus.IN_PROGRESS.value})


class LiveSweep:
    def __init__(self, store: CallStore, plivo: PlivoClient | None, cadence: Cadence) -> None:
        self.store = store
        self.plivo = plivo
        self.period_ms = cadence.poll_ms * LIVE_SWEEP_FACTOR

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
                await asyncio.wait_for(stop.wait(), timeout=self.period_ms / 1000)

    async def rung_quiet_calls(self) -> dict[str, tuple[str, int]]:
        """In-flight calls that rang and whose events flow (so no poll watches them): id → (call uuid, updated)."""
        ids = await self.store.redis.zrange(self.store.keys.in_flight, 0, -1)
        if not ids:
            return {}
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hmget(self.store.keys.call(call_id), ["status", "call_uuid", "trk_last_event_ms", "updated_at"])
            rows = await pipe.execute()
        quiet: dict[str, tuple[str, int]] = {}
        for call_id, (status, call_uuid, last_event, updated) in zip(ids, rows, strict=True):
            if status in RUNG and call_uuid and last_event not in (None, "", "0"):
                quiet[str(call_id)] = (str(call_uuid), int(updated or 0))
        return quiet

    async def sweep_once(self) -> list[str]:
        """One sweep, if this instance holds this period's turn; returns the calls found ended."""
        if self.plivo is None or await self.store.redis.exists(self.store.keys.live_sweep):
            return []  # no Plivo to ask, or another instance swept this period: no need to read the calls
        quiet = await self.rung_quiet_calls()
        if not quiet:
            return []
        if not await self.store.redis.set(self.store.keys.live_sweep, "1", nx=True, px=self.period_ms):
            return []  # another instance sweeps this period
        asked_at = self.store.now_ms()
        try:
            live = set(await self.plivo.live_call_uuids())
        except (PlivoError, PlivoRateLimited) as exc:
            log.warning("live-call sweep: Plivo's live call list unavailable (%s); the next period tries again", exc)
            return []
        # A call that changed after the list was asked for may have become live since: the next sweep sees it. (A
        # call taken for ended wrongly, e.g. by clock skew, costs one poll that finds it live: nothing is settled
        # from the list itself.)
        ended = [c for c, (uuid, updated) in quiet.items() if uuid not in live and updated <= asked_at]
        for call_id in ended:
            log.info("call %s: rang, no longer live at Plivo and no hang-up callback: polling it for its outcome",
                     call_id)  # fmt: skip
            await self.store.set_tracking_fields(call_id, last_event_ms=0, silent_checks=0)
            await self.store.reschedule(call_id, 0)
        return ended

"""The planner loop: sets when each `scheduled` call is due, and makes it ready (`queued`) once it is.

Any number of instances run it; each due call is leased to one of them (PLAN_DUE). For a call it looks at:
- its campaign was canceled: the call ends `canceled` (it was never dialled);
- a redial just scheduled (`retry_after`): its earliest time is now + the policy's wait for that attempt;
- otherwise its earliest time is its not_before;
- with calling hours, its time zones (its own, the number's, or the campaign's fallback) decide the first instant
  inside them at or after the earliest time (campaigns/planning.py). Now → `queued`, with the instant its hours
  close (a claim after that sends it back here); later → it stays `scheduled` with that `due_at`; never within
  the horizon → it ends `failed` with the reason, never dialled.
It also finishes the cancel of canceled campaigns (CANCEL_CHUNK), so a restart mid-cancel loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from callqueue.campaigns.models import RetryPolicy
from callqueue.campaigns.planning import NoTimeZone, Plan, WaitingFor, plan_call, zones_for
from callqueue.campaigns.store import CampaignStore, CampaignView
from callqueue.clock import Clock
from callqueue.states import CallStatus
from callqueue.store.availability import is_unavailable
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from callqueue.tracing import bind_call

log = logging.getLogger("callqueue.campaigns")
INTERVAL_S = 0.25
BATCH = 500
LEASE_MS = 30_000
SWEEP_S = 60.0  # how often the campaign index drops expired campaigns


class Planner:
    def __init__(self, calls: CallStore, clock: Clock, interval_s: float = INTERVAL_S) -> None:
        self.calls = calls
        self.campaigns = CampaignStore(calls)
        self.clock = clock
        self.interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        adopted = False
        next_sweep = 0.0
        while not stop.is_set():
            busy = 0
            try:
                if not adopted:
                    await self.campaigns.adopt_queued()
                    adopted = True
                busy = await self.run_once()
                await self.finish_cancels()
                if time.monotonic() >= next_sweep:
                    await self.campaigns.forget_expired()
                    next_sweep = time.monotonic() + SWEEP_S
            except Exception as exc:
                if is_unavailable(exc):
                    raise  # Redis down or full: the runtime's guard backs off and logs it once per step
                log.exception("campaign planner pass failed; retrying")
            if busy < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)

    async def run_once(self) -> int:
        """Plan every scheduled call due now (up to BATCH); returns how many were looked at."""
        now = self.clock.now_ms()
        ids = await self.campaigns.due_for_planning(now, LEASE_MS, BATCH)
        if not ids:
            return 0
        records = await asyncio.gather(*(self.calls.get(call_id) for call_id in ids))
        views: dict[str, CampaignView] = {}
        decisions: list[tuple[str, Plan, dict[str, str], str]] = []
        for call_id, record in zip(ids, records, strict=True):
            if record is None or record.status is not CallStatus.SCHEDULED:
                decisions.append((call_id, Plan("queue"), {}, "0"))  # the script drops it from `scheduled`
                continue
            if record.campaign_id not in views:
                views[record.campaign_id] = await self.campaigns.view(record.campaign_id)
            view = views[record.campaign_id]
            plan, fields = self.decide(record, view, now)
            decisions.append((call_id, plan, fields, view.wver))
        outcomes = await self.campaigns.apply_plans(decisions)
        for (call_id, plan, _, _), outcome in zip(decisions, outcomes, strict=True):
            bind_call(call_id)  # each line belongs to its call (its call_id field)
            if outcome == "queued":
                log.info("call %s: Call status changed: scheduled → queued (%s)", call_id, _why(plan))
            elif outcome == "ended":
                log.warning("call %s: ended %s before any dial: %s", call_id, plan.detail.get("status"),
                            plan.detail.get("reason"))  # fmt: skip
        bind_call(None)
        return len(ids)

    def decide(self, record: CallRecord, view: CampaignView, now: int) -> tuple[Plan, dict[str, str]]:
        fields: dict[str, str] = {}
        if view.state == "canceled":
            return Plan("end", detail={"reason": "campaign canceled", "status": CallStatus.CANCELED.value}), fields
        earliest = record.not_before_ms
        reason: WaitingFor = "retry" if record.attempt > 1 else "not_before"
        if record.retry_after:
            policy = RetryPolicy.model_validate(record.retry) if record.retry else view.settings.retry
            earliest = now + policy.wait_ms(record.attempt)
            fields["not_before"] = str(earliest)
        hours = view.hours
        zones = record.zones
        if hours is not None and record.zone_source not in ("call", "number"):
            try:
                zones, source = zones_for(record.phone_number, None, view.settings.time_zone)
            except NoTimeZone as exc:
                return Plan("end", detail={"reason": str(exc), "status": CallStatus.FAILED.value}), fields
            fields.update(zones=",".join(zones), zone_source=source)
        plan = plan_call(hours, zones, now, earliest, reason)
        if plan.action == "end":
            plan = Plan("end", detail={**plan.detail, "status": CallStatus.FAILED.value})
        return plan, fields

    async def finish_cancels(self) -> None:
        for campaign_id in await self.campaigns.canceling():
            ended = await self.campaigns.cancel_waiting(campaign_id)
            if ended:
                log.info("campaign %s: %d waiting calls ended canceled", campaign_id, ended)


def _why(plan: Plan) -> str:
    if plan.at_ms is None:
        return "due"
    return f"inside calling hours {plan.detail.get('calling_hours')} until {plan.detail.get('closes_at')}"

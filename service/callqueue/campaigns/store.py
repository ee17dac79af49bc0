"""Campaigns in Redis: settings, control, suppression, planning and bulk writes, through the scripts of
store/campaign_scripts.py (keys in store/keys.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from callqueue.campaigns.hours import CallingHours
from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.planning import Plan
from callqueue.store.calls import CallStore, _s

CANCEL_CHUNK = 500


def call_counts(fields: dict[str, str]) -> tuple[dict[str, int], int]:
    """A campaign's calls per current status (`n:{status}` of its hash, those above 0) and their total.

    Every counted call is in exactly one status (a change moves its count from one to the other), so the total is
    the sum of every `n:` field, negative ones included (a hash recreated by a late outcome holds a -1 and a +1):
    no `total` is kept beside them, one write fewer per enqueue. A `total` field left by an older revision counted
    the same calls and is not read (revisions up to 02f958d read it: docs/runbook.md, Rollback)."""
    counts = {k[2:]: int(v) for k, v in fields.items() if k.startswith("n:")}
    return {s: n for s, n in counts.items() if n > 0}, sum(counts.values())


@dataclass(frozen=True)
class CampaignView:
    """A campaign's settings as the planner and bulk enqueue use them, with the version they were read at."""

    campaign_id: str
    settings: CampaignSettings
    configured: bool  # settings were PUT (otherwise the defaults apply)
    state: str  # active | paused | canceled
    wver: str  # bumps when calling hours or the fallback zone change: calls planned before are planned again
    exists: bool

    @property
    def hours(self) -> CallingHours | None:
        return self.settings.calling_hours.to_hours() if self.settings.calling_hours else None


@dataclass(frozen=True)
class Controlled:
    outcome: Literal["changed", "unchanged", "canceled", "missing"]
    before: str | None = None
    paused_by: str | None = None


class CampaignStore:
    def __init__(self, calls: CallStore) -> None:
        self.calls = calls
        self.redis = calls.redis
        self.keys = calls.keys

    # --- settings -------------------------------------------------------------------------------------------

    async def view(self, campaign_id: str) -> CampaignView:
        raw = await self.redis.hmget(self.keys.campaign(campaign_id), ["settings", "state", "wver", "created_at"])  # type: ignore[misc]
        settings_json, state, wver, created_at = (_s(v) if v is not None else None for v in raw)
        settings = CampaignSettings()
        if settings_json:
            try:
                settings = CampaignSettings.model_validate_json(settings_json)
            except ValidationError:
                settings = CampaignSettings()  # written by a newer version: the defaults are the safe reading
        return CampaignView(
            campaign_id,
            settings,
            configured=settings_json is not None,
            state=state or "active",
            wver=wver or "0",
            exists=settings_json is not None or created_at is not None,
        )

    async def put_settings(self, campaign_id: str, settings: CampaignSettings, retention_s: int) -> CampaignView:
        before = await self.view(campaign_id)
        window_changed = (
            before.settings.calling_hours != settings.calling_hours or before.settings.time_zone != settings.time_zone
        )
        await self.calls.run_script(
            "CAMPAIGN_PUT",
            campaign_id,
            settings.model_dump_json(),
            "1" if settings.calling_hours else "",
            settings.max_concurrent_calls or "",
            settings.dispatch_rate or "",
            settings.weight,
            settings.retry.model_dump_json(),
            settings.breaker.model_dump_json(),
            retention_s,
            "1" if window_changed else "",
        )
        return await self.view(campaign_id)

    # --- control --------------------------------------------------------------------------------------------

    async def control(self, campaign_id: str, action: Literal["pause", "resume", "cancel"], reason: str) -> Controlled:
        result = await self.calls.run_script("CAMPAIGN_CONTROL", campaign_id, action, reason)
        before = result[1] if len(result) > 1 else None
        by = result[2] if len(result) > 2 and result[2] else None
        return Controlled(result[0], before, by)  # type: ignore[arg-type]

    async def cancel_waiting(self, campaign_id: str, chunk: int = CANCEL_CHUNK) -> int:
        """End every queued or scheduled call of a canceled campaign as `canceled`; returns how many."""
        ended = 0
        while True:
            done, left = (int(x) for x in await self.calls.run_script("CANCEL_CHUNK", campaign_id, chunk))
            ended += done
            if left == 0:
                return ended

    async def canceling(self) -> list[str]:
        return [_s(m) for m in await self.redis.smembers(self.keys.campaigns_canceling)]  # type: ignore[misc]

    # --- suppression ----------------------------------------------------------------------------------------

    async def suppress(self, numbers: list[str], reason: str | None) -> int:
        """Add numbers (E.164) to the suppression list; returns how many were new."""
        value = json.dumps({"reason": reason, "added_at": self.calls.clock.now_ms()})
        return int(await self.redis.hset(self.keys.suppressed, mapping=dict.fromkeys(numbers, value)))  # type: ignore[misc]

    async def unsuppress(self, number: str) -> bool:
        return bool(await self.redis.hdel(self.keys.suppressed, number))  # type: ignore[misc]

    async def suppression(self, number: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.suppressed, number)  # type: ignore[misc]
        if raw is None:
            return None
        try:
            info: dict[str, Any] = json.loads(_s(raw))
        except ValueError:
            info = {"reason": _s(raw)}
        return info

    # --- planning -------------------------------------------------------------------------------------------

    async def due_for_planning(self, clock_ms: int, lease_ms: int, limit: int) -> list[str]:
        result = await self.calls.script("PLAN_DUE")(keys=[], args=[self.keys.prefix, clock_ms, lease_ms, limit])
        return [_s(x) for x in result]

    async def apply_plans(self, plans: list[tuple[str, Plan, dict[str, str], str]]) -> list[str]:
        """Apply planner decisions (call_id, plan, fields to set, settings version planned with), pipelined."""
        script = self.calls.script("PLAN")
        async with self.redis.pipeline(transaction=False) as pipe:
            for call_id, plan, fields, wver in plans:
                status_or_wait: str = plan.waiting_for or ""
                if plan.action == "end":
                    status_or_wait = str(plan.detail.get("status", "failed"))
                at = "" if plan.at_ms is None else str(plan.at_ms)
                args = [self.keys.prefix, call_id, plan.action, at, status_or_wait]
                args += [json.dumps(fields), json.dumps(plan.detail), wver]
                await script(keys=[], args=args, client=pipe)
            results = await pipe.execute()
        return [_s(r[0]) for r in results]

    async def adopt_queued(self, chunk: int = 1000) -> int:
        """Calls queued before campaigns existed join their campaign's ready queue (once per instance start)."""
        offset = seen = 0
        while True:
            looked = int((await self.calls.run_script("ADOPT_QUEUED", offset, chunk))[0])
            seen += looked
            offset += chunk
            if looked < chunk:
                return seen

    # --- bulk -----------------------------------------------------------------------------------------------

    async def take_sequence(self, count: int) -> int:
        """Reserve `count` acceptance numbers; returns the first (bulk chunks then keep their items' order)."""
        return int(await self.redis.incrby(self.keys.sequence, count)) - count + 1

    async def enqueue_chunk(
        self,
        campaign_id: str,
        wver: str,
        seq_base: int,
        items: list[Any],
        count: int,
        *,
        retention_s: int,
        campaign_retention_s: int,
        max_queued: int,
        all_or_nothing: bool = False,
        traceparent: str | None = None,
    ) -> list[str]:
        """One ENQUEUE_BATCH call: `items` is the flat per-item argument list (campaign_scripts.py)."""
        args = [self.keys.prefix, campaign_id, retention_s, campaign_retention_s, wver, count, seq_base,
                traceparent or "", max_queued, "1" if all_or_nothing else "", *items]  # fmt: skip
        result = await self.calls.script("ENQUEUE_BATCH")(keys=[], args=args)
        return [_s(x) for x in result]

    # --- status ---------------------------------------------------------------------------------------------

    async def summaries(self, limit: int) -> list[dict[str, Any]]:
        """The most recently active campaigns, newest first, with their state and counts (GET /api/campaigns)."""
        ids = [_s(i) for i in await self.redis.zrevrange(self.keys.campaigns, 0, limit - 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(self.keys.campaign(cid))
                pipe.zcard(self.keys.campaign_queued(cid))
                pipe.zcard(self.keys.campaign_scheduled(cid))
                pipe.zcard(self.keys.campaign_in_flight(cid))
            replies = await pipe.execute() if ids else []
        out = []
        for n, cid in enumerate(ids):
            fields = {_s(k): _s(v) for k, v in replies[4 * n].items()}
            if not fields:
                continue
            by_status, total = call_counts(fields)
            out.append(
                {
                    "campaign_id": cid,
                    "state": fields.get("state", "active"),
                    "paused_by": fields.get("paused_by"),
                    "total": total,
                    "queued": int(replies[4 * n + 1]),
                    "scheduled": int(replies[4 * n + 2]),
                    "in_flight": int(replies[4 * n + 3]),
                    "by_status": by_status,
                }
            )
        return out

    async def forget_expired(self) -> int:
        """Drop campaigns whose keys expired (CAMPAIGN_RETENTION) from the index; returns how many. Read apart, the
        removal checks again: a campaign a new call brought back in between stays."""
        ids = [_s(i) for i in await self.redis.zrange(self.keys.campaigns, 0, -1)]
        if not ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.exists(self.keys.campaign(cid))
            alive = await pipe.execute()
        gone = [cid for cid, exists in zip(ids, alive, strict=True) if not exists]
        if not gone:
            return 0
        # Each dropped only if still gone: a new call may have brought it back since (campaign_scripts.FORGET_GONE).
        return int((await self.calls.run_script("FORGET_GONE", *gone))[0])

    async def raw_status(self, campaign_id: str, now_ms: int) -> dict[str, Any] | None:
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.campaign(campaign_id))
            pipe.zcard(k.campaign_queued(campaign_id))
            pipe.zcard(k.campaign_scheduled(campaign_id))
            pipe.zcard(k.campaign_in_flight(campaign_id))
            # Starts are scored in Redis time and counted from this instance's clock (clocks in sync).
            pipe.zcount(k.campaign_pace(campaign_id), self.calls.now_ms() - 60_000, "+inf")
            pipe.zrangebyscore(k.campaign_scheduled(campaign_id), 1, "+inf", start=0, num=1, withscores=True)
            pipe.lrange(k.campaign_recent(campaign_id), 0, -1)
            replies = await pipe.execute()
        fields, queued, scheduled, in_flight, starts, head, recent = replies
        if not fields:
            return None
        next_due: dict[str, Any] | None = None
        if head:
            member = _s(head[0][0])
            waiting = await self.redis.hget(k.call(member), "waiting_for")  # type: ignore[misc]
            next_due = {"at_ms": int(head[0][1]), "waiting_for": _s(waiting) if waiting else None}
        return {
            "fields": {_s(a): _s(b) for a, b in fields.items()},
            "queued": int(queued),
            "scheduled": int(scheduled),
            "in_flight": int(in_flight),
            "starts_last_minute": int(starts),
            "next_due": next_due,
            "recent": [_s(r) for r in recent],
        }

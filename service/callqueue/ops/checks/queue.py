"""Queue health from Redis: backlog age, calls stuck in a non-final state past their window, undelivered results.

Each window is the longest a healthy service lets a call sit in that state, plus one status interval of slack;
a call past it means a loop that should move it (dispatcher, reconciler, tracker, delivery) is not running.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callqueue.ops.checks.redis_health import UNREACHABLE_FIX, connect
from callqueue.ops.context import Context
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn
from callqueue.settings import Settings
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore

BACKLOG_WARN_S = 600
RING_TIMEOUT_S = 120  # Plivo's default ring_timeout
LONGEST_CALL_S = 3600  # Cloud Run cuts the agent's websocket at its request timeout, at most 3600 s
OUTBOX_WARN_S = 300
OUTBOX_FAIL_S = 3600
SCAN_LIMIT = 2000
CPU_FIX = "keep an instance with CPU always allocated (cpu_idle=false, min instances ≥ 1) and read make logs"


def windows(settings: Settings) -> dict[str, int]:
    """Seconds a call may stay in each in-flight state before it counts as stuck."""
    t = settings.timing
    slack = t.status_check_interval + t.request_timeout
    base = t.initial_status_delay + t.auto_miss_timeout + slack
    return {
        CallStatus.DISPATCHED.value: base,
        CallStatus.INITIATED.value: base,
        CallStatus.RINGING.value: base + RING_TIMEOUT_S,
        CallStatus.IN_PROGRESS.value: LONGEST_CALL_S + slack,
    }


def _age_s(now_ms: int, at_ms: Any) -> float | None:
    try:
        return round((now_ms - int(float(at_ms))) / 1000, 1)
    except (TypeError, ValueError):
        return None


async def _backlog(store: CallStore) -> CheckResult:
    status = await store.queue_status()
    details = {
        "queued": status.queued,
        "in_flight": status.in_flight,
        "live_instances": status.live_instances,
        "live_workers": status.live_workers,
    }
    age = status.oldest_queued_age_s
    if status.queued and status.live_workers == 0:
        return fail(
            "queue-backlog",
            f"{status.queued} call(s) queued, oldest {age} s, and no dispatch worker has a heartbeat in 30 s",
            "nothing is dispatching: " + CPU_FIX,
            **details,
        )
    if age is not None and age > BACKLOG_WARN_S:
        return warn(
            "queue-backlog",
            f"{status.queued} call(s) queued, the oldest for {age:.0f} s",
            "dispatch is capped by DISPATCH_RATE and MAX_CONCURRENT_CALLS: raise them within Plivo's CPS, "
            "or look for calls stuck in flight (stuck-calls); a paused or capped campaign holds its calls too "
            "(GET /api/campaigns, docs/runbook.md)",
            **details,
        )
    summary = f"{status.queued} queued" + (f", oldest {age:.0f} s" if age is not None else "")
    return ok("queue-backlog", f"{summary}; {status.in_flight} in flight", **details)


async def _stuck(store: CallStore, settings: Settings) -> CheckResult:
    redis: Redis = store.redis
    keys = store.keys
    now = store.now_ms()
    window = windows(settings)
    stuck: list[str] = []
    kinds: Counter[str] = Counter()
    ids = [str(i) for i in await redis.zrange(keys.in_flight, 0, SCAN_LIMIT - 1)]
    async with redis.pipeline(transaction=False) as pipe:
        for call_id in ids:
            pipe.hmget(keys.call(call_id), ["status", "updated_at"])
        rows = await pipe.execute() if ids else []
    for call_id, (status, updated_at) in zip(ids, rows, strict=True):
        age = _age_s(now, updated_at)
        if status in window and age is not None and age > window[status]:
            stuck.append(f"{call_id} {status} for {age:.0f} s (window {window[status]} s)")
            kinds[status] += 1
    lease_grace_ms = (settings.timing.request_timeout + 30) * 1000
    for call_id, deadline in await redis.zrangebyscore(keys.dispatching, "-inf", now - lease_grace_ms, withscores=True):
        stuck.append(f"{call_id} dispatching, lease ran out {(now - deadline) / 1000:.0f} s ago")
        kinds["dispatching"] += 1
    overdue_ms = (settings.timing.status_check_interval + settings.timing.request_timeout) * 1000
    overdue = await redis.zrangebyscore(keys.tracking, "-inf", now - overdue_ms, withscores=True)
    for call_id, due in overdue:
        stuck.append(f"{call_id} status check overdue by {(now - due) / 1000:.0f} s")
        kinds["tracking overdue"] += 1
    if not stuck:
        return ok("stuck-calls", f"none: {len(ids)} in-flight call(s) all within their windows", windows=window)
    if kinds["dispatching"]:
        remedy = "the dispatch reconciler is not running (it settles expired leases within seconds): " + CPU_FIX
    elif kinds["tracking overdue"] or kinds["dispatched"] or kinds["initiated"]:
        remedy = "the status tracker is not keeping up or not running: " + CPU_FIX
    else:
        remedy = "calls never settled: check that Plivo's hangup callbacks reach PUBLIC_BASE_URL and read make logs"
    counted = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    return fail("stuck-calls", f"{len(stuck)} stuck: {counted}", remedy, calls=stuck, windows=window)


async def _size(redis: Redis, key: str) -> int:
    """The size of a key whatever its type: the dead-letter store belongs to the delivery loop, not to this tool."""
    kind = str(await redis.type(key))
    if kind == "zset":
        return int(await redis.zcard(key))
    if kind == "list":
        return int(await redis.llen(key))  # type: ignore[misc]
    if kind == "hash":
        return int(await redis.hlen(key))  # type: ignore[misc]
    return 0


async def _outbox(store: CallStore) -> CheckResult:
    redis: Redis = store.redis
    keys = store.keys
    now = store.now_ms()
    size = int(await redis.zcard(keys.outbox))
    dead = await _size(redis, keys.dead_letters)
    details: dict[str, Any] = {"pending": size, "dead_letters": dead}
    oldest: float | None = None
    if size:
        members = [str(m) for m in await redis.zrange(keys.outbox, 0, 199)]
        async with redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hget(keys.call(member.rsplit(":", 1)[0]), "updated_at")
            settled = await pipe.execute()
        ages = [a for a in (_age_s(now, s) for s in settled) if a is not None]
        oldest = max(ages) if ages else None
        details["oldest_s"] = oldest
    fix = "the backend is unreachable or rejecting results: see the backend check, BACKEND_RESULTS_PATH and make logs"
    late = f"{size} result(s) undelivered, oldest settled {oldest:.0f} s ago" if oldest is not None else ""
    if oldest is not None and oldest > OUTBOX_FAIL_S:
        return fail("results-outbox", late, fix, **details)
    if oldest is not None and oldest > OUTBOX_WARN_S:
        return warn("results-outbox", late, fix, **details)
    if dead:
        return warn(
            "results-outbox",
            f"{dead} result(s) gave up delivery (dead letters)",
            f"inspect {keys.dead_letters} with redis-cli and fix the backend before re-delivering",
            **details,
        )
    summary = f"{size} result(s) awaiting delivery" + (f", oldest settled {oldest:.0f} s ago" if oldest else "")
    return ok("results-outbox", summary, **details)


async def check_queue(ctx: Context) -> list[CheckResult]:
    settings = ctx.need_settings()
    async with connect(ctx) as redis:
        store = CallStore(redis, settings.redis_key_prefix)
        try:
            return [await _backlog(store), await _stuck(store, settings), await _outbox(store)]
        except (RedisError, OSError) as exc:
            return [fail("queue", f"cannot read the queue from Redis: {summarize(exc)}", UNREACHABLE_FIX)]

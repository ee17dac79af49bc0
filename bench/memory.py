"""Redis memory per queued and per finished call, and what 100,000 enqueues beyond the admission limit cost.

Measured on the bench Redis (MEMORY STATS `dataset.bytes` deltas), through the store's own scripts: what the API does
after validation. A finished call is taken through a typical life (initiated, ringing, in progress, completed with
its uuids, duration and cause) and its result delivered (out of the outbox), as the service would leave it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from bench.common import redis_url
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore, QueueFull

CALLS = 10_000
BEYOND = 100_000
CONCURRENCY = 50
PREFIX = "bench-mem"
CONFIG = {"flow_name": "renewal", "lang": "en", "customer": {"name": "Ada Lovelace", "plan": "gold"}}


async def _used(redis: Redis) -> int:
    """The dataset's bytes (MEMORY STATS `dataset.bytes`): keys and values, without client buffers or scripts."""
    stats = await redis.execute_command("MEMORY", "STATS")  # type: ignore[no-untyped-call]
    pairs = dict(zip(stats[::2], stats[1::2], strict=True))
    return int(pairs["dataset.bytes"])


async def _all(jobs: int, one: Any) -> None:
    numbers = iter(range(jobs))

    async def worker() -> None:
        for n in numbers:
            await one(n)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def measure() -> dict[str, float]:
    redis = Redis.from_url(redis_url(), decode_responses=True, max_connections=CONCURRENCY)
    store = CallStore(redis, PREFIX)
    ids: list[str] = []

    async def enqueue(n: int) -> None:
        ids.append((await store.enqueue(f"+1415{n:07d}", "bench", CONFIG, f"order-{n}", max_queued=CALLS)).call_id)

    async def finish(n: int) -> None:
        call_id = ids[n]
        life: list[tuple[CallStatus, dict[str, Any]]] = [
            (CallStatus.INITIATED, {"request_uuid": f"req-{n:08d}-0000-4000-8000-000000000000"}),
            (CallStatus.RINGING, {"call_uuid": f"cuid-{n:08d}-0000-4000-8000-000000000000"}),
            (CallStatus.IN_PROGRESS, {"answer_time": "2026-01-01 10:00:05"}),
            (CallStatus.COMPLETED, {"duration": 42, "hangup_cause": "Normal Hangup", "end_time": "2026-01-01 10:47"}),
        ]
        for status, fields in life:
            await store.transition(call_id, status, "plivo-callback:hangup", {"call_status": status.value}, fields)
        await redis.zrem(store.keys.outbox, f"{call_id}:completed")  # its result was delivered

    await redis.execute_command("MEMORY", "PURGE")
    empty = await _used(redis)
    await _all(CALLS, enqueue)
    queued = await _used(redis)
    refused = 0

    async def beyond(n: int) -> None:
        nonlocal refused
        try:
            await store.enqueue("+14155550100", "bench", CONFIG, f"flood-{n}", max_queued=CALLS)
        except QueueFull:
            refused += 1

    async def keys() -> int:
        return len([k async for k in redis.scan_iter(f"{PREFIX}:*", count=10_000)])

    keys_before = await keys()
    await _all(BEYOND // 2, beyond)
    half = await _used(redis)
    await _all(BEYOND // 2, beyond)
    flooded = await _used(redis)
    keys_after = await keys()
    await _all(CALLS, finish)
    await redis.delete(store.keys.tracking)
    finished = await _used(redis)
    ttl = await redis.ttl(store.keys.call(ids[0]))
    await redis.delete(*[k async for k in redis.scan_iter(f"{PREFIX}:*", count=10_000)])
    await redis.aclose()
    return {
        "per_queued": (queued - empty) / CALLS,
        "per_finished": (finished - empty) / CALLS,
        "half_delta": half - queued,
        "flood_delta": flooded - queued,
        "refused": refused,
        "keys_before": keys_before,
        "keys_after": keys_after,
        "ttl": ttl,
    }


def run() -> str:
    m = asyncio.run(measure())
    return "\n".join(
        [
            "## Redis memory and bounds",
            "",
            f"{CALLS:,} calls through the store's scripts on the bench Redis (MEMORY STATS `dataset.bytes` deltas);"
            f" call_config {len(str(CONFIG))} bytes, each with an Idempotency-Key.",
            "",
            "| measurement | figure |",
            "| --- | --- |",
            "| Redis memory per queued call (record, Idempotency-Key, queue entries; no history list until it"
            " first changes) |"
            f" {m['per_queued']:,.0f} B |",
            f"| Redis memory per finished call (4 transitions, uuid indexes, result delivered), kept CALL_RETENTION"
            f" then expired (TTL of a fresh one: {m['ttl']:,} s) | {m['per_finished']:,.0f} B |",
            f"| {BEYOND:,} enqueues beyond the admission limit (MAX_QUEUED_CALLS={CALLS:,}), each with a new"
            f" Idempotency-Key: refused with `full` (429 over HTTP) | {m['refused']:,.0f} refused;"
            f" dataset {m['half_delta'] / 1024:+,.1f} KiB after half of them, {m['flood_delta'] / 1024:+,.1f} KiB after"
            f" all (allocator and Lua heap noise: nothing is stored); keys {m['keys_before']:,} before,"
            f" {m['keys_after']:,} after |",
            "",
        ]
    )

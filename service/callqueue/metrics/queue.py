"""Queue-wide figures, read from Redis at scrape time so every instance reports the same truth.

The same numbers as GET /api/queue/status (one reading of `CallStore.queue_status`), plus the outbox's dead
letters, the oldest in-flight call, the Plivo budget window, the Redis-side tallies (metrics/tally.py) and Redis
itself (a timed PING, memory from INFO). Dashboards aggregate these with max across instances, never sum.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis.exceptions import RedisError

from callqueue.metrics import catalog
from callqueue.settings import Settings
from callqueue.store.calls import CallStore, QueueStatus


@dataclass
class QueueSnapshot:
    status: QueueStatus
    dead_letters: int
    oldest_in_flight_age_s: float | None
    plivo_budget_used: int
    finished: dict[tuple[str, str], int]  # (outcome, campaign) → count
    dial_to_outcome: dict[str, float]  # bucket upper bound ('+Inf') → count, and 'sum'
    callbacks: dict[tuple[str, str], int]  # (event, result) → count
    redis_ping_s: float
    redis_memory: dict[str, int] = field(default_factory=dict)


def _pairs(raw: dict[str, str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        first, _, second = str(key).partition("|")
        out[(first, second)] = int(value)
    return out


async def read_snapshot(store: CallStore, settings: Settings) -> QueueSnapshot:
    status = await store.queue_status()
    now = store.now_ms()
    keys = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.dead_letters)
        pipe.zrange(keys.in_flight, 0, 0, withscores=True)
        pipe.zcount(keys.plivo_budget, now - settings.plivo_api_window * 1000, "+inf")
        pipe.hgetall(keys.metrics_finished)
        pipe.hgetall(keys.metrics_dial_to_outcome)
        pipe.hgetall(keys.metrics_callbacks)
        dead, oldest, budget, finished, dial, callbacks = await pipe.execute()
    started = time.perf_counter()
    await store.redis.ping()
    ping_s = time.perf_counter() - started
    memory: dict[str, int] = {}
    try:
        info = await store.redis.info("memory")
        memory = {"used": int(info.get("used_memory", 0)), "max": int(info.get("maxmemory", 0))}
    except RedisError:  # INFO may be restricted on a managed Redis: leave the memory gauges out
        pass
    return QueueSnapshot(
        status=status,
        dead_letters=int(dead),
        oldest_in_flight_age_s=max(0.0, (now - float(oldest[0][1])) / 1000) if oldest else None,
        plivo_budget_used=int(budget),
        finished=_pairs(finished),
        dial_to_outcome={str(k): float(v) for k, v in dial.items()},
        callbacks=_pairs(callbacks),
        redis_ping_s=ping_s,
        redis_memory=memory,
    )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def queue_families(snapshot: QueueSnapshot, settings: Settings) -> Iterator[Metric]:
    s = snapshot.status
    yield _gauge(catalog.QUEUE_DEPTH, "calls waiting to be dispatched, all instances", s.queued)
    yield _gauge(catalog.QUEUE_OLDEST_AGE, "age of the oldest queued call (0 when none)", s.oldest_queued_age_s or 0)
    by_status = GaugeMetricFamily(catalog.QUEUE_CALLS, "calls currently in each status", labels=["status"])
    for status, count in sorted(s.counts.items()):
        by_status.add_metric([status], count)
    yield by_status
    yield _gauge(catalog.IN_FLIGHT, "calls holding a concurrency slot", s.in_flight)
    yield _gauge(catalog.IN_FLIGHT_LIMIT, "MAX_CONCURRENT_CALLS", settings.max_concurrent_calls)
    yield _gauge(
        catalog.STUCK_IN_FLIGHT,
        "how long the oldest in-flight call has held its slot",
        snapshot.oldest_in_flight_age_s or 0,
    )
    yield _gauge(catalog.DISPATCH_PACE, "call starts per second over the last minute", s.dispatch_rate_per_s)
    yield _gauge(catalog.DISPATCH_RATE_LIMIT, "DISPATCH_RATE: call starts per second allowed", settings.dispatch_rate)
    yield _gauge(catalog.LIVE_INSTANCES, "service instances with a heartbeat in the last 30 s", s.live_instances)
    yield _gauge(catalog.LIVE_WORKERS, "dispatch workers with a heartbeat in the last 30 s", s.live_workers)
    yield _gauge(catalog.OUTBOX_DEPTH, "results awaiting delivery to the backend", s.pending_results)
    yield _gauge(catalog.DEAD_LETTERS, "results the backend will never get (see runbook)", snapshot.dead_letters)
    yield _gauge(
        catalog.PLIVO_BUDGET_USED,
        "Plivo REST requests in the current window, all instances",
        snapshot.plivo_budget_used,
    )
    yield _gauge(catalog.PLIVO_BUDGET_LIMIT, "PLIVO_API_LIMIT requests per PLIVO_API_WINDOW", settings.plivo_api_limit)
    finished = CounterMetricFamily(
        catalog.FINISHED, "entries into a final status, by outcome and campaign", labels=["outcome", "campaign"]
    )
    for (outcome, campaign), count in sorted(snapshot.finished.items()):
        finished.add_metric([outcome, campaign], count)
    yield finished
    yield _dial_histogram(snapshot.dial_to_outcome)
    callbacks = CounterMetricFamily(
        catalog.CALLBACKS, "Plivo callbacks answered, by event and result", labels=["event", "result"]
    )
    for (event, result), count in sorted(snapshot.callbacks.items()):
        callbacks.add_metric([event, result], count)
    yield callbacks
    yield _gauge(catalog.REDIS_PING, "round trip of one Redis PING at this scrape", snapshot.redis_ping_s)
    if snapshot.redis_memory:
        yield _gauge(catalog.REDIS_MEMORY_USED, "Redis used_memory", snapshot.redis_memory["used"])
        yield _gauge(catalog.REDIS_MEMORY_MAX, "Redis maxmemory (0: no limit)", snapshot.redis_memory["max"])


def _dial_histogram(raw: dict[str, float]) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound in [*(str(b) for b in catalog.DIAL_TO_OUTCOME_BUCKETS), "+Inf"]:
        running += raw.get(bound, 0.0)
        buckets.append((bound if bound == "+Inf" else f"{float(bound)}", running))
    return HistogramMetricFamily(
        catalog.DIAL_TO_OUTCOME,
        "time from the agent accepting the start to the call's final status",
        buckets=buckets,
        sum_value=raw.get("sum", 0.0),
    )

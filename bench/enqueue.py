"""Enqueue throughput: over HTTP on one uvicorn worker, and the enqueue path alone beside arq's enqueue_job."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import redis as sync_redis
from arq.connections import ArqRedis
from redis.asyncio import Redis

from bench.common import redis_url, service_process
from callqueue.store.calls import CallStore

BODY = json.dumps({"phone_number": "+14155550100", "campaign_id": "bench", "call_config": {"flow_name": "demo"}})
HTTP_SECONDS = 10
CONNECTIONS = 64
DIRECT_JOBS = 20_000
DIRECT_CONCURRENCY = 50


def http_enqueue() -> dict[str, Any]:
    with service_process({"REDIS_URL": redis_url(), "REDIS_KEY_PREFIX": "bench-http", "DISPATCH_WORKERS": "0"}) as base:
        host, port = base.removeprefix("http://").split(":")
        args = [sys.executable, "-m", "bench.loadgen", host, port, "/api/calls/queue", BODY, str(CONNECTIONS)]
        subprocess.run([*args, "2"], check=True, capture_output=True)  # warm-up
        out = subprocess.run([*args, str(HTTP_SECONDS)], check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


async def _timed(concurrency: int, jobs: int, one: Any) -> float:
    queue = iter(range(jobs))

    async def worker() -> None:
        for n in queue:
            await one(n)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return jobs / (time.perf_counter() - started)


async def direct_enqueue() -> dict[str, float]:
    url = redis_url()
    ours = Redis.from_url(url, decode_responses=True, max_connections=DIRECT_CONCURRENCY)
    store = CallStore(ours, "bench-direct")
    arq = ArqRedis.from_url(url, max_connections=DIRECT_CONCURRENCY)
    config = {"flow_name": "demo"}

    async def enqueue_ours(n: int) -> None:
        await store.enqueue("+14155550100", "bench", config)

    async def enqueue_arq(n: int) -> None:
        await arq.enqueue_job("place_call", "+14155550100", "bench", config, _queue_name="bench-arq")

    for fn in (enqueue_ours, enqueue_arq):  # warm-up both
        await _timed(DIRECT_CONCURRENCY, 1000, fn)
    ours_rate = await _timed(DIRECT_CONCURRENCY, DIRECT_JOBS, enqueue_ours)
    arq_rate = await _timed(DIRECT_CONCURRENCY, DIRECT_JOBS, enqueue_arq)
    await ours.aclose()
    await arq.aclose()
    return {"ours": round(ours_rate), "arq": round(arq_rate), "ratio": round(ours_rate / arq_rate, 2)}


def run() -> str:
    client = sync_redis.Redis.from_url(redis_url())
    client.flushdb()
    http = http_enqueue()
    direct = asyncio.run(direct_enqueue())
    client.flushdb()
    return "\n".join(
        [
            "## Enqueue",
            "",
            f"- HTTP `POST /api/calls/queue`, one uvicorn worker, {CONNECTIONS} keep-alive connections, "
            f"{HTTP_SECONDS} s: "
            f"**{http['per_second']} accepted calls/s** (target ≥ 2,000), p50 {http['p50_ms']} ms, "
            f"p99 {http['p99_ms']} ms, HTTP statuses {http['statuses']}",
            f"- Enqueue path alone ({DIRECT_JOBS} jobs, {DIRECT_CONCURRENCY} concurrent, same Redis): "
            f"ours {direct['ours']}/s, arq `enqueue_job` {direct['arq']}/s, **ratio {direct['ratio']}** (target ≥ 1.0)",
            "",
        ]
    )

"""Redis: reachable, how fast, and whether its eviction policy could silently drop queued calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callqueue.ops.context import Context
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn
from callqueue.store.connection import NOEVICTION_FIX, eviction_policy, policy_problem, redis_client

UNREACHABLE_FIX = (
    "check REDIS_URL; on Cloud Run, Memorystore is reached only through Direct VPC egress or a connector in its region"
)
SLOW_RTT_MS = 20.0


def redis_target(url: str) -> str:
    """The URL without its password, safe to print."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


@asynccontextmanager
async def connect(ctx: Context) -> AsyncIterator[Redis]:
    settings = ctx.need_settings()
    client = redis_client(
        settings,
        decode_responses=True,
        socket_connect_timeout=ctx.timeout_s,
        socket_timeout=ctx.timeout_s,
        retry_on_timeout=False,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def check_redis(ctx: Context) -> CheckResult:
    target = redis_target(ctx.need_settings().redis_url)
    async with connect(ctx) as redis:
        try:
            await redis.ping()  # connect first: the round trips below measure Redis, not the handshake
            rtts = []
            for _ in range(3):
                started = time.perf_counter()
                await redis.ping()
                rtts.append((time.perf_counter() - started) * 1000)
        except (RedisError, OSError) as exc:
            return fail("redis", f"{target} unreachable: {summarize(exc)}", UNREACHABLE_FIX, url=target)
        rtt = round(sorted(rtts)[1], 2)
        if rtt > SLOW_RTT_MS:
            return warn(
                "redis",
                f"{target} answers, but a round trip takes {rtt} ms",
                "put Redis in the queue's region and reach it over Direct VPC egress",
                url=target,
                rtt_ms=rtt,
            )
        return ok("redis", f"{target} answers PING in {rtt} ms", url=target, rtt_ms=rtt)


async def check_eviction(ctx: Context) -> CheckResult:
    settings = ctx.need_settings()
    async with connect(ctx) as redis:
        try:
            policy = await eviction_policy(redis)
        except (RedisError, OSError) as exc:
            return fail("redis-eviction", f"could not read the eviction policy: {summarize(exc)}", UNREACHABLE_FIX)
    problem = policy_problem(policy)
    if problem is None:
        return ok("redis-eviction", "maxmemory-policy noeviction: Redis refuses writes rather than drop calls")
    if settings.redis_allow_eviction:
        return warn(
            "redis-eviction",
            f"{problem}; the service starts anyway because REDIS_ALLOW_EVICTION=true",
            "acceptable on a local Redis only: " + NOEVICTION_FIX,
            policy=policy,
        )
    return fail("redis-eviction", f"{problem}: the service refuses to start against it", NOEVICTION_FIX, policy=policy)

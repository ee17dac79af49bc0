"""The deployed queue service as it reports itself on /api/health: the timing profile it really runs with.

From an operator's machine the profile check only describes the operator's shell; this one asks the service.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from callqueue.ops.checks.peers import Peer, explain_status
from callqueue.ops.checks.profile import WRONG_PROFILE_FIX
from callqueue.ops.checks.redis_health import UNREACHABLE_FIX
from callqueue.ops.context import Context
from callqueue.ops.runapp import parse_run_url
from callqueue.ops.runner import summarize
from callqueue.ops.verdict import CheckResult, fail, ok, warn

NAME = "queue-service"
HEALTH_PATH = "/api/health"


def wrong_profile(queue_url: str, profile: str) -> bool:
    """A queue served from run.app is on Cloud Run, where anything but the cloud_run profile marks calls early."""
    return parse_run_url(queue_url).form != "not_run_app" and profile != "cloud_run"


async def check_queue_service(ctx: Context, queue_url: str) -> CheckResult:
    url = queue_url.rstrip("/") + HEALTH_PATH
    details: dict[str, Any] = {"url": url, "auth": ctx.tokens.describe()}
    try:
        headers = await ctx.tokens.headers_for(url)
        started = time.perf_counter()
        response = await ctx.http.get(url, headers=headers, timeout=ctx.timeout_s)
    except httpx.TimeoutException:
        return fail(NAME, f"no answer within {ctx.timeout_s:g} s", "read the queue's logs: make logs ENV=…", **details)
    except httpx.HTTPError as exc:
        return fail(NAME, f"{queue_url} unreachable: {summarize(exc)}", "check the queue URL (QUEUE_URL)", **details)
    details["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    auth = explain_status(Peer("queue", "QUEUE_URL", queue_url), response.status_code, ctx.tokens.kind)
    if auth:
        return fail(NAME, auth[0], auth[1], **details)
    try:
        body = response.json()
        timing = body["timing"]
        profile = str(timing["profile"])
    except (ValueError, KeyError, TypeError):
        return warn(
            NAME,
            f"{HEALTH_PATH} answered {response.status_code} without the timing block: {response.text[:80]!r}",
            "check QUEUE_URL points at the queue service",
            **details,
        )
    details["profile"] = f"{profile} ({timing.get('reason', '')})"
    details["values"] = {
        k: f"{v} ({timing.get('sources', {}).get(k, '?')})" for k, v in timing.get("values", {}).items()
    }
    if wrong_profile(queue_url, profile):
        return fail(NAME, f"the deployed queue runs the {profile} profile", WRONG_PROFILE_FIX, **details)
    redis = body.get("redis") or {}
    if response.status_code == 503 or redis.get("status") != "ok":
        return fail(
            NAME,
            f"the queue cannot reach Redis: {redis.get('error', response.status_code)}",
            UNREACHABLE_FIX,
            **details,
        )
    return ok(NAME, f"healthy, profile {profile}, Redis {redis.get('latency_ms')} ms from the queue", **details)

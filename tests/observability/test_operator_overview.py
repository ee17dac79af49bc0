"""GET /api/operator/overview and the `{prefix}:recent` list behind it: bounded, keeping no call alive, and coping
with ids whose call has expired (or that are not ids at all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import cast

import httpx
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.keys import RECENT_CALLS_KEPT, RECENT_TRIM_SLACK
from local.simulators.server import running

CALL = {"phone_number": "+14155550100", "campaign_id": "overview", "call_config": {"flow_name": "f"}}


@pytest.fixture
def api(redis_url: str, key_prefix: str) -> Iterator[httpx.Client]:
    settings = load_settings({"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": key_prefix, "DISPATCH_WORKERS": "0"})
    with running(create_app(settings, background=False)) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def _expire_now(r: redis.Redis, keys: list[str]) -> None:
    """What CALL_RETENTION does, sooner: the keys that carry an expiry get 1 ms left; wait until Redis drops them."""
    for key in keys:
        assert cast(int, r.ttl(key)) > 0, f"{key} must already be set to expire"
        r.pexpire(key, 1)
    deadline = time.monotonic() + 30
    while r.exists(*keys) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not r.exists(*keys)


def test_an_expired_call_drops_off_the_page_and_the_list_does_not_revive_it(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    ids = [api.post("/api/calls/queue", json=CALL).json()["call_id"] for _ in range(3)]
    assert api.post(f"/api/calls/{ids[0]}/cancel").status_code == 200  # finished: kept CALL_RETENTION, then gone
    recent = f"{key_prefix}:recent"
    assert sync_redis.lrange(recent, 0, -1) == ids[::-1]
    assert sync_redis.ttl(recent) == -1, "a bounded list of ids, not a copy of any call"
    _expire_now(sync_redis, [f"{key_prefix}:call:{ids[0]}", f"{key_prefix}:call:{ids[0]}:history"])
    sync_redis.lpush(recent, "not-an-id", f"{'f' * 32}")  # junk, and an id of ours whose call is long gone

    answer = api.get("/api/operator/overview")
    assert answer.status_code == 200, answer.text
    assert [c["call_id"] for c in answer.json()["calls"]] == [ids[2], ids[1]]
    assert api.get("/metrics").status_code == 200
    assert api.get(f"/api/calls/{ids[0]}").status_code == 404
    assert not sync_redis.exists(f"{key_prefix}:call:{ids[0]}", f"{key_prefix}:call:{ids[0]}:history"), (
        "reading the page must not bring an expired call back"
    )
    assert not [k for k in sync_redis.scan_iter(f"{key_prefix}:*") if "not-an-id" in str(k) or "f" * 32 in str(k)]


def test_the_recent_list_keeps_only_the_newest_ids(redis_url: str, key_prefix: str, sync_redis: redis.Redis) -> None:
    async def scenario() -> list[str]:
        client = AsyncRedis.from_url(redis_url, decode_responses=True)
        store = CallStore(client, key_prefix)
        ids = [(await store.enqueue("+14155550100", "c", {})).call_id for _ in range(RECENT_CALLS_KEPT + 100)]
        await client.aclose()
        return ids

    ids = asyncio.run(scenario())
    kept = cast(list[str], sync_redis.lrange(f"{key_prefix}:recent", 0, -1))
    # Trimmed back to RECENT_CALLS_KEPT once it holds RECENT_TRIM_SLACK more (not on every enqueue): the newest first.
    assert kept == ids[::-1][: len(kept)]
    assert RECENT_CALLS_KEPT <= len(kept) <= RECENT_CALLS_KEPT + RECENT_TRIM_SLACK
    assert len(kept) < len(ids)

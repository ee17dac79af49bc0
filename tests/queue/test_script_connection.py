"""Keyless scripts go straight on a connection of the client's pool (store/calls.py, CallStore._evalsha), not
through redis-py's execute_command: what that layer gave must hold. A connection Redis closed is replaced before
the script is sent (the call is taken once), a script's error is raised and its connection goes back to the pool,
and a Redis that does not answer ends in the watchdog's timeout (tests/queue/test_redis_hung.py)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis
from local.redis_server import ThrowawayRedis

CONFIG = {"flow_name": "f"}


def test_an_enqueue_on_a_connection_redis_closed_is_taken_once_on_a_fresh_one() -> None:
    async def scenario(url: str) -> None:
        client = service_redis(load_settings({"REDIS_URL": url}))
        store = CallStore(client, "dropped")
        first = await store.enqueue("+14155550100", "c", CONFIG)
        async with Redis.from_url(url) as other:
            assert await other.client_kill_filter(_type="normal", skipme=True) >= 1  # our pooled connection
        second = await store.enqueue("+14155550101", "c", CONFIG)
        assert second.call_id != first.call_id
        assert await client.zrange(store.keys.queued, 0, -1) == [first.call_id, second.call_id]
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server.url))


def test_a_script_error_is_raised_and_its_connection_serves_the_next_call() -> None:
    async def scenario(url: str) -> None:
        client = service_redis(load_settings({"REDIS_URL": url}))
        client.connection_pool.max_connections = 1  # a connection not given back would refuse the next call
        store = CallStore(client, "failing")
        for _ in range(3):
            with pytest.raises(ResponseError):
                await store.enqueue("+14155550100", "c", CONFIG, max_queued="not a number")  # type: ignore[arg-type]
        taken = await store.enqueue("+14155550100", "c", CONFIG)
        assert await client.zrange(store.keys.queued, 0, -1) == [taken.call_id]
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server.url))

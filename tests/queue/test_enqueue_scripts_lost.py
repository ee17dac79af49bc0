"""An enqueue calls its script by digest (store/calls.py): a Redis that lost its scripts (restarted without
persistence, SCRIPT FLUSH, a failover to a fresh replica) still takes the call, and the call is there."""

from __future__ import annotations

import asyncio

from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.store.connection import service_redis
from local.redis_server import ThrowawayRedis


def test_an_enqueue_after_redis_lost_its_scripts_is_persisted() -> None:
    async def scenario(url: str) -> None:
        client = service_redis(load_settings({"REDIS_URL": url}))
        store = CallStore(client, "lost")
        first = await store.enqueue("+14155550100", "c", {"flow_name": "f"}, "key-1")
        await client.script_flush()
        assert await client.script_exists(store.script("ENQUEUE").sha) == [False]

        second = await store.enqueue("+14155550101", "c", {"flow_name": "f"})
        assert not second.replayed and second.call_id != first.call_id
        record = await store.get(second.call_id)
        assert record is not None and record.phone_number == "+14155550101"

        await client.script_flush()
        replay = await store.enqueue("+14155550100", "c", {"flow_name": "f"}, "key-1")
        assert replay.replayed and replay.call_id == first.call_id
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server.url))

"""An enqueue, a claim and every other keyless script run by digest (store/calls.py): a Redis that lost its scripts
(restarted without persistence, SCRIPT FLUSH, a failover to a fresh replica) still takes the call, hands it out
once, and the call is there."""

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


def test_a_claim_after_redis_lost_its_scripts_hands_out_the_call_once() -> None:
    async def scenario(url: str) -> None:
        client = service_redis(load_settings({"REDIS_URL": url}))
        store = CallStore(client, "lost-claim")
        queued = [(await store.enqueue(f"+1415555020{i}", "c", {"flow_name": "f"})).call_id for i in range(2)]
        # the plain-case script, then the full rules (a suppressed number is theirs to decide), each lost first
        await client.script_flush()
        first = await store.claim(100, 10, 60_000, "w")
        assert first.outcome == "claimed" and first.call_id == queued[0] and first.record is not None
        assert first.record.call_config == {"flow_name": "f"} and first.token == 1
        blocked = "+14155550299"
        await store.enqueue(blocked, "c", {"flow_name": "f"})
        await client.hset(store.keys.suppressed, blocked, "{}")  # type: ignore[misc]
        await client.script_flush()
        assert await client.script_exists(store.script("CLAIM").sha, store.script("CLAIM_FULL").sha) == [False, False]
        second = await store.claim(100, 10, 60_000, "w")
        assert (second.outcome, second.call_id) == ("claimed", queued[1])
        await client.script_flush()
        third = await store.claim(100, 10, 60_000, "w")
        assert third.outcome == "suppressed" and third.record is None
        await client.script_flush()
        assert (await store.claim(100, 10, 60_000, "w")).outcome == "empty"
        for call_id in queued:
            record = await store.get(call_id)
            assert record is not None and record.status == "dispatching" and record.attempts == 1
            assert [t.status for t in record.history] == ["queued", "dispatching"]
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server.url))

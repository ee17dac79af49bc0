"""Structures nobody else trims are trimmed by us: the agent event stream and the dead letters."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis

from callqueue.delivery import outbox
from callqueue.settings import load_settings
from callqueue.store.calls import CallStore
from callqueue.tracking import agent_stream
from callqueue.tracking.cadence import Cadence
from callqueue.tracking.rejections import Rejections


def test_the_agent_event_stream_is_trimmed_by_the_consumer(
    redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_stream, "AGENT_EVENTS_KEEP", 100)

    async def scenario() -> tuple[int, int]:
        redis = Redis.from_url(redis_url, decode_responses=True)
        store = CallStore(redis, key_prefix)
        for _ in range(20):  # an agent writing without MAXLEN
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.xadd(store.keys.agent_events, {"call_id": uuid.uuid4().hex, "status": "ringing", "at": "1"})
                await pipe.execute()
        before = await redis.xlen(store.keys.agent_events)
        consumer = agent_stream.AgentEventConsumer(store, Cadence(load_settings({}).timing), "c1", Rejections())
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # poll the state with a generous overall deadline
            if await redis.xlen(store.keys.agent_events) <= 300:
                break
            await asyncio.sleep(0.05)
        after = await redis.xlen(store.keys.agent_events)
        stop.set()
        await task
        await redis.aclose()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == 2000
    assert after <= 300, "trimmed to about AGENT_EVENTS_KEEP (MAXLEN ~ keeps whole stream nodes)"


def test_dead_letters_keep_only_the_newest(redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "DEAD_LETTERS_KEEP", 10)

    async def scenario() -> list[str]:
        redis = Redis.from_url(redis_url, decode_responses=True)
        store = CallStore(redis, key_prefix)
        delivery = outbox.ResultDelivery(store, None, None, load_settings({}).timing)  # type: ignore[arg-type]
        for n in range(30):
            await delivery._dead_letter(f"{n:032x}:failed", "test", record_exists=False)
            await asyncio.sleep(0.002)  # distinct scores (ms)
        members: list[str] = await redis.zrange(store.keys.dead_letters, 0, -1)
        await redis.aclose()
        return members

    assert asyncio.run(scenario()) == [f"{n:032x}:failed" for n in range(20, 30)]

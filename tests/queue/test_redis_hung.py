"""A Redis that stops answering (connections open, no replies): every command ends in a bounded wait, a request
answers 503, and the client recovers by itself once Redis answers again. The bound comes from one watchdog per
connection (store/watchdog.py), not from a per-command socket timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from callqueue.api.app import create_app
from callqueue.settings import load_settings
from callqueue.store.connection import COMMAND_TIMEOUT_S, service_redis
from local.redis_server import ThrowawayRedis
from local.simulators.server import running

CALL = {"phone_number": "+14155550100", "campaign_id": "hung", "call_config": {"flow_name": "f"}}


@pytest.fixture
def own_redis() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as server:
        yield server


def test_every_command_on_a_hung_redis_fails_with_a_timeout_and_the_client_recovers(own_redis: ThrowawayRedis) -> None:
    async def scenario() -> None:
        client = service_redis(load_settings({"REDIS_URL": own_redis.url}), command_timeout_s=0.5)
        await client.set("k", "v")
        pipe = client.pipeline(transaction=True)
        pipe.get("k")
        pipe.set("other", "w")  # sent before the abort: Redis may still apply it once resumed; nothing reads it
        own_redis.pause()
        try:
            # A plain command, several at once on as many connections, and a pipeline: each ends in a timeout.
            outcomes = await asyncio.gather(
                client.get("k"),
                *(client.incr("n") for _ in range(5)),
                pipe.execute(),
                return_exceptions=True,
            )
        finally:
            own_redis.resume()
        for outcome in outcomes:
            assert isinstance(outcome, RedisTimeoutError), outcome
            assert "did not answer within 0.5 s" in str(outcome)
        assert await client.get("k") == "v"  # fresh connections, nothing stuck
        await client.aclose()

    asyncio.run(scenario())


def test_a_hung_redis_answers_503_not_a_hung_request_and_enqueue_resumes(own_redis: ThrowawayRedis) -> None:
    env = {"REDIS_URL": own_redis.url, "DISPATCH_WORKERS": "0"}
    with running(create_app(load_settings(env), background=False)) as base, httpx.Client(base_url=base) as api:
        assert api.post("/api/calls/queue", json=CALL).status_code == 202
        own_redis.pause()
        try:
            # The client waits far longer than the service's bound: the service must end the wait, not the client.
            answer = api.post("/api/calls/queue", json=CALL, timeout=COMMAND_TIMEOUT_S * 6)
        finally:
            own_redis.resume()
        assert answer.status_code == 503, answer.text
        assert answer.json()["errors"] == [{"dependency": "redis", "reason": "unreachable (TimeoutError)"}]
        assert int(answer.headers["Retry-After"]) > 0
        deadline = time.monotonic() + 30
        while (status := api.post("/api/calls/queue", json=CALL).status_code) != 202 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 202

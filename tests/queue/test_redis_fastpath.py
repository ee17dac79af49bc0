"""The service's Redis client's fast path (store/fastpath.py): hiredis packs the same bytes redis-py's own packer
makes and refuses what it refuses; the pool's ready check still sees an unread reply or a closed connection."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from callqueue.settings import load_settings
from callqueue.store.connection import service_redis
from callqueue.store.fastpath import FastPath
from local.redis_server import ThrowawayRedis


class _Packed(FastPath, Connection):
    pass


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "a" * 40, 0, "cq", "", "+14155550100", '{"flow_name":"démo"}', 86400, 1.5, 1e20, -3),
        ("CONFIG GET", "maxmemory-policy"),
        (b"SCRIPT LOAD", b"return 1"),
        ("SET", "k", b"\x00\xff binary", "PX", 10),
    ],
)
def test_hiredis_packs_the_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    ours, theirs = _Packed(), Connection()
    assert b"".join(ours.pack_command(*args)) == b"".join(theirs.pack_command(*args))


@pytest.mark.parametrize("bad", [None, True, {"a": 1}])
def test_a_value_redis_cannot_take_is_a_data_error(bad: object) -> None:
    with pytest.raises(DataError):
        _Packed().pack_command("SET", "k", bad)


def test_the_service_client_round_trips_through_a_real_redis() -> None:
    async def scenario(url: str) -> None:
        client = service_redis(load_settings({"REDIS_URL": url}))
        await client.set("k", "v é")
        await client.zadd("z", {"m": 1.25})
        assert await client.get("k") == "v é"
        assert await client.zscore("z", "m") == 1.25
        assert await client.eval("return ARGV[1] .. ARGV[2]", 0, "a", 7) == "a7"  # type: ignore[arg-type,misc]
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server.url))


def test_the_ready_check_sees_an_unread_reply_and_a_closed_connection_but_passes_an_idle_one() -> None:
    async def scenario(server: ThrowawayRedis) -> None:
        client = service_redis(load_settings({"REDIS_URL": server.url}))
        await client.ping()
        conn = cast(FastPath, client.connection_pool._available_connections[0])
        assert await conn.can_read_destructive() is False  # idle: handed out
        await conn.send_command("PING")
        for _ in range(1000):  # until the loop has received the reply nobody read
            if await conn.can_read_destructive():
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("an unread reply was never seen")
        await conn.disconnect()
        await conn.connect()  # type: ignore[no-untyped-call]
        assert await conn.can_read_destructive() is False
        server.stop()  # the server goes away: the stream ends
        for _ in range(1000):
            if await conn.can_read_destructive():
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("a closed connection was never seen")
        await client.aclose()

    with ThrowawayRedis() as server:
        asyncio.run(scenario(server))

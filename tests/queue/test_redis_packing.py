"""The service's Redis client packs commands with hiredis: the same bytes redis-py's own packer makes, the same
refusal of a value Redis cannot take, and the same answers from a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from callqueue.settings import load_settings
from callqueue.store.connection import service_redis
from callqueue.store.packing import HiredisPacked
from local.redis_server import ThrowawayRedis


class _Packed(HiredisPacked, Connection):
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

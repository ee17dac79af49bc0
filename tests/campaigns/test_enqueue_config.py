"""The call_config an enqueue stores (store/calls.py encodes it with one encoder made once): compact, keys sorted,
byte for byte what json.dumps made, and a value that is not JSON (NaN, infinity) refused before anything is written.
These hold the behaviour the cached encoder must keep; they pass before and after it."""

from __future__ import annotations

import json
import math

import pytest
import redis

from callqueue.clock import OffsetClock
from callqueue.store.calls import CallStore, call_fingerprint
from tests.campaigns.conftest import new_number, run_store

CONFIG = {"flow_name": "f", "zeta": 1.5, "nested": {"b": [1, 2, None], "a": "é"}}


def test_the_stored_config_is_compact_sorted_and_its_fingerprint_the_one_replays_compare(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    phone = new_number()

    async def body(store: CallStore) -> str:
        return (await store.enqueue(phone, "cfg", CONFIG, "key-1")).call_id

    call_id = run_store(redis_url, key_prefix, clock, body)
    stored: list[str] = sync_redis.hmget(f"{key_prefix}:call:{call_id}", ["call_config", "fingerprint"])  # type: ignore[assignment]
    assert stored[0] == json.dumps(CONFIG, separators=(",", ":"), sort_keys=True)
    assert stored[0] == '{"flow_name":"f","nested":{"a":"\\u00e9","b":[1,2,null]},"zeta":1.5}'
    assert stored[1] == call_fingerprint(phone, "cfg", dict(reversed(CONFIG.items())))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_config_value_that_is_not_json_is_refused_and_nothing_is_written(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis, bad: float
) -> None:
    async def body(store: CallStore) -> None:
        with pytest.raises(ValueError, match="JSON compliant"):
            await store.enqueue(new_number(), "cfg", {"flow_name": "f", "x": bad})

    run_store(redis_url, key_prefix, clock, body)
    assert sync_redis.keys(f"{key_prefix}:*") == []

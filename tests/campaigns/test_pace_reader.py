"""The pace a user reads (queue status `dispatch_rate_per_s`, a campaign's `starts_last_minute`) counts the starts of
the last minute. The pace sets are trimmed only when a start is added to them (scripts.py, claim_script.py), so
after dispatching stops they still hold older starts: the readers must count a time range, not the set."""

from __future__ import annotations

import redis

from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.store.calls import CallStore
from tests.campaigns.conftest import new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000


def test_starts_older_than_a_minute_are_not_counted_when_no_start_trimmed_them(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    paces = (f"{key_prefix}:pace", f"{key_prefix}:campaign:paced:pace")

    async def body(store: CallStore) -> list[tuple[float, int]]:
        for _ in range(2):
            await store.enqueue(new_number(), "paced", CONFIG)
            assert (await store.claim(RATE, SLOTS, LEASE, "w")).outcome == "claimed"
        read = []
        for _ in range(2):
            raw = await CampaignStore(store).raw_status("paced", store.now_ms())
            assert raw is not None
            read.append(((await store.queue_status()).dispatch_rate_per_s, raw["starts_last_minute"]))
            # Dispatch stopped: as if both starts were made 61 s ago, and nothing started since to trim them.
            for key in paces:
                starts: list[tuple[str, float]] = sync_redis.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
                sync_redis.zadd(key, {member: at - 61_000 for member, at in starts})
        return read

    assert run_store(redis_url, key_prefix, clock, body) == [(round(2 / 60, 3), 2), (0.0, 0)]
    assert [sync_redis.zcard(key) for key in paces] == [2, 2], "still there: the readers count by time"

"""What an enqueue leaves on its campaign (issue 12: fewer Redis commands per enqueue, the same truth).

The campaign's total is the sum of its per-status counts (no `total` kept beside them), its place in the index by
activity (`campaigns`) moves at most once a second, and a campaign already in the rotation is looked up rather than
added again. What a user sees must not tell: the same totals through a call's life, single and bulk alike, a
campaign written by the previous version read the same, the index following new calls, and a campaign's turn kept
(or, once it left the rotation, taken at the current virtual time).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.store.calls import CallStore
from tests.campaigns.conftest import new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000


def queue(api: httpx.Client, campaign: str) -> str:
    body = {"phone_number": new_number(), "campaign_id": campaign, "call_config": CONFIG}
    answer = api.post("/api/calls/queue", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["call_id"])


def listed(api: httpx.Client, campaign: str) -> dict[str, Any]:
    return next(c for c in api.get("/api/campaigns").json()["campaigns"] if c["campaign_id"] == campaign)


def test_the_total_counts_every_call_taken_single_or_bulk_whatever_became_of_it(api: httpx.Client) -> None:
    singles = [queue(api, "tally") for _ in range(2)]
    bulk = {"calls": [{"phone_number": new_number()} for _ in range(3)], "call_config": CONFIG}
    assert api.post("/api/campaigns/tally/calls", json=bulk).json()["accepted"] == 3
    assert api.post(f"/api/calls/{singles[0]}/cancel").status_code == 200
    status = api.get("/api/campaigns/tally").json()
    assert status["calls"]["total"] == 5
    assert status["calls"]["by_status"] == {"canceled": 1, "queued": 4}
    assert status["progress"]["total"] == 5 and status["progress"]["settled"] == 1
    assert listed(api, "tally")["total"] == 5


def test_the_campaign_keeps_its_counts_once_no_total_beside_them(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    # One write fewer per enqueue: the total is the sum of the counts, not a field of its own (revisions up to
    # 02f958d read one; docs/runbook.md says what they show when rolled back to).
    queue(api, "once")
    bulk = {"calls": [{"phone_number": new_number()} for _ in range(2)], "call_config": CONFIG}
    assert api.post("/api/campaigns/once/calls", json=bulk).json()["accepted"] == 2
    fields: dict[str, str] = sync_redis.hgetall(f"{key_prefix}:campaign:once")  # type: ignore[assignment]
    assert fields["n:queued"] == "3" and "total" not in fields
    assert api.get("/api/campaigns/once").json()["calls"]["total"] == 3 and listed(api, "once")["total"] == 3


def test_a_campaign_written_by_the_previous_version_reads_the_same_and_its_next_call_indexes_it(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    # The previous version kept `total` beside the counts, had no `seen_s`, and indexed the campaign on every call.
    camp = f"{key_prefix}:campaign:older"
    sync_redis.hset(camp, mapping={"total": "3", "n:queued": "2", "n:completed": "1", "created_at": "1700000000000"})
    assert api.get("/api/campaigns/older").json()["calls"]["total"] == 3
    call_id = queue(api, "older")
    status = api.get("/api/campaigns/older").json()
    assert status["calls"]["total"] == 4 and status["calls"]["by_status"] == {"completed": 1, "queued": 3}
    created = int(sync_redis.hget(f"{key_prefix}:call:{call_id}", "created_at"))  # type: ignore[arg-type]
    assert sync_redis.zscore(f"{key_prefix}:campaigns", "older") == created
    assert listed(api, "older")["total"] == 4


def test_the_index_by_activity_follows_new_calls_within_a_second(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    index = f"{key_prefix}:campaigns"

    def created_at(call_id: str) -> int:
        return int(sync_redis.hget(f"{key_prefix}:call:{call_id}", "created_at"))  # type: ignore[arg-type]

    async def body(store: CallStore) -> None:
        first = (await store.enqueue(new_number(), "idx", CONFIG)).call_id
        assert sync_redis.zscore(index, "idx") == created_at(first), "a campaign's first call indexes it at once"
        for _ in range(20):
            call_id = (await store.enqueue(new_number(), "idx", CONFIG)).call_id
            score: float | None = sync_redis.zscore(index, "idx")  # type: ignore[assignment]
            assert score is not None and score <= created_at(call_id)
            assert score // 1000 == created_at(call_id) // 1000, "at most within the same second as the last call"
            assert sync_redis.hget(f"{key_prefix}:campaign:idx", "seen_s") == str(created_at(call_id) // 1000)
        # Last indexed long ago (as if its last call was): the next call moves it to its own time.
        sync_redis.hset(f"{key_prefix}:campaign:idx", "seen_s", "1700000000")
        sync_redis.zadd(index, {"idx": 1_700_000_000_000})
        later = (await store.enqueue(new_number(), "idx", CONFIG)).call_id
        assert sync_redis.zscore(index, "idx") == created_at(later)

    run_store(redis_url, key_prefix, clock, body)


def test_bulk_indexes_its_campaign_as_a_single_call_does(
    api: httpx.Client, sync_redis: redis.Redis, key_prefix: str
) -> None:
    bulk = {"calls": [{"phone_number": new_number()}], "call_config": CONFIG}
    call_id = api.post("/api/campaigns/bulky/calls", json=bulk).json()["items"][0]["call_id"]
    created = int(sync_redis.hget(f"{key_prefix}:call:{call_id}", "created_at"))  # type: ignore[arg-type]
    assert sync_redis.zscore(f"{key_prefix}:campaigns", "bulky") == created
    assert sync_redis.hget(f"{key_prefix}:campaign:bulky", "seen_s") == str(created // 1000)
    queue(api, "bulky")
    assert listed(api, "bulky")["total"] == 2


def test_a_campaign_in_the_rotation_keeps_its_turn_and_one_that_left_rejoins_at_the_current_time(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    ready, vtime = f"{key_prefix}:campaigns:ready", f"{key_prefix}:campaigns:vtime"

    async def body(store: CallStore) -> None:
        for _ in range(2):
            await store.enqueue(new_number(), "turns", CONFIG)
        assert sync_redis.zscore(ready, "turns") == 0
        assert (await store.claim(RATE, SLOTS, LEASE, "w")).call_id
        assert sync_redis.zscore(ready, "turns") == 1, "served once: its next turn is one stride on"
        await store.enqueue(new_number(), "turns", CONFIG)
        assert sync_redis.zscore(ready, "turns") == 1, "a new call does not move a campaign's turn"
        for _ in range(2):
            assert (await store.claim(RATE, SLOTS, LEASE, "w")).call_id
        assert sync_redis.zscore(ready, "turns") is None, "nothing left to dial: out of the rotation"
        assert sync_redis.get(vtime) == "2"
        await store.enqueue(new_number(), "turns", CONFIG)
        assert sync_redis.zscore(ready, "turns") == 2, "back in the rotation at the current virtual time"

    run_store(redis_url, key_prefix, clock, body)


def test_a_campaign_a_new_call_brings_back_while_the_sweep_forgets_it_stays_listed(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep (forget_expired) reads which indexed campaigns' keys expired, then drops those. A new call that
    brings one back in between must leave it listed: the calls after it in the same second do not index it again
    (`seen_s`), so a campaign sent in one burst would otherwise never be listed."""
    index = f"{key_prefix}:campaigns"
    sync_redis.zadd(index, {"back": 1_700_000_000_000, "gone": 1_700_000_000_000})  # both expired: no hash

    async def body(store: CampaignStore) -> list[str]:
        arrived: list[str] = []
        real = store.redis.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = real(*args, **kwargs)
            execute = pipe.execute

            async def then_a_call_arrives(*a: Any, **kw: Any) -> Any:
                replies = await execute(*a, **kw)
                if not arrived:  # right after the sweep saw both gone
                    for _ in range(3):
                        arrived.append((await store.calls.enqueue(new_number(), "back", CONFIG)).call_id)
                return replies

            pipe.execute = then_a_call_arrives  # type: ignore[method-assign]
            return pipe

        monkeypatch.setattr(store.redis, "pipeline", pipeline)
        assert await store.forget_expired() == 1, "the campaign still gone is forgotten"
        assert len(arrived) == 3
        monkeypatch.undo()
        return [s["campaign_id"] for s in await store.summaries(10)]

    listed_ids = run_store(redis_url, key_prefix, clock, lambda calls: body(CampaignStore(calls)))
    assert sync_redis.zscore(index, "gone") is None
    assert sync_redis.zscore(index, "back") is not None, "brought back by a new call: still indexed"
    assert listed_ids == ["back"]

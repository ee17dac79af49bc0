"""Campaigns under issue 10's bounds: one retention model for calls with attempts, and MAX_QUEUED_CALLS counting
every call waiting to be dialled (queued or scheduled), for single and bulk enqueue alike."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from callqueue.campaigns.bulk import Mode, enqueue_bulk
from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.planner import Planner
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore, QueueFull
from tests.campaigns.conftest import local_ms, new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000
RETENTION = 7200
REDIAL = {"max_attempts": 3, "on": ["busy", "no_answer"], "waits_s": [60]}
NY = "America/New_York"


async def dial(store: CallStore, call_id: str, call_uuid: str) -> str:
    """Claim the call, have the agent accept it and Plivo ring it; returns the attempt id that rang."""
    claim = await store.claim(RATE, SLOTS, LEASE, "w")
    assert (claim.outcome, claim.call_id) == ("claimed", call_id)
    record = await store.get(call_id)
    assert record is not None
    assert await store.mark_dispatched(record.attempt_id, f"req-{uuid.uuid4().hex}", {}, 60_000) is not None
    changed, _ = await store.transition(record.attempt_id, CallStatus.RINGING, "test", {}, {"call_uuid": call_uuid})
    assert changed
    return record.attempt_id


def ttls(r: redis.Redis, keys: list[str]) -> dict[str, int]:
    return {key: int(r.ttl(key)) for key in keys}  # type: ignore[arg-type]


def test_a_redialled_call_keeps_every_key_while_its_next_attempt_waits_and_all_expire_together_once_final(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        await CampaignStore(store).put_settings("keep", CampaignSettings.model_validate({"retry": REDIAL}), 3600)
        call_id = (await store.enqueue(new_number(), "keep", CONFIG, "keep-key", retention_s=RETENTION)).call_id
        first = await dial(store, call_id, "cuid-first")
        await store.spend_callback(first, "digest-of-a-first-attempt-callback")
        changed, _ = await store.transition(first, CallStatus.BUSY, "test")
        assert changed
        waiting = await store.get(call_id)
        assert waiting is not None and waiting.status is CallStatus.SCHEDULED
        between = {"record": waiting, "req": waiting.previous[0].fields["request_uuid"]}
        keys = store.keys
        between["ttls"] = ttls(sync_redis, [keys.call(call_id), keys.history(call_id), keys.attempts(call_id),
                                            keys.callbacks(call_id), keys.idempotency("keep-key")])  # fmt: skip
        await Planner(store, clock).run_once()  # due after the retry's wait
        clock.advance(60_000)
        await Planner(store, clock).run_once()
        second = await dial(store, call_id, "cuid-second")
        changed, _ = await store.transition(second, CallStatus.COMPLETED, "test", {}, {"duration": 3})
        assert changed
        final = await store.get(call_id)
        assert final is not None
        return {"call_id": call_id, "second": second, "between": between, "final": final}

    got = run_store(redis_url, key_prefix, clock, body)
    call_id, p = got["call_id"], key_prefix
    assert got["second"] == f"{call_id}.2"
    assert set(got["between"]["ttls"].values()) == {-1}, f"a scheduled redial expires nothing: {got['between']}"
    final = got["final"]
    assert (final.status, final.attempt) == (CallStatus.COMPLETED, 2)
    every_key = [
        f"{p}:call:{call_id}",
        f"{p}:call:{call_id}:history",
        f"{p}:call:{call_id}:attempts",
        f"{p}:call:{call_id}:callbacks",
        f"{p}:idem:keep-key",
        f"{p}:req:{got['between']['req']}",  # attempt 1's uuid indexes, from its snapshot
        f"{p}:cuid:cuid-first",
        f"{p}:req:{final.request_uuid}",  # attempt 2's
        f"{p}:cuid:cuid-second",
    ]
    after = ttls(sync_redis, every_key)
    assert all(RETENTION - 60 <= ttl <= RETENTION for ttl in after.values()), after
    assert sync_redis.get(f"{p}:cuid:cuid-first") == call_id  # each index names the attempt that owns the uuid
    assert sync_redis.get(f"{p}:cuid:cuid-second") == f"{call_id}.2"


def test_an_unknown_attempt_that_settles_into_a_redial_brings_the_call_back_to_life(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    async def body(store: CallStore) -> tuple[str, int, int, CallStatus]:
        await CampaignStore(store).put_settings("unsure", CampaignSettings.model_validate({"retry": REDIAL}), 3600)
        call_id = (await store.enqueue(new_number(), "unsure", CONFIG, retention_s=RETENTION)).call_id
        attempt = await dial(store, call_id, "cuid-unsure")
        await store.transition(attempt, CallStatus.UNKNOWN, "tracker")
        unknown_ttl = int(await store.redis.ttl(store.keys.call(call_id)))
        await store.transition(attempt, CallStatus.BUSY, "plivo-api:detail-record")
        record = await store.get(call_id)
        assert record is not None
        return call_id, unknown_ttl, int(await store.redis.ttl(store.keys.call(call_id))), record.status

    call_id, unknown_ttl, settled_ttl, status = run_store(redis_url, key_prefix, clock, body)
    assert 0 < unknown_ttl <= RETENTION  # `unknown`: kept a retention (longer while reconciled)
    assert status is CallStatus.SCHEDULED and settled_ttl == -1
    for suffix in ("", ":history", ":attempts"):
        assert sync_redis.ttl(f"{key_prefix}:call:{call_id}{suffix}") == -1, suffix


def test_scheduled_calls_count_toward_max_queued_calls(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> tuple[list[str], int, int]:
        hours = CampaignSettings.model_validate({"calling_hours": {"start": "09:00", "end": "10:00"}})
        await CampaignStore(store).put_settings("night", hours, 3600)
        clock.set(local_ms(NY, 2026, 7, 1, 23, 0))
        statuses = [(await store.enqueue(new_number(), "night", CONFIG, max_queued=2)).status for _ in range(2)]
        await Planner(store, clock).run_once()  # both wait for 09:00: scheduled, none queued
        queued = int(await store.redis.zcard(store.keys.queued))
        with pytest.raises(QueueFull) as full:
            await store.enqueue(new_number(), "anytime", CONFIG, max_queued=2)
        return statuses, queued, full.value.waiting

    statuses, queued, waiting = run_store(redis_url, key_prefix, clock, body)
    assert statuses == ["scheduled", "scheduled"] and queued == 0
    assert waiting == 2


def _items(keys: list[str]) -> list[dict[str, Any]]:
    return [{"phone_number": new_number(), "key": key} for key in keys]


async def _bulk(store: CallStore, items: list[dict[str, Any]], mode: Mode, max_queued: int) -> Any:
    campaigns = CampaignStore(store)
    view = await campaigns.view("bulk")
    return await enqueue_bulk(
        campaigns, view, items, CONFIG, mode, now_ms=store.clock.now_ms(), retention_s=RETENTION,
        campaign_retention_s=3600, max_queued=max_queued,
    )  # fmt: skip


def test_bulk_per_item_admits_items_in_order_while_they_fit_and_answers_replays_even_when_full(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[Any, Any, int]:
        items = _items([f"k{n}" for n in range(5)])
        first = await _bulk(store, items, "per_item", 3)
        again = await _bulk(store, items, "per_item", 3)  # the same request, sent again while full
        return first, again, int(await store.redis.zcard(store.keys.queued))

    first, again, queued = run_store(redis_url, key_prefix, clock, body)
    assert (first.accepted, first.rejected, first.full, first.waiting) == (3, 2, 2, 3)
    refused = [item for item in first.as_json()["items"] if "errors" in item]
    assert [item["index"] for item in refused] == [3, 4]
    assert all(item["error"] == "queue_full" and "MAX_QUEUED_CALLS" in item["errors"][0]["rule"] for item in refused)
    assert (again.accepted, again.replayed, again.full) == (0, 3, 2)
    assert queued == 3


def test_bulk_all_or_nothing_is_admitted_whole_or_not_at_all(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    async def body(store: CallStore) -> tuple[int, set[str], int, int]:
        with pytest.raises(QueueFull) as full:
            await _bulk(store, _items(["a", "b", "c"]), "all_or_nothing", 2)
        written_before = {str(k) for k in sync_redis.scan_iter(f"{key_prefix}:*")}
        items = _items(["a", "b"])
        accepted = (await _bulk(store, items, "all_or_nothing", 2)).accepted
        replayed = (await _bulk(store, items, "all_or_nothing", 2)).replayed  # full, but nothing new
        return full.value.waiting, written_before, accepted, replayed

    waiting, written_before, accepted, replayed = run_store(redis_url, key_prefix, clock, body)
    assert waiting == 0
    assert written_before == {f"{key_prefix}:seq"}, "a refused request writes no call, key or campaign"
    assert (accepted, replayed) == (2, 2)

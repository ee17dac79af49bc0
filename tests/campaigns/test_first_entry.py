"""A call's first history entry lives in its record (issue 12: a leaner enqueue).

Enqueue, single or bulk, writes the call's hash and no history list; readers take the first entry from the record
(`created_at`, `accepted_as`) and put it ahead of the stored ones. What a user sees must not tell: the same first
entry before and after the first change and across a redial, the same entry for a single and a bulk call, and every
key of a final call expiring together.
"""

from __future__ import annotations

from typing import Any

import redis

from callqueue.campaigns.bulk import enqueue_bulk
from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from callqueue.store.records import CallRecord
from tests.campaigns.conftest import new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000
RETENTION = 7200


def entries(record: CallRecord | None) -> list[dict[str, Any]]:
    assert record is not None
    return [t.as_json() for t in record.history]


def test_a_call_that_never_changed_shows_its_one_entry_and_its_first_change_keeps_it(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        call_id = (await store.enqueue(new_number(), "first", CONFIG)).call_id
        before = await store.get(call_id)
        keys_before = sorted(await store.redis.keys(f"{key_prefix}:call:{call_id}*"))
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        assert claim.call_id == call_id
        after = await store.get(call_id)
        assert before is not None and after is not None
        return {"id": call_id, "before": before, "after": after, "keys_before": keys_before}

    got = run_store(redis_url, key_prefix, clock, body)
    before, after = got["before"], got["after"]
    assert entries(before) == [
        {"at": before.as_json()["created_at"], "status": "queued", "source": "api", "detail": {}, "attempt": 1}
    ]
    assert got["keys_before"] == [f"{key_prefix}:call:{got['id']}"], "accepting a call writes its record alone"
    assert [e["status"] for e in entries(after)] == ["queued", "dispatching"]
    assert entries(after)[0] == entries(before)[0], "the first change keeps the first entry"
    assert after.as_json()["dial_attempts"][0]["history"] == entries(after)


def test_bulk_and_single_enqueue_give_the_same_first_entry_before_and_after_the_first_change(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, list[list[dict[str, Any]]]]:
        single = (await store.enqueue(new_number(), "same", CONFIG)).call_id
        campaigns = CampaignStore(store)
        bulk = await enqueue_bulk(
            campaigns, await campaigns.view("same"), [{"phone_number": new_number()}], CONFIG, "per_item",
            now_ms=store.clock.now_ms(), retention_s=RETENTION, campaign_retention_s=3600, max_queued=100,
        )  # fmt: skip
        ids = {"single": single, "bulk": bulk.items[0]["call_id"]}
        out: dict[str, list[list[dict[str, Any]]]] = {}
        for name, call_id in ids.items():
            assert call_id is not None
            first = entries(await store.get(call_id))
            assert (await store.cancel(call_id))[0] == "canceled"
            out[name] = [first, entries(await store.get(call_id))]
        return out

    got = run_store(redis_url, key_prefix, clock, body)

    def shape(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k != "at"}

    for name, (first, changed) in got.items():
        assert [e["status"] for e in first] == ["queued"], name
        assert [e["status"] for e in changed] == ["queued", "canceled"], name
        assert changed[0] == first[0], name
    expected = {"status": "queued", "source": "api", "detail": {}, "attempt": 1}
    assert shape(got["single"][0][0]) == shape(got["bulk"][0][0]) == expected


def test_a_scheduled_call_shows_scheduled_as_its_first_entry_until_planned(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[str]:
        call_id = (await store.enqueue(new_number(), "planned", CONFIG, fields={"zones": "America/New_York"})).call_id
        return [e["status"] for e in entries(await store.get(call_id))]

    assert run_store(redis_url, key_prefix, clock, body) == ["scheduled"]


def test_every_key_of_a_call_canceled_before_any_change_expires_together(
    redis_url: str, key_prefix: str, clock: OffsetClock, sync_redis: redis.Redis
) -> None:
    async def body(store: CallStore) -> tuple[str, list[str]]:
        call_id = (await store.enqueue(new_number(), "gone", CONFIG, "key-1", retention_s=RETENTION)).call_id
        assert (await store.cancel(call_id))[0] == "canceled"
        return call_id, [e["status"] for e in entries(await store.get(call_id))]

    call_id, statuses = run_store(redis_url, key_prefix, clock, body)
    assert statuses == ["queued", "canceled"]
    keys = [f"{key_prefix}:call:{call_id}", f"{key_prefix}:call:{call_id}:history", f"{key_prefix}:idem:key-1"]
    ttls = {k: int(sync_redis.ttl(k)) for k in keys}  # type: ignore[arg-type]
    assert all(RETENTION - 60 <= t <= RETENTION for t in ttls.values()), ttls


def test_a_new_call_takes_back_the_expiry_of_every_key_of_its_idle_campaign(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[dict[str, int], dict[str, int]]:
        call_id = (await store.enqueue(new_number(), "idle", CONFIG, campaign_retention_s=3600)).call_id
        assert (await store.claim(RATE, SLOTS, LEASE, "w")).call_id == call_id  # pace: one start
        await store.transition(call_id, CallStatus.BUSY, "test")  # recent: one breaker entry; nothing left
        camp = store.keys.campaign("idle")
        keys = [camp, f"{camp}:recent", f"{camp}:pace"]
        idle = {k: int(await store.redis.ttl(k)) for k in keys}
        await store.enqueue(new_number(), "idle", CONFIG, campaign_retention_s=3600)
        return idle, {k: int(await store.redis.ttl(k)) for k in keys}

    idle, again = run_store(redis_url, key_prefix, clock, body)
    assert all(3500 < t <= 3600 for t in idle.values()), idle
    assert set(again.values()) == {-1}, again


def test_a_redialled_call_keeps_its_first_entry_in_its_first_attempt(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> CallRecord:
        retry = {"max_attempts": 2, "on": ["busy"], "waits_s": [60]}
        await CampaignStore(store).put_settings("again", CampaignSettings.model_validate({"retry": retry}), 3600)
        call_id = (await store.enqueue(new_number(), "again", CONFIG)).call_id
        assert (await store.claim(RATE, SLOTS, LEASE, "w")).call_id == call_id
        assert (await store.transition(call_id, CallStatus.BUSY, "test"))[0]  # the redial: attempt 2 waits
        record = await store.get(call_id)
        assert record is not None
        return record

    record = run_store(redis_url, key_prefix, clock, body)
    assert (record.status, record.attempt) == (CallStatus.SCHEDULED, 2)
    first, second = record.as_json()["dial_attempts"]
    assert [(e["status"], e["source"]) for e in first["history"]] == [
        ("queued", "api"),
        ("dispatching", "dispatcher"),
        ("busy", "test"),
    ]
    assert first["history"][0]["at"] == record.as_json()["created_at"]
    assert [e["status"] for e in second["history"]] == ["scheduled"]

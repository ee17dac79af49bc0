"""Which call is dialled next: fair turns between campaigns, their caps, calling hours and suppression at the claim."""

from __future__ import annotations

import time
from typing import Any

from callqueue.campaigns.models import CampaignSettings
from callqueue.campaigns.store import CampaignStore
from callqueue.clock import OffsetClock
from callqueue.states import CallStatus
from callqueue.store.calls import CallStore
from tests.campaigns.conftest import local_ms, new_number, run_store

CONFIG = {"flow_name": "f"}
RATE, SLOTS, LEASE = 100_000, 1_000_000, 60_000


async def fill(store: CallStore, campaign: str, count: int) -> list[str]:
    return [(await store.enqueue(new_number(), campaign, CONFIG)).call_id for _ in range(count)]


async def claims(store: CallStore, count: int) -> list[tuple[str, str | None]]:
    """(outcome, campaign of the claimed call) for `count` claims in a row."""
    out: list[tuple[str, str | None]] = []
    for _ in range(count):
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        campaign = None
        if claim.call_id:
            campaign = await store.redis.hget(store.keys.call(claim.call_id), "campaign_id")  # type: ignore[misc]
        out.append((claim.outcome, campaign))
    return out


def test_a_small_campaign_queued_after_a_large_one_is_not_starved(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> list[tuple[str, str | None]]:
        await fill(store, "large", 300)
        await claims(store, 25)  # the large campaign has been dialling a while
        await fill(store, "small", 10)
        return await claims(store, 40)

    taken = run_store(redis_url, key_prefix, clock, body)
    small_turns = [n for n, (_, campaign) in enumerate(taken) if campaign == "small"]
    # Round robin from the moment it joined: every other call is the small campaign's until it runs out.
    assert len(small_turns) == 10 and small_turns == list(range(0, 20, 2))
    assert all(outcome == "claimed" for outcome, _ in taken)


def test_weights_share_the_starts(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> list[tuple[str, str | None]]:
        await CampaignStore(store).put_settings("heavy", CampaignSettings(weight=3), 3600)
        await fill(store, "heavy", 100)
        await fill(store, "light", 100)
        return await claims(store, 40)

    taken = [campaign for _, campaign in run_store(redis_url, key_prefix, clock, body)]
    assert taken.count("heavy") == 30 and taken.count("light") == 10


def test_concurrency_cap_holds_a_campaign_while_others_dial(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        await CampaignStore(store).put_settings("capped", CampaignSettings(max_concurrent_calls=2), 3600)
        capped = await fill(store, "capped", 5)
        await fill(store, "free", 5)
        first = await claims(store, 8)
        await store.transition(capped[0], CallStatus.COMPLETED, "test")  # one slot frees up
        after = await claims(store, 2)
        only_capped = await claims(store, 1)
        return {"first": first, "after": after, "only_capped": only_capped}

    got = run_store(redis_url, key_prefix, clock, body)
    first = [c for _, c in got["first"]]
    assert first.count("capped") == 2 and first.count("free") == 5
    assert got["first"][-1] == ("empty", None) or got["first"][-1][0] == "blocked"
    assert [c for _, c in got["after"]] == ["capped", None]
    assert got["after"][1][0] == "blocked"  # the capped campaign still has calls, but no free slot
    assert got["only_capped"] == [("blocked", None)]


def test_rate_share_never_exceeds_the_campaigns_starts_per_second(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[list[str], list[float]]:
        await CampaignStore(store).put_settings("slow", CampaignSettings(dispatch_rate=3), 3600)
        await fill(store, "slow", 30)
        outcomes: list[str] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            outcomes.append((await store.claim(RATE, SLOTS, LEASE, "w")).outcome)
        starts = await store.redis.zrange(store.keys.campaign_pace("slow"), 0, -1, withscores=True)
        return outcomes, sorted(score for _, score in starts)

    outcomes, starts = run_store(redis_url, key_prefix, clock, body)
    assert "blocked" in outcomes and outcomes.count("claimed") == len(starts)
    assert all(sum(1 for u in starts if t <= u < t + 1000) <= 3 for t in starts)  # any 1-second window: ≤ 3


def test_a_call_whose_calling_hours_closed_before_its_turn_goes_back_to_waiting(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    from callqueue.campaigns.bulk import enqueue_bulk

    async def body(store: CallStore) -> tuple[str, dict[str, Any]]:
        campaigns = CampaignStore(store)
        settings = CampaignSettings.model_validate({"calling_hours": {"start": "09:00", "end": "20:00"}})
        view = await campaigns.put_settings("evening", settings, 3600)
        clock.set(local_ms("America/New_York", 2026, 7, 1, 19, 58))
        items = [{"phone_number": new_number()}]
        outcome = await enqueue_bulk(
            campaigns,
            view,
            items,
            CONFIG,
            "per_item",
            now_ms=clock.now_ms(),
            retention_s=3600,
            campaign_retention_s=3600,
            max_queued=1000,
        )
        call_id = outcome.items[0]["call_id"]
        assert outcome.items[0]["status"] == "queued"
        clock.set(local_ms("America/New_York", 2026, 7, 1, 20, 0))  # its turn comes at 20:00: too late
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        record = await store.get(call_id)
        assert record is not None
        return claim.outcome, {"status": record.status, "last": record.history[-1]}

    outcome, got = run_store(redis_url, key_prefix, clock, body)
    assert outcome == "empty"
    assert got["status"] is CallStatus.SCHEDULED
    assert got["last"].source == "dispatcher" and "calling hours closed" in got["last"].detail["reason"]


def test_new_calling_hours_apply_to_calls_already_queued(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> tuple[str, CallStatus]:
        call_id = (await store.enqueue(new_number(), "late-rules", CONFIG)).call_id
        settings = CampaignSettings.model_validate({"calling_hours": {"start": "09:00", "end": "20:00"}})
        await CampaignStore(store).put_settings("late-rules", settings, 3600)
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        record = await store.get(call_id)
        assert record is not None
        return claim.outcome, record.status

    assert run_store(redis_url, key_prefix, clock, body) == ("empty", CallStatus.SCHEDULED)


def test_a_suppressed_number_ends_at_the_claim_and_is_never_dialled(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> dict[str, Any]:
        blocked = new_number()
        first = (await store.enqueue(blocked, "optouts", CONFIG)).call_id
        second = (await store.enqueue(new_number(), "optouts", CONFIG)).call_id
        await CampaignStore(store).suppress([blocked], "replied STOP")
        one = await store.claim(RATE, SLOTS, LEASE, "w")
        two = await store.claim(RATE, SLOTS, LEASE, "w")
        record = await store.get(first)
        outbox = await store.redis.zrange(store.keys.outbox, 0, -1)
        return {"one": one, "two": two, "second": second, "record": record, "outbox": outbox, "first": first}

    got = run_store(redis_url, key_prefix, clock, body)
    assert (got["one"].outcome, got["one"].call_id) == ("suppressed", got["first"])
    assert (got["two"].outcome, got["two"].call_id) == ("claimed", got["second"])
    record = got["record"]
    assert record.status is CallStatus.SUPPRESSED and record.attempts == 0
    assert record.reason == "number is on the suppression list: replied STOP"
    assert got["outbox"] == [f"{got['first']}:suppressed"]


def test_a_paused_campaign_is_skipped_until_resumed(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> list[Any]:
        campaigns = CampaignStore(store)
        await fill(store, "held", 2)
        await fill(store, "other", 1)
        await campaigns.control("held", "pause", "test")
        taken = await claims(store, 2)
        await campaigns.control("held", "resume", "test")
        return taken + await claims(store, 3)

    taken = run_store(redis_url, key_prefix, clock, body)
    assert taken == [("claimed", "other"), ("empty", None), ("claimed", "held"), ("claimed", "held"), ("empty", None)]


def test_calls_queued_before_campaigns_existed_are_adopted(redis_url: str, key_prefix: str, clock: OffsetClock) -> None:
    async def body(store: CallStore) -> list[str]:
        # A call as the previous version wrote it: no campaign queue, no wver.
        key = store.keys.call("legacy1")
        await store.redis.hset(key, mapping={  # type: ignore[misc]
            "call_id": "legacy1", "phone_number": "+14155550100", "campaign_id": "old", "call_config": "{}",
            "created_at": 1, "updated_at": 1, "seq": 1, "attempts": 0, "status": "queued",
        })  # fmt: skip
        await store.redis.zadd(store.keys.queued, {"legacy1": 1})
        before = (await store.claim(RATE, SLOTS, LEASE, "w")).outcome
        await CampaignStore(store).adopt_queued()
        after = await store.claim(RATE, SLOTS, LEASE, "w")
        return [before, after.outcome, str(after.call_id)]

    assert run_store(redis_url, key_prefix, clock, body) == ["empty", "claimed", "legacy1"]


def test_a_campaign_with_nothing_left_expires_after_its_retention_and_a_new_call_keeps_it(
    redis_url: str, key_prefix: str, clock: OffsetClock
) -> None:
    async def body(store: CallStore) -> tuple[int, int, int]:
        call_id = (await store.enqueue(new_number(), "short-lived", CONFIG, campaign_retention_s=3600)).call_id
        key = store.keys.campaign("short-lived")
        live = await store.redis.ttl(key)
        claim = await store.claim(RATE, SLOTS, LEASE, "w")
        assert claim.call_id == call_id
        await store.transition(call_id, CallStatus.COMPLETED, "test")
        ended = await store.redis.ttl(key)
        await store.enqueue(new_number(), "short-lived", CONFIG, campaign_retention_s=3600)
        return live, ended, await store.redis.ttl(key)

    live, ended, again = run_store(redis_url, key_prefix, clock, body)
    assert live == -1  # calls waiting: no expiry
    assert 3500 < ended <= 3600  # its last call ended: kept for CAMPAIGN_RETENTION
    assert again == -1  # a new call brings it back
